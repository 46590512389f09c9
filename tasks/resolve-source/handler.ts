import { S3Client } from '@aws-sdk/client-s3';
import { z } from 'zod';
import { SOURCE_TYPES } from '../shared/config';
import type { ResolvedSource } from '../shared/contracts';
import { requireEnv } from '../shared/errors';
import { parseEvent } from '../shared/parse-event';
import { branchReader } from './remote-refs';
import { resolveSource } from './resolve-source';

const s3 = new S3Client({});
const readBranch = branchReader();

const eventSchema = z
  .object({
    source: z.object({
      name: z.string().regex(/^[a-z][a-z0-9-]{0,29}$/),
      branch: z.string().min(1),
      repository: z.string().min(1),
      sourceType: z.enum(SOURCE_TYPES),
      path: z.string().min(1),
    }),
  })
  .strict();

/** ResolveSource, inside FetchSources (workflows/deploy-pipeline.asl.json). */
export async function handler(event: unknown): Promise<ResolvedSource> {
  const { source } = parseEvent(eventSchema, event, 'ResolveSource');
  return resolveSource(source, { s3, bucket: requireEnv('ARTIFACT_BUCKET'), readBranch });
}
