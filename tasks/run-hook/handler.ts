import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import { configSchema } from '../../shared/config';
import type { RunHookResult } from '../../shared/contracts';
import type { Environment } from '../../shared/env';
import { HOOK_TIME_BUDGET_SECONDS } from '../../shared/hook-time';
import { lambdaHandler } from '../shared/lambda';
import { parseEvent } from '../shared/parse-event';
import { runHook } from './run-hook';

// The hook comes from the plan, which ValidateInput built from the config: it is checked again
// with the config's own hook schema (config.ts does not export it by name).
const hookSchema = configSchema.shape.environments.valueType.shape.hooks.unwrap().element;

const eventSchema = z
  .object({ hook: hookSchema, environment: z.string().min(1), execution: z.string().min(1) })
  .strict();

/** Left for answering Step Functions once the hook has given up. */
const RESPONSE_MARGIN_MS = 10_000;

/** RunHook reads no environment: the hook comes in the event. */
export function createHandler(_env: Environment) {
  return async (event: unknown, context?: { getRemainingTimeInMillis(): number }): Promise<RunHookResult> => {
    const { hook } = parseEvent(eventSchema, event, 'RunHook');
    // The Lambda's own timeout bounds the hook too, should it ever be set below the budget.
    const remaining = (context?.getRemainingTimeInMillis() ?? Number.POSITIVE_INFINITY) - RESPONSE_MARGIN_MS;
    return runHook(hook, {
      fetch,
      sleep: (ms) => sleep(ms),
      budgetMs: Math.min(HOOK_TIME_BUDGET_SECONDS * 1000, remaining),
    });
  };
}

export const handler = lambdaHandler(createHandler);
