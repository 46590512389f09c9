import { z } from 'zod';
import { loadConfig } from '../../shared/config';
import type { Plan } from '../../shared/contracts';
import { requireEnv } from '../../shared/env';
import { parseEvent } from '../shared/parse-event';
import { validateInput } from './validate-input';

const configPath = requireEnv('STEPDEPLOY_CONFIG_PATH');
// Once per container: the config ships with the function and cannot change under it.
const config = loadConfig(configPath);

// `input` is whatever the execution was started with: validateInput is the one that judges it.
const eventSchema = z.object({ input: z.unknown(), execution: z.string().min(1) }).strict();

export async function handler(event: unknown): Promise<Plan> {
  const { input, execution } = parseEvent(eventSchema, event, 'ValidateInput');
  return validateInput(input, execution, config, configPath);
}
