import { CodeBuildClient } from '@aws-sdk/client-codebuild';
import { S3Client } from '@aws-sdk/client-s3';
import { SFNClient } from '@aws-sdk/client-sfn';
import { clientSettings, type Environment, requireEnv } from '../../shared/env';
import { notifyEventSchema } from '../shared/eventbridge-events';
import { lambdaHandler } from '../shared/lambda';
import { parseEvent } from '../shared/parse-event';
import { completeDeployBuild, releaseForEndedExecution, type DeployCompleteResult } from './deploy-complete';

/** EventBridge target for the deploy project's build state changes and the state machine's execution status changes. */
export function createHandler(env: Environment) {
  const s3 = new S3Client(clientSettings(env, 'S3'));
  const sfn = new SFNClient(clientSettings(env, 'SFN'));
  const codebuild = new CodeBuildClient(clientSettings(env, 'CODEBUILD'));
  return async (event: unknown): Promise<DeployCompleteResult> => {
    const parsed = parseEvent(notifyEventSchema, event, 'deploy-complete');
    const deps = {
      s3,
      sfn,
      codebuild,
      bucket: requireEnv(env, 'ARTIFACT_BUCKET'),
      projectName: requireEnv(env, 'DEPLOY_PROJECT_NAME'),
    };
    return parsed['detail-type'] === 'CodeBuild Build State Change'
      ? completeDeployBuild(parsed, deps)
      : releaseForEndedExecution(parsed, deps);
  };
}

export const handler = lambdaHandler(createHandler);
