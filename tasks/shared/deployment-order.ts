/**
 * Which of two executions of one environment is newer: the one that started later (Step Functions'
 * `$$.Execution.StartTime`), ties broken by execution name. An older execution never deploys over
 * a newer one, and current.json always names the newest deployment.
 */
export interface Ordered {
  readonly execution: string;
  /** ISO 8601 start time of the execution. */
  readonly startedAt: string;
}

export function compareExecutions(a: Ordered, b: Ordered): number {
  const byTime = Date.parse(a.startedAt) - Date.parse(b.startedAt);
  if (byTime !== 0) return byTime;
  return a.execution < b.execution ? -1 : a.execution > b.execution ? 1 : 0;
}

export function isNewer(a: Ordered, than: Ordered): boolean {
  return compareExecutions(a, than) > 0;
}

/**
 * Whether `other` — a lease holder, or the execution current.json names — is another execution,
 * newer than `self`: then `self` must not deploy or become current. A record without a start time
 * (written before records carried one) is never newer.
 */
export function supersedes(
  other: { readonly execution: string; readonly startedAt?: string } | undefined,
  self: Ordered,
): boolean {
  if (!other?.startedAt || other.execution === self.execution) return false;
  return isNewer({ execution: other.execution, startedAt: other.startedAt }, self);
}
