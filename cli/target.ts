import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { CodeBuildClient } from '@aws-sdk/client-codebuild';
import { S3Client } from '@aws-sdk/client-s3';
import { ListStateMachinesCommand, SFNClient, type StateMachineListItem } from '@aws-sdk/client-sfn';
import { prepareExampleRepositories } from '../local/examples';
import { artifactsBucketName, LocalRuntime, LOCAL_REGION } from '../local/runtime';
import { LOCAL_S3_CREDENTIALS, localS3Client } from '../local/s3';
import { loadConfig, type PipelineConfig } from '../shared/config';
import { isProcessAlive } from '../shared/process';
import { CliError, describeServiceError, usageError } from './errors';
import { ExitCode } from './exit-codes';
import { endpointFile } from './local-serve';

/**
 * Where a command sends its calls: AWS (default credential chain and region), an endpoint URL (a
 * running `stepdeploy local serve`, or any AWS-compatible emulator), or `--local`. Every case
 * ends as the same three SDK clients, so every command has one code path.
 */

export interface TargetOptions {
  readonly config: string;
  readonly local?: boolean;
  readonly endpointUrl?: string;
  readonly stateMachineArn?: string;
  readonly region?: string;
  readonly bucket?: string;
}

export type TargetKind = 'aws' | 'endpoint' | 'local-server' | 'in-process';

export interface Target {
  readonly kind: TargetKind;
  readonly sfn: SFNClient;
  readonly codebuild: CodeBuildClient;
  readonly s3: S3Client;
  readonly region: string;
  /** One line for people: where the calls go. */
  readonly description: string;
  /** The local runtime's data folder (`.stepdeploy/`), when the target is the local runtime. */
  readonly home?: string;
  /** How often to poll GetExecutionHistory. */
  readonly pollMs: number;
  stateMachineArn(): Promise<string>;
  /**
   * Subscribes to what the local runtime running in this process prints (labelled build log
   * lines), when the command asked for it (ResolveHooks.runtimeOutput); returns the unsubscribe.
   */
  readonly runtimeLogs?: (listener: (line: string) => void) => () => void;
  /** The artifacts bucket (status reads `deployments/` from it). */
  bucket(): string;
  /** The Step Functions console page of an execution (AWS only: the local runtime has no console). */
  consoleUrl(executionArn: string): string | undefined;
  close(): Promise<void>;
}

export const STATE_MACHINE_ARN_ENV = 'STEPDEPLOY_STATE_MACHINE_ARN';
export const ARTIFACTS_BUCKET_ENV = 'STEPDEPLOY_ARTIFACTS_BUCKET';

export interface ResolveHooks {
  /** Progress notes (starting the in-process runtime, creating example repositories). */
  readonly note?: (line: string) => void;
  /**
   * When the runtime starts in this process: stream its build logs (Target.runtimeLogs) and print
   * its notifications, as `npm start` shows a deployment. Otherwise both are left out.
   */
  readonly runtimeOutput?: boolean;
}

export async function resolveTarget(options: TargetOptions, hooks: ResolveHooks = {}): Promise<Target> {
  if (options.local && options.endpointUrl)
    throw usageError('--local and --endpoint-url exclude each other: --local finds or starts the local runtime itself');
  if (options.local) return localTarget(options, hooks);
  if (options.endpointUrl)
    return endpointTarget(options, options.endpointUrl, 'endpoint', `endpoint ${options.endpointUrl}`);
  return awsTarget(options);
}

const STATE_MACHINE_ARN = /^arn:[a-z-]+:states:[a-z0-9-]+:\d{12}:stateMachine:[^:\s]+$/;

/** Checked here, so a wrong value gets a message naming where it came from instead of the service's InvalidArn. */
function explicitArn(options: TargetOptions): string | undefined {
  const [arn, from] =
    options.stateMachineArn !== undefined
      ? [options.stateMachineArn, '--state-machine-arn']
      : [process.env[STATE_MACHINE_ARN_ENV] || undefined, STATE_MACHINE_ARN_ENV];
  if (arn === undefined || STATE_MACHINE_ARN.test(arn)) return arn;
  throw usageError(
    `${from} ${JSON.stringify(arn)} is not a state machine ARN (arn:aws:states:<region>:<account>:stateMachine:<name>): use the stack output StateMachineArn`,
  );
}

function explicitBucket(options: TargetOptions): string | undefined {
  return options.bucket ?? (process.env[ARTIFACTS_BUCKET_ENV] || undefined);
}

