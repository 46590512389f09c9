import { existsSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { CloudWatchLogsClient } from '@aws-sdk/client-cloudwatch-logs';
import { CodeBuildClient } from '@aws-sdk/client-codebuild';
import { ListStateMachinesCommand, SFNClient, type StateMachineListItem } from '@aws-sdk/client-sfn';
import { type FunctionLogSource, prefixLines } from '../local/function-logs';
import { artifactsBucketName, LOCAL_REGION } from '../local/names';
import { LOCAL_S3_CREDENTIALS, localS3Client } from '../local/s3-client';
import { loadConfig, type PipelineConfig } from '../shared/config';
import { isProcessAlive } from '../shared/process';
import { endpointFile, readEndpointFile, writeEndpointFile } from './endpoint-file';
import { CliError, describeServiceError, usageError } from './errors';
import { ExitCode } from './exit-codes';
import {
  ARTIFACTS_BUCKET_ENV,
  explicitArn,
  explicitBucket,
  type ResolveHooks,
  type Target,
  type TargetKind,
  type TargetOptions,
} from './target';

/**
 * The targets that are not AWS: an endpoint URL (a `local serve`, any AWS-compatible emulator) and
 * `--local`, which finds a running `local serve` of the config's pipeline or starts the runtime in
 * this process. Loaded by resolveTarget only for those, and the runtime itself only when it starts
 * here: a command against a running endpoint loads none of it.
 */

function tryLoadConfig(path: string): PipelineConfig | undefined {
  return existsSync(path) ? loadConfig(path) : undefined;
}

/** Clients for a local-runtime-like endpoint: the local S3 takes only its fixed credentials; SFN and CodeBuild do not check them. */
export function endpointTarget(
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
  const logs = new CloudWatchLogsClient(common);
  const s3 = localS3Client(endpoint, region);
  const configPath = resolve(options.config);
  return {
    kind,
    sfn,
    codebuild,
    logs,
    s3,
    region,
    description,
    endpoint,
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
      logs.destroy();
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
export async function localTarget(options: TargetOptions, hooks: ResolveHooks): Promise<Target> {
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
  const { LocalRuntime } = require('../local/runtime') as typeof import('../local/runtime');
  const logListeners = new Set<(line: string) => void>();
  let label = (buildId: string): string => buildId;
  let pad = (name: string): string => name;
  const runtime = await LocalRuntime.start({
    configPath,
    ...(hooks.runtimeOutput
      ? {
          onBuildLog: (line: string, buildId: string) => {
            for (const listener of logListeners) listener(`      ${label(buildId)} │ ${line}`);
          },
          // A task's lines under its state, as a build's; an EventBridge target's (notify) as they are.
          onFunctionLog: (message: string, source: FunctionLogSource) => {
            const shown =
              source.stateName === undefined ? message : prefixLines(`      ${pad(source.stateName)} │ `, message);
            // Before the view subscribes and after it ends (a notification of the end), to stderr: nothing lost.
            if (logListeners.size === 0) process.stderr.write(`${shown}\n`);
            for (const listener of logListeners) listener(shown);
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
  pad = (name) => name.padEnd(width);
  label = (buildId) => pad(runtime.buildLabel(buildId));
  for (const created of runtime.createdRepositories) hooks.note?.(`created example repository ${created}`);
  const published = !existsSync(file) || !server || !isProcessAlive(server.pid);
  if (published) {
    writeEndpointFile(file, {
      endpoint: runtime.endpoint,
      pid: process.pid,
      stateMachineArn: runtime.machine.stateMachineArn,
    });
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
