import { usageError } from './errors';

/**
 * EXECUTION arguments: a full execution ARN, or a bare execution name resolved against the
 * state machine (`arn:…:stateMachine:M` → `arn:…:execution:M:<name>`).
 */

const EXECUTION_ARN = /^arn:[a-z-]+:states:[a-z0-9-]+:\d{12}:execution:[^:]+:[^:]+$/;

/** What `--name` accepts: stricter than Step Functions, because combine-sources puts the name in S3 keys. */
export const EXECUTION_NAME = /^[A-Za-z0-9_-]{1,80}$/;

export function checkExecutionName(name: string): string {
  if (EXECUTION_NAME.test(name)) return name;
  throw usageError(
    `--name ${JSON.stringify(name)} is not a valid execution name: use 1-80 letters, digits, "_" or "-" (it becomes part of S3 keys), e.g. --name acceptance-hotfix-42`,
  );
}

export function executionArnFor(stateMachineArn: string, execution: string): string {
  if (execution.startsWith('arn:')) {
    if (!EXECUTION_ARN.test(execution)) {
      throw usageError(`${JSON.stringify(execution)} is not an execution ARN (arn:aws:states:<region>:<account>:execution:<state machine>:<name>); or pass just the execution name`);
    }
    return execution;
  }
  if (execution === '' || /[\s:/]/.test(execution) || execution.length > 80) {
    throw usageError(`${JSON.stringify(execution)} is not an execution name or ARN; list executions with \`stepdeploy executions\``);
  }
  const match = /^(arn:[^:]+:states:[^:]+:[^:]+):stateMachine:([^:]+)$/.exec(stateMachineArn);
  if (!match) throw usageError(`${JSON.stringify(stateMachineArn)} is not a state machine ARN (arn:aws:states:<region>:<account>:stateMachine:<name>)`);
  return `${match[1]}:execution:${match[2]}:${execution}`;
}

export function executionNameOf(executionArn: string): string {
  return executionArn.slice(executionArn.lastIndexOf(':') + 1);
}