export function executionConsoleUrl(region: string, executionArn: string): string {
  return `https://${region}.console.aws.amazon.com/states/home?region=${region}#/v2/executions/details/${executionArn}`;
}

async function awsTarget(options: TargetOptions): Promise<Target> {
  const sfn = new SFNClient({ region: options.region });
  let region: string;
  try {
    region = await sfn.config.region();
  } catch (err) {
    sfn.destroy();
    throw describeServiceError(err);
  }
  if (!region) throw usageError('no AWS region: set AWS_REGION (or a profile with a region), or pass --region');
  const codebuild = new CodeBuildClient({ region });
  const s3 = new S3Client({ region });
  return {
    kind: 'aws',
    sfn,
    codebuild,
    s3,
    region,
    description: `AWS ${region}`,
    pollMs: 2000,
    stateMachineArn: async () => {
      const arn = explicitArn(options);
      if (arn) return arn;
      // The config names no deployed ARN (the stack output does): asking is clearer than guessing.
      throw usageError(
        `which state machine? pass --state-machine-arn or set ${STATE_MACHINE_ARN_ENV} (the stack output StateMachineArn); ` +
          'the config file does not hold the ARN. For the local runtime use --local',
      );
    },
    bucket: () => {
      const bucket = explicitBucket(options);
      if (bucket) return bucket;
      throw usageError(
        `which artifacts bucket? pass --bucket or set ${ARTIFACTS_BUCKET_ENV} (the stack output ArtifactsBucketName)`,
      );
    },
    consoleUrl: (arn) => executionConsoleUrl(region, arn),
    close: async () => {
      sfn.destroy();
      codebuild.destroy();
      s3.destroy();
    },
  };
}

function tryLoadConfig(path: string): PipelineConfig | undefined {
  return existsSync(path) ? loadConfig(path) : undefined;
}

/** Clients for a local-runtime-like endpoint: the local S3 takes only its fixed credentials; SFN and CodeBuild do not check them. */
function endpointTarget(
  options: TargetOptions,
  endpoint: string,
  kind: TargetKind,
  description: string,
  extra: Pick<Target, 'home' | 'runtimeLogs'> & {
    readonly arn?: string;
    readonly close?: () => Promise<void>;
  } = {},
): Target {
  let cachedArn = extra.arn ?? explicitArn(options);
  const region = options.region ?? LOCAL_REGION;
  const common = { endpoint, region, credentials: LOCAL_S3_CREDENTIALS };
  const sfn = new SFNClient(common);
  const codebuild = new CodeBuildClient(common);
  const s3 = localS3Client(endpoint, region);
  const configPath = resolve(options.config);
  return {
    kind,
    sfn,
    codebuild,
    s3,
    region,
    description,
    home: extra.home,
    runtimeLogs: extra.runtimeLogs,
    pollMs: 300,
    stateMachineArn: async () => {
      cachedArn ??= await findStateMachine(sfn, tryLoadConfig(configPath), endpoint);
      return cachedArn;
    },
    bucket: () => {
      const bucket = explicitBucket(options);
      if (bucket) return bucket;
      const config = tryLoadConfig(configPath);
      if (config) return artifactsBucketName(config);
      throw usageError(
        `which artifacts bucket? no config at ${configPath}: pass --config, --bucket or set ${ARTIFACTS_BUCKET_ENV}`,
      );
    },
    consoleUrl: () => undefined,
    close: async () => {
      sfn.destroy();
      codebuild.destroy();
      s3.destroy();
      await extra.close?.();
    },
  };
}

/** On an endpoint without --state-machine-arn: the machine named like the config's pipeline, or the only one. */
async function findStateMachine(sfn: SFNClient, config: PipelineConfig | undefined, endpoint: string): Promise<string> {
  let machines: StateMachineListItem[];
  try {
    machines = (await sfn.send(new ListStateMachinesCommand({}))).stateMachines ?? [];
  } catch (err) {
    throw describeServiceError(err, { endpoint });
  }
  const named = config ? machines.find((m) => m.name === config.pipeline) : undefined;
  const chosen = named ?? (machines.length === 1 ? machines[0] : undefined);
  if (chosen?.stateMachineArn) return chosen.stateMachineArn;
  const names = machines.map((m) => m.name).join(', ') || 'none';
  throw usageError(`which state machine on ${endpoint}? it has ${names}; pass --state-machine-arn`);
}

interface EndpointFile {
  readonly endpoint: string;
  readonly pid: number;
  readonly stateMachineArn: string;
}

