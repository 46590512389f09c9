import { CloudWatchLogsClient } from '@aws-sdk/client-cloudwatch-logs';
import { CodeBuildClient } from '@aws-sdk/client-codebuild';
import { S3Client } from '@aws-sdk/client-s3';
import { SFNClient } from '@aws-sdk/client-sfn';
import { optionalEnv } from '../shared/env';
import { describeServiceError, usageError } from './errors';

/**
 * Where a command sends its calls: AWS (default credential chain and region), an endpoint URL (a
 * running `stepdeploy local serve`, or any AWS-compatible emulator), or `--local`. Every case
 * ends as the same SDK clients, so every command has one code path.
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
  /** Build logs (GetLogEvents): CloudWatch Logs on AWS, the local endpoint's build logs locally. */
  readonly logs: CloudWatchLogsClient;
  readonly s3: S3Client;
  readonly region: string;
  /** One line for people: where the calls go. */
  readonly description: string;
  /** The endpoint every call goes to, when it is not AWS itself (the local runtime, an emulator). */
  readonly endpoint?: string;
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
  if (options.local || options.endpointUrl) {
    // Loaded only here: an AWS command never loads the local runtime (s3rver, koa, the engine) nor its names.
    const { localTarget, endpointTarget } = require('./local-target') as typeof import('./local-target');
    if (options.local) return localTarget(options, hooks);
    return endpointTarget(options, options.endpointUrl!, 'endpoint', `endpoint ${options.endpointUrl}`);
  }
  return awsTarget(options);
}

const STATE_MACHINE_ARN = /^arn:[a-z-]+:states:[a-z0-9-]+:\d{12}:stateMachine:[^:\s]+$/;

/** Checked here, so a wrong value gets a message naming where it came from instead of the service's InvalidArn. */
export function explicitArn(options: TargetOptions): string | undefined {
  const [arn, from] =
    options.stateMachineArn !== undefined
      ? [options.stateMachineArn, '--state-machine-arn']
      : [optionalEnv(process.env, STATE_MACHINE_ARN_ENV), STATE_MACHINE_ARN_ENV];
  if (arn === undefined || STATE_MACHINE_ARN.test(arn)) return arn;
  throw usageError(
    `${from} ${JSON.stringify(arn)} is not a state machine ARN (arn:aws:states:<region>:<account>:stateMachine:<name>): use the stack output StateMachineArn`,
  );
}

export function explicitBucket(options: TargetOptions): string | undefined {
  return options.bucket ?? optionalEnv(process.env, ARTIFACTS_BUCKET_ENV);
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
  const logs = new CloudWatchLogsClient({ region });
  const s3 = new S3Client({ region });
  return {
    kind: 'aws',
    sfn,
    codebuild,
    logs,
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
      logs.destroy();
      s3.destroy();
    },
  };
}
