import { S3Client } from '@aws-sdk/client-s3';
import { z } from 'zod';
import { loadConfig } from '../../shared/config';
import type { Plan, RedeployPrepared } from '../../shared/contracts';
import { requireEnv } from '../../shared/env';
import { parseEvent } from '../shared/parse-event';
import { prepareRedeploy } from './redeploy';
import { validateInput } from './validate-input';

const configPath = requireEnv('STEPDEPLOY_CONFIG_PATH');
// Once per container: the config ships with the function and cannot change under it.
const config = loadConfig(configPath);
const s3 = new S3Client({});

// `input` is whatever the execution was started with: validateInput is the one that judges it.
const eventSchema = z.object({ input: z.unknown(), execution: z.string().min(1) }).strict();

export async function handler(event: unknown): Promise<Plan | (Plan & RedeployPrepared)> {
  const { input, execution } = parseEvent(eventSchema, event, 'ValidateInput');
  const plan = validateInput(input, execution, config, configPath);
  if (plan.redeployOf === null) return plan;
  // A redeploy reads what the earlier deployment left in the bucket: only then is the bucket needed.
  const prepared = await prepareRedeploy(plan, plan.redeployOf, config, { s3, bucket: requireEnv('ARTIFACT_BUCKET') });
  return { ...plan, ...prepared };
}
