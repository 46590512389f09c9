import { S3Client } from '@aws-sdk/client-s3';
import { z } from 'zod';
import { loadConfig } from '../../shared/config';
import type { Plan, RedeployPrepared } from '../../shared/contracts';
import { clientSettings, type Environment, requireEnv } from '../../shared/env';
import { lambdaHandler } from '../shared/lambda';
import { parseEvent } from '../shared/parse-event';
import { prepareRedeploy } from './redeploy';
import { validateInput } from './validate-input';

// `input` is whatever the execution was started with: validateInput is the one that judges it.
const eventSchema = z.object({ input: z.unknown(), execution: z.string().min(1) }).strict();

export function createHandler(env: Environment) {
  const configPath = requireEnv(env, 'STEPDEPLOY_CONFIG_PATH');
  // Once per container: the config ships with the function and cannot change under it.
  const config = loadConfig(configPath);
  const s3 = new S3Client(clientSettings(env, 'S3'));
  return async (event: unknown): Promise<Plan | (Plan & RedeployPrepared)> => {
    const { input, execution } = parseEvent(eventSchema, event, 'ValidateInput');
    const plan = validateInput(input, execution, config, configPath);
    if (plan.redeployOf === null) return plan;
    // A redeploy reads what the earlier deployment left in the bucket: only then is the bucket needed.
    const bucket = requireEnv(env, 'ARTIFACT_BUCKET');
    const prepared = await prepareRedeploy(plan, plan.redeployOf, config, { s3, bucket });
    return { ...plan, ...prepared };
  };
}

export const handler = lambdaHandler(createHandler);
