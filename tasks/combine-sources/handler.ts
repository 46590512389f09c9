import { S3Client } from '@aws-sdk/client-s3';
import { z } from 'zod';
import type { CombineSourcesEvent, CombineSourcesResult } from '../../shared/contracts';
import { clientSettings, type Environment, requireEnv } from '../../shared/env';
import { EXECUTION_NAME } from '../../shared/execution-name';
import { lambdaHandler } from '../shared/lambda';
import { parseEvent } from '../shared/parse-event';
import { combineSources } from './combine-sources';

/** Same rule as a source's `path` in stepdeploy.config.yml: "." or a relative folder ending in "/". */
const artifactPath = z
  .string()
  .regex(
    /^(\.|(?!\/)(?!.*\/\/)(?!.*(^|\/)\.\.?(\/|$))[A-Za-z0-9._-][A-Za-z0-9._/-]*\/)$/,
    'must be "." or a relative folder ending in "/"',
  );

/** Names and commits become S3 keys, file names and variable names. */
const NAME = /^[a-z][a-z0-9-]{0,29}$/;

const eventSchema = z.object({
  environment: z.string().regex(NAME),
  execution: z.string().regex(EXECUTION_NAME),
  requestedBy: z.string().nullable(),
  // Both reach buildspecs as variables: the config's own rules, so nothing else can.
  account: z.string().regex(/^\d{12}$/, 'must be a 12-digit AWS account id'),
  region: z.string().regex(/^[a-z]{2}(-[a-z]+)+-\d$/, 'must be an AWS region such as eu-west-1'),
  deployRoleArn: z.string().min(1),
  variables: z.record(z.string(), z.string()),
  sources: z
    .array(
      z.object({
        name: z.string().regex(NAME),
        branch: z.string().min(1),
        path: artifactPath,
        commit: z.string().regex(/^[0-9a-f]{7,64}$/, 'must be a git commit id'),
        fetchBuildId: z.string().min(1).nullable(),
        snapshotKey: z.string().min(1),
      }),
    )
    .min(1),
}) satisfies z.ZodType<CombineSourcesEvent>;

/** CombineConfigAndCode (workflows/deploy-pipeline.asl.json). */
export function createHandler(env: Environment) {
  const s3 = new S3Client(clientSettings(env, 'S3'));
  return async (event: unknown): Promise<CombineSourcesResult> => {
    const parsed = parseEvent(eventSchema, event, 'CombineConfigAndCode');
    return combineSources(parsed, { s3, bucket: requireEnv(env, 'ARTIFACT_BUCKET') });
  };
}

export const handler = lambdaHandler(createHandler);
