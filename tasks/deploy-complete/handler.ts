import { CodeBuildClient } from '@aws-sdk/client-codebuild';
import { S3Client } from '@aws-sdk/client-s3';
import { SFNClient } from '@aws-sdk/client-sfn';
import { requireEnv } from '../../shared/env';
import { notifyEventSchema } from '../shared/eventbridge-events';
import { parseEvent } from '../shared/parse-event';
import { completeDeployBuild, releaseForEndedExecution, type DeployCompleteResult } from './deploy-complete';

const s3 = new S3Client({});
const sfn = new SFNClient({});
const codebuild = new CodeBuildClient({});

/** EventBridge target for the deploy project's build state changes and the state machine's execution status changes. */
export async function handler(event: unknown): Promise<DeployCompleteResult> {
  const parsed = parseEvent(notifyEventSchema, event, 'deploy-complete');
  const deps = {
    s3,
    sfn,
    codebuild,
    bucket: requireEnv('ARTIFACT_BUCKET'),
    projectName: requireEnv('DEPLOY_PROJECT_NAME'),
  };
  return parsed['detail-type'] === 'CodeBuild Build State Change'
    ? completeDeployBuild(parsed, deps)
    : releaseForEndedExecution(parsed, deps);
}
