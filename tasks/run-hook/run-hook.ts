import type { HookConfig } from '../../shared/config';
import type { RunHookResult } from '../../shared/contracts';
import { HOOK_TIME_BUDGET_SECONDS } from '../../shared/hook-time';
import { HookFailedError } from './errors';

export interface HookDependencies {
  readonly fetch: typeof fetch;
  readonly sleep: (ms: number) => Promise<void>;
  /** @default Date.now */
  readonly now?: () => number;
  /** How long the hook may run in all, attempts and waits included. @default HOOK_TIME_BUDGET_SECONDS */
  readonly budgetMs?: number;
}

/** What one attempt saw: the status the URL answered, or why there was none. */
type Outcome = { readonly status: number } | { readonly problem: string };

/**
 * RunHook: calls the hook's URL until it answers the expected status, at most `retries + 1`
 * times, each attempt bounded by `timeoutSeconds`, waiting `intervalSeconds` in between. The
 * whole run stays within its time budget, so that a slow hook fails here, as HookFailedError,
 * and never as a timeout of the Lambda around it (the config refuses a hook that cannot fit; a
 * plan made before that rule is cut short here).
 */
export async function runHook(hook: HookConfig, deps: HookDependencies): Promise<RunHookResult> {
  const now = deps.now ?? Date.now;
  const started = now();
  const budgetMs = deps.budgetMs ?? HOOK_TIME_BUDGET_SECONDS * 1000;
  const deadline = started + budgetMs;
  const attempts = hook.retries + 1;
  let outcome: Outcome = { problem: 'not attempted' };
  let made = 0;
  for (let attempt = 1; attempt <= attempts; attempt++) {
    if (attempt > 1) {
      if (deadline - now() <= hook.intervalSeconds * 1000) break;
      await deps.sleep(hook.intervalSeconds * 1000);
    }
    const remaining = deadline - now();
    if (remaining <= 0) break;
    outcome = await attemptOnce(hook, deps.fetch, Math.min(hook.timeoutSeconds * 1000, remaining));
    made = attempt;
    if ('status' in outcome && outcome.status === hook.expectStatus) {
      return { name: hook.name, status: outcome.status, attempts: attempt, durationMs: now() - started };
    }
  }
  const why =
    made < attempts
      ? `gave up after ${made} of ${attempts} attempt(s), its time budget of ${budgetMs / 1000}s spent`
      : `failed after ${attempts} attempt(s)`;
  throw new HookFailedError(
    `hook "${hook.name}" (${hook.method} ${hook.url}) ${why}: expected status ${hook.expectStatus}, last attempt ${describe(outcome)}`,
  );
}

async function attemptOnce(hook: HookConfig, fetchImpl: typeof fetch, timeoutMs: number): Promise<Outcome> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeoutMs);
  try {
    // A redirect is not followed: the check is about what this URL answers, and a redirect to,
    // say, a login page answering 200 would pass for a healthy service.
    const response = await fetchImpl(hook.url, { method: hook.method, redirect: 'manual', signal: controller.signal });
    // Only the status matters; cancelling the body frees the connection now.
    await response.body?.cancel();
    return { status: response.status };
  } catch (err) {
    if (controller.signal.aborted) return { problem: `timed out after ${timeoutMs / 1000}s` };
    return { problem: `network error: ${networkErrorText(err)}` };
  } finally {
    clearTimeout(timer);
  }
}

function describe(outcome: Outcome): string {
  return 'status' in outcome ? `got ${outcome.status}` : outcome.problem;
}

/** fetch reports every network failure as "fetch failed"; the reason is in its cause. */
function networkErrorText(err: unknown): string {
  const error = err as Error & { cause?: Error & { code?: string } };
  return error.cause?.message || error.cause?.code || error.message;
}
