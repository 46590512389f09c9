import { S3Client } from '@aws-sdk/client-s3';
import { z } from 'zod';
import type { RecordDeploymentResult } from '../../shared/contracts';
import { clientSettings, type Environment, requireEnv } from '../../shared/env';
import { lambdaHandler } from '../shared/lambda';
import { parseEvent } from '../shared/parse-event';
import { recordDeployment } from './record-deployment';

const fetchedSourceSchema = z
  .object({
    name: z.string().min(1),
    branch: z.string().min(1),
    path: z.string().min(1),
    commit: z.string().min(1),
    fetchBuildId: z.string().min(1).nullable(),
    snapshotKey: z.string().min(1),
  })
  .strict();

// Both become parts of S3 keys: a "/" would move the record to another prefix.
const eventSchema = z
  .object({
    environment: z.string().regex(/^[a-z][a-z0-9-]*$/, 'must be a configured environment name'),
    execution: z.string().regex(/^[^/\\]{1,80}$/, 'must be a Step Functions execution name (no "/")'),
    startedAt: z.iso.datetime({ message: 'must be the execution start time ($$.Execution.StartTime)' }),
    requestedBy: z.string().nullable(),
    sources: z.array(fetchedSourceSchema).min(1),
    artifactKey: z.string().min(1),
    buildId: z.string().min(1),
    deployBuildId: z.string().min(1),
    approval: z
      .object({ approvedBy: z.string().min(1), comment: z.string().nullable(), approvedAt: z.iso.datetime() })
      .strict()
      .nullable(),
    redeployOf: z
      .string()
      .regex(/^[^/\\]{1,80}$/)
      .nullable(),
  })
  .strict();

export function createHandler(env: Environment) {
  const s3 = new S3Client(clientSettings(env, 'S3'));
  return async (event: unknown): Promise<RecordDeploymentResult> => {
    const parsed = parseEvent(eventSchema, event, 'RecordDeployment');
    return recordDeployment(parsed, { s3, bucket: requireEnv(env, 'ARTIFACT_BUCKET') });
  };
}

export const handler = lambdaHandler(createHandler);
