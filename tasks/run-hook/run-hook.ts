import type { HookConfig } from '../shared/config';
import type { RunHookResult } from '../shared/contracts';
import { HookFailedError } from './errors';

export interface HookDependencies {
  readonly fetch: typeof fetch;
  readonly sleep: (ms: number) => Promise<void>;
  /** @default Date.now */
  readonly now?: () => number;
}

/** What one attempt saw: the status the URL answered, or why there was none. */
type Outcome = { readonly status: number } | { readonly problem: string };

/**
 * RunHook: calls the hook's URL until it answers the expected status, at most `retries + 1`
 * times, each attempt bounded by `timeoutSeconds`, waiting `intervalSeconds` in between.
 */
export async function runHook(hook: HookConfig, deps: HookDependencies): Promise<RunHookResult> {
  const now = deps.now ?? Date.now;
  const started = now();
  const attempts = hook.retries + 1;
  let outcome: Outcome = { problem: 'not attempted' };
  for (let attempt = 1; attempt <= attempts; attempt++) {
    if (attempt > 1) await deps.sleep(hook.intervalSeconds * 1000);
    outcome = await attemptOnce(hook, deps.fetch);
    if ('status' in outcome && outcome.status === hook.expectStatus) {
      return { name: hook.name, status: outcome.status, attempts: attempt, durationMs: now() - started };
    }
  }
  throw new HookFailedError(
    `hook "${hook.name}" (${hook.method} ${hook.url}) failed after ${attempts} attempt(s): ` +
      `expected status ${hook.expectStatus}, last attempt ${describe(outcome)}`,
  );
}

async function attemptOnce(hook: HookConfig, fetchImpl: typeof fetch): Promise<Outcome> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), hook.timeoutSeconds * 1000);
  try {
    // A redirect is not followed: the check is about what this URL answers, and a redirect to,
    // say, a login page answering 200 would pass for a healthy service.
    const response = await fetchImpl(hook.url, { method: hook.method, redirect: 'manual', signal: controller.signal });
    // Only the status matters; cancelling the body frees the connection now.
    await response.body?.cancel();
    return { status: response.status };
  } catch (err) {
    if (controller.signal.aborted) return { problem: `timed out after ${hook.timeoutSeconds}s` };
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
