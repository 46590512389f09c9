import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import { configSchema } from '../shared/config';
import type { RunHookResult } from '../shared/contracts';
import { parseEvent } from '../shared/parse-event';
import { runHook } from './run-hook';

// The hook comes from the plan, which ValidateInput built from the config: it is checked again
// with the config's own hook schema (config.ts does not export it by name).
const hookSchema = configSchema.shape.environments.valueType.shape.hooks.unwrap().element;

const eventSchema = z.object({ hook: hookSchema, environment: z.string().min(1), execution: z.string().min(1) }).strict();

export async function handler(event: unknown): Promise<RunHookResult> {
  const { hook } = parseEvent(eventSchema, event, 'RunHook');
  return runHook(hook, { fetch, sleep: (ms) => sleep(ms) });
}
