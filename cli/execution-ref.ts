import { executionNameViolation, suggestExecutionName } from '../shared/execution-name';
import { usageError } from './errors';

/**
 * EXECUTION arguments: a full execution ARN, or a bare execution name resolved against the
 * state machine (`arn:…:stateMachine:M` → `arn:…:execution:M:<name>`).
 */

const EXECUTION_ARN = /^arn:[a-z-]+:states:[a-z0-9-]+:\d{12}:execution:[^:]+:[^:]+$/;

/** What `--name` accepts: the rule ValidateInput applies too (shared/execution-name.ts). */
export function checkExecutionName(name: string): string {
  const violation = executionNameViolation(name);
  if (violation === undefined) return name;
  throw usageError(
    `--name ${JSON.stringify(name)} is not a valid execution name: it ${violation}, e.g. --name ${suggestExecutionName(name)}`,
  );
}

export function executionArnFor(stateMachineArn: string, execution: string): string {
  if (execution.startsWith('arn:')) {
    if (!EXECUTION_ARN.test(execution)) {
      throw usageError(
        `${JSON.stringify(execution)} is not an execution ARN (arn:aws:states:<region>:<account>:execution:<state machine>:<name>); or pass just the execution name`,
      );
    }
    return execution;
  }
  if (execution === '' || /[\s:/]/.test(execution) || execution.length > 80) {
    throw usageError(
      `${JSON.stringify(execution)} is not an execution name or ARN; list executions with \`stepdeploy executions\``,
    );
  }
  const match = /^(arn:[^:]+:states:[^:]+:[^:]+):stateMachine:([^:]+)$/.exec(stateMachineArn);
  if (!match)
    throw usageError(
      `${JSON.stringify(stateMachineArn)} is not a state machine ARN (arn:aws:states:<region>:<account>:stateMachine:<name>)`,
    );
  return `${match[1]}:execution:${match[2]}:${execution}`;
}

export function executionNameOf(executionArn: string): string {
  return executionArn.slice(executionArn.lastIndexOf(':') + 1);
}
