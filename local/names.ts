import type { PipelineConfig } from '../shared/config';

/**
 * The local runtime's fixed names: its region and account, the state machine's ARN and the
 * artifacts bucket of a pipeline. A module of its own, so a client of a running runtime (the CLI
 * with --endpoint-url or a found `local serve`) knows them without loading the runtime itself.
 */

export const LOCAL_REGION = 'us-east-1';
export const LOCAL_ACCOUNT = '000000000000';

export function localStateMachineArn(pipeline: string): string {
  return `arn:aws:states:${LOCAL_REGION}:${LOCAL_ACCOUNT}:stateMachine:${pipeline}`;
}

export function artifactsBucketName(config: PipelineConfig): string {
  return `${config.pipeline}-artifacts`;
}
