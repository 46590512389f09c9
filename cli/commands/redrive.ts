import { DescribeExecutionCommand, RedriveExecutionCommand, StopExecutionCommand } from '@aws-sdk/client-sfn';
import { ExitCode } from '../exit-codes';
import { executionNameOf } from '../execution-ref';
import { eprintln, println, type Io } from '../io';
import type { Target } from '../target';
import { printSummary } from './summary';
import { watchExecution } from './watch';

export interface RedriveOptions {
  readonly wait?: boolean;
  readonly json?: boolean;
  readonly interval?: number;
  /** Leave out the in-process runtime's build logs. */
  readonly quiet?: boolean;
}

/** `redrive`: restarts the execution at its failed state; earlier states do not run again. */
export async function runRedrive(
  target: Target,
  executionArn: string,
  options: RedriveOptions,
  io: Io,
  targetFlags: string,
): Promise<ExitCode> {
  const { redriveDate } = await target.sfn.send(new RedriveExecutionCommand({ executionArn }));
  const { redriveCount = 1 } = await target.sfn.send(new DescribeExecutionCommand({ executionArn }));
  const name = executionNameOf(executionArn);
  if (options.json) println(io, JSON.stringify({ executionArn, redriveDate, redriveCount }));
  else println(io, `redriven ${name} (redrive ${redriveCount}) on ${target.description}`);
  let wait = options.wait === true;
  if (!wait && target.kind === 'in-process') {
    eprintln(
      io,
      'the local runtime runs in this process, so redrive waits for the end (to return at once, run `stepdeploy local serve` in another terminal)',
    );
    wait = true;
  }
  if (!wait) {
    if (!options.json) println(io, `follow it: stepdeploy watch ${name}${targetFlags}`);
    return ExitCode.Ok;
  }
  const code = await watchExecution(target, executionArn, io, {
    json: options.json,
    minRedriveCount: redriveCount,
    targetFlags,
    interval: options.interval,
  });
  if (!options.json && code !== ExitCode.Interrupted) await printSummary(target, executionArn, io);
  return code;
}

/** `stop`: aborts a running execution (its running build is stopped too); it can be redriven later. */
export async function runStop(
  target: Target,
  executionArn: string,
  options: { readonly cause?: string; readonly json?: boolean },
  io: Io,
): Promise<ExitCode> {
  const name = executionNameOf(executionArn);
  const { status } = await target.sfn.send(new DescribeExecutionCommand({ executionArn }));
  if (status !== 'RUNNING') {
    if (options.json) println(io, JSON.stringify({ executionArn, status, stopped: false }));
    else println(io, `execution ${name} is ${status}: nothing to stop`);
    return ExitCode.Ok;
  }
  const { stopDate } = await target.sfn.send(
    new StopExecutionCommand({
      executionArn,
      error: 'Stopped',
      cause: options.cause ?? 'stopped with stepdeploy stop',
    }),
  );
  if (options.json) println(io, JSON.stringify({ executionArn, status: 'ABORTED', stopped: true, stopDate }));
  else println(io, `stopped ${name}; redrive it to continue from where it stopped: stepdeploy redrive ${name}`);
  return ExitCode.Ok;
}
