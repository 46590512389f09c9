/**
 * How long one post-deploy hook may run. RunHook is one Lambda invocation, bounded by its Task's
 * TimeoutSeconds (900 in workflows/deploy-pipeline.asl.json; infra sizes the Lambda from it):
 * every attempt, attempt timeout and wait of a hook must fit in it with a margin, or a slow hook
 * would end as a Lambda timeout (States.Timeout) instead of HookFailedError naming what it saw.
 */
export const HOOK_TIME_BUDGET_SECONDS = 840;

interface HookTiming {
  readonly retries: number;
  readonly timeoutSeconds: number;
  readonly intervalSeconds: number;
}

/** The longest a hook can run: every attempt timing out, with the interval between attempts. */
export function hookWorstCaseSeconds(hook: HookTiming): number {
  return (hook.retries + 1) * hook.timeoutSeconds + hook.retries * hook.intervalSeconds;
}

/** Why the hook cannot fit in its budget, or `undefined` when it fits. */
export function hookTimeViolation(hook: HookTiming): string | undefined {
  const worst = hookWorstCaseSeconds(hook);
  if (worst <= HOOK_TIME_BUDGET_SECONDS) return undefined;
  return (
    `can run ${worst}s when every attempt times out ((retries ${hook.retries} + 1) × timeoutSeconds ${hook.timeoutSeconds} + ` +
    `retries ${hook.retries} × intervalSeconds ${hook.intervalSeconds}), over the ${HOOK_TIME_BUDGET_SECONDS}s a hook may take ` +
    '(RunHook is one Lambda invocation): lower retries, timeoutSeconds or intervalSeconds'
  );
}
