/**
 * Which execution names stepdeploy runs. Step Functions accepts more (".", non-ASCII letters), but
 * the name becomes part of S3 keys (`artifacts/<environment>/<execution>/`), the deploy lease and
 * role session names, and CombineConfigAndCode and Deploy refuse anything else. One rule, checked
 * by the CLI before StartExecution and by ValidateInput before any build, so the two cannot drift.
 */

export const EXECUTION_NAME_MAX_LENGTH = 80;
export const EXECUTION_NAME = /^[A-Za-z0-9_-]{1,80}$/;
export const EXECUTION_NAME_RULE = `must be 1-${EXECUTION_NAME_MAX_LENGTH} letters, digits, "_" or "-" (it becomes part of S3 keys)`;

/** Returns why `name` cannot name an execution, or `undefined` when it can. */
export function executionNameViolation(name: string): string | undefined {
  return EXECUTION_NAME.test(name) ? undefined : EXECUTION_NAME_RULE;
}

/** A valid name close to `name`, to offer as the fix: `release-1.2.3` → `release-1_2_3`. */
export function suggestExecutionName(name: string): string {
  const replaced = [...name]
    .map((c) => (/[A-Za-z0-9_-]/.test(c) ? c : '_'))
    .join('')
    .slice(0, EXECUTION_NAME_MAX_LENGTH);
  return replaced === '' ? 'acceptance-hotfix-42' : replaced;
}
