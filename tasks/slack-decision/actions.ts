import { EXECUTION_NAME } from '../../shared/execution-name';

/**
 * The Approve / Reject buttons of the approval message (tasks/await-approval/message.ts) and what
 * tasks/slack-decision reads back from a click: a contract between the two. A button's value names
 * the execution, never its task token (which stays under approvals/).
 */
export const APPROVAL_BLOCK_ID = 'stepdeploy-approval';
export const APPROVE_ACTION_ID = 'stepdeploy-approve';
export const REJECT_ACTION_ID = 'stepdeploy-reject';

const ENVIRONMENT = /^[a-z][a-z0-9-]{0,29}$/;

export interface ButtonTarget {
  readonly environment: string;
  readonly execution: string;
}

/** `<environment>/<execution name>`. */
export function buttonValue(target: ButtonTarget): string {
  return `${target.environment}/${target.execution}`;
}

/**
 * The execution a button names: `<environment>/<execution name or ARN>`; undefined for anything
 * else (the value is data from the request, checked like every other input).
 */
export function parseButtonValue(value: string): ButtonTarget | undefined {
  const slash = value.indexOf('/');
  if (slash < 0) return undefined;
  const environment = value.slice(0, slash);
  const named = value.slice(slash + 1);
  const arn = /^arn:aws[a-z-]*:states:[a-z0-9-]+:\d{12}:execution:[A-Za-z0-9_-]{1,80}:([^:]+)$/.exec(named);
  const execution = arn ? arn[1]! : named;
  return ENVIRONMENT.test(environment) && EXECUTION_NAME.test(execution) ? { environment, execution } : undefined;
}