function readEndpointFile(file: string): EndpointFile | undefined {
  try {
    const parsed = JSON.parse(readFileSync(file, 'utf8')) as Partial<EndpointFile>;
    if (
      typeof parsed.endpoint === 'string' &&
      typeof parsed.pid === 'number' &&
      typeof parsed.stateMachineArn === 'string'
    ) {
      return parsed as EndpointFile;
    }
  } catch {
    // missing or half-written: treated as no server
  }
  return undefined;
}

async function answers(endpoint: string, arn: string): Promise<boolean> {
  const sfn = new SFNClient({
    endpoint,
    region: arn.split(':')[3] ?? LOCAL_REGION,
    credentials: LOCAL_S3_CREDENTIALS,
    maxAttempts: 1,
  });
  try {
    const { stateMachines } = await sfn.send(new ListStateMachinesCommand({}), {
      abortSignal: AbortSignal.timeout(2000),
    });
    return (stateMachines ?? []).some((m) => m.stateMachineArn === arn);
  } catch {
    return false;
  }
}

/**
 * `--local`: a running `stepdeploy local serve` (or another CLI's in-process runtime) found through
 * `.stepdeploy/endpoints/<pipeline>.json` beside the config, if its process lives and its endpoint answers;
 * otherwise the runtime starts in this process for the duration of the command. While it runs
 * it publishes that file too, so that a second `--local` command uses it instead of starting
 * another runtime on the same folder (which would mark this one's running executions as orphans).
 */
async function localTarget(options: TargetOptions, hooks: ResolveHooks): Promise<Target> {
  const configPath = resolve(options.config);
  if (!existsSync(configPath)) {
    throw new CliError(
      `no config file at ${configPath}: pass --config <path> (the local runtime runs the pipeline it describes)`,
      ExitCode.Usage,
    );
  }
  const home = join(dirname(configPath), '.stepdeploy');
  const { pipeline } = loadConfig(configPath);
  const file = endpointFile(home, pipeline);
  const server = readEndpointFile(file);
  // The state machine is checked by name too: a file written for another pipeline is not this one's server.
  const ours = server !== undefined && server.stateMachineArn.split(':')[6] === pipeline;
  if (server && ours && isProcessAlive(server.pid) && (await answers(server.endpoint, server.stateMachineArn))) {
    return endpointTarget(
      options,
      server.endpoint,
      'local-server',
      `local runtime at ${server.endpoint} (pid ${server.pid})`,
      {
        arn: server.stateMachineArn,
        home,
      },
    );
  }
  hooks.note?.('starting the local runtime in this process (no running `stepdeploy local serve` found)');
  const logListeners = new Set<(line: string) => void>();
  let label = (buildId: string): string => buildId;
  const runtime: LocalRuntime = await LocalRuntime.start({
    configPath,
    ...(hooks.runtimeOutput
      ? {
          onBuildLog: (line: string, buildId: string) => {
            for (const listener of logListeners) listener(`      ${label(buildId)} │ ${line}`);
          },
        }
      : // The CLI's own view shows every status change: notifications only when the runtime's output is asked for.
        { notify: async () => undefined }),
  });
  // Parallel fetch builds print at once: each line names its build (`FetchSource app │ ...`), in one column.
  const width = Math.max(
    'BuildTemplates'.length,
    ...Object.keys(runtime.config.sources).map((source) => `FetchSource ${source}`.length),
  );
  label = (buildId) => runtime.buildLabel(buildId).padEnd(width);
  for (const created of prepareExampleRepositories(runtime.config, configPath, runtime.home))
    hooks.note?.(`created example repository ${created}`);
  const published = !existsSync(file) || !server || !isProcessAlive(server.pid);
  if (published) {
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(
      file,
      `${JSON.stringify({ endpoint: runtime.endpoint, pid: process.pid, stateMachineArn: runtime.machine.stateMachineArn }, null, 2)}\n`,
    );
  }
  return endpointTarget(
    options,
    runtime.endpoint,
    'in-process',
    `local runtime in this process (${runtime.endpoint})`,
    {
      arn: runtime.machine.stateMachineArn,
      home: runtime.home,
      runtimeLogs: (listener) => {
        logListeners.add(listener);
        return () => logListeners.delete(listener);
      },
      close: async () => {
        if (published && readEndpointFile(file)?.pid === process.pid) rmSync(file, { force: true });
        await runtime.close();
      },
    },
  );
}
