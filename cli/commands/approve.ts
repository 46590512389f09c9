import { dirname } from 'node:path';
import { DescribeExecutionCommand } from '@aws-sdk/client-sfn';
import { sendDecision, type DecisionAnswer, type DecisionBody } from '../approval-url';
import { CliError, usageError } from '../errors';
import { ExitCode } from '../exit-codes';
import { executionNameOf } from '../execution-ref';
import { println, type Io } from '../io';
import type { Target } from '../target';

export interface DecisionOptions {
  readonly comment?: string;
  readonly reason?: string;
  readonly approvalUrl?: string;
  readonly json?: boolean;
}

/** What the function URL's front end answers itself, before the function runs (Lambda: "Forbidden"). */
function refusal(status: number, message: string | undefined): string {
  if (status === 403 && (message === undefined || /forbidden/i.test(message)))
    return 'the approval URL refused your credentials (403): your role needs the operator policy (lambda:InvokeFunctionUrl on the approval function)';
  return message ?? `HTTP ${status}`;
}

/**
 * Decides a deployment that waits at AwaitApproval, through the approval function (never
 * SendTaskSuccess): `approve` / `reject` and the console's buttons. A refusal throws a CliError
 * with the function's reason.
 */
export async function decide(
  target: Target,
  executionArn: string,
  action: DecisionBody['action'],
  options: Pick<DecisionOptions, 'comment' | 'reason' | 'approvalUrl'>,
  configPath: string,
): Promise<DecisionAnswer['body']> {
  if (action === 'reject' && (options.reason === undefined || options.reason.trim() === ''))
    throw usageError('reject needs --reason TEXT: it is kept in the execution history and shown to whoever started it');
  const execution = executionNameOf(executionArn);
  const described = await target.sfn.send(new DescribeExecutionCommand({ executionArn }));
  const environment = environmentOf(described.input);
  if (described.status !== 'RUNNING') {
    throw new CliError(
      `${execution} is ${described.status}: only a running execution waits for approval${described.status === 'FAILED' ? ` (redrive it to ask again: stepdeploy redrive ${execution})` : ''}`,
      ExitCode.ServiceError,
    );
  }
  const body: DecisionBody = {
    action,
    environment,
    execution,
    ...(action === 'approve' && options.comment ? { comment: options.comment } : {}),
    ...(action === 'reject' ? { reason: options.reason } : {}),
  };
  const answer = await sendDecision(target, body, { approvalUrl: options.approvalUrl, gitCwd: dirname(configPath) });
  if (answer.status !== 200)
    throw new CliError(`${action} refused: ${refusal(answer.status, answer.body.message)}`, ExitCode.ServiceError);
  return answer.body;
}

/** `approve` / `reject`. */
export async function runDecision(
  target: Target,
  executionArn: string,
  action: DecisionBody['action'],
  options: DecisionOptions,
  configPath: string,
  io: Io,
): Promise<ExitCode> {
  const answer = await decide(target, executionArn, action, options, configPath);
  if (options.json) println(io, JSON.stringify({ executionArn, ...answer }));
  else println(io, `${answer.message} (decided by ${answer.decidedBy})`);
  return ExitCode.Ok;
}

function environmentOf(input: string | undefined): string {
  try {
    const environment = (JSON.parse(input ?? '{}') as { environment?: unknown }).environment;
    if (typeof environment === 'string') return environment;
  } catch {
    // reported below
  }
  throw new CliError('the execution input names no environment: it is not a stepdeploy deployment', ExitCode.Usage);
}
