import { CodeBuildClient } from '@aws-sdk/client-codebuild';
import { S3Client } from '@aws-sdk/client-s3';
import { z } from 'zod';
import { clientSettings, type Environment, numberEnv, requireEnv } from '../../shared/env';
import { EXECUTION_NAME } from '../../shared/execution-name';
import { lambdaHandler } from '../shared/lambda';
import { parseEvent } from '../shared/parse-event';
import { deploy, type DeployStarted } from './deploy';

/** The deploy build's timeout (60 min) plus a margin: a lease whose holder vanished is free after this. */
const DEFAULT_LEASE_SECONDS = 70 * 60;

const eventSchema = z
  .object({
    taskToken: z.string().min(1),
    environment: z.string().regex(/^[a-z][a-z0-9-]{0,29}$/),
    execution: z.string().regex(EXECUTION_NAME),
    startedAt: z.iso.datetime({ message: 'must be the execution start time ($$.Execution.StartTime)' }),
    redriveCount: z.number({ message: 'must be the number of redrives ($$.Execution.RedriveCount)' }).int().min(0),
    source: z.string().regex(/^[^/]+\/.+\.zip$/, 'must be "<bucket>/<key>.zip"'),
    environmentVariables: z.array(
      z.object({ Name: z.string().min(1), Type: z.literal('PLAINTEXT'), Value: z.string() }).strict(),
    ),
  })
  .strict();

/** Deploy (workflows/deploy-pipeline.asl.json): lambda:invoke.waitForTaskToken. */
export function createHandler(env: Environment) {
  const s3 = new S3Client(clientSettings(env, 'S3'));
  const codebuild = new CodeBuildClient(clientSettings(env, 'CODEBUILD'));
  return async (event: unknown): Promise<DeployStarted> => {
    const parsed = parseEvent(eventSchema, event, 'Deploy');
    return deploy(parsed, {
      s3,
      codebuild,
      bucket: requireEnv(env, 'ARTIFACT_BUCKET'),
      // Lambda sets it to the function's region, the bucket's.
      region: requireEnv(env, 'AWS_REGION'),
      projectName: requireEnv(env, 'DEPLOY_PROJECT_NAME'),
      leaseSeconds: numberEnv(env, 'DEPLOY_LEASE_SECONDS', { default: DEFAULT_LEASE_SECONDS, min: 1, unit: 'seconds' }),
    });
  };
}

export const handler = lambdaHandler(createHandler);
