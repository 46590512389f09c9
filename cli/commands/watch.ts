import { ExitCode } from '../exit-codes';
import { executionNameOf } from '../execution-ref';
import { executionDefinition, follow } from '../follow';
import { ExecutionGraph } from '../graph';
import { eprintln, type Io } from '../io';
import type { Target } from '../target';
import { failureLine, makeView } from '../view';

export interface WatchOptions {
  readonly json?: boolean;
  /** After a redrive: wait for the history to show it before taking FAILED as the end. */
  readonly minRedriveCount?: number;
  /** How to repeat the target flags in a hint (`--local`). */
  readonly targetFlags?: string;
  /** Seconds between polls. @default the target's */
  readonly interval?: number;
}

/** `watch`, and the `--wait` of start and redrive: follows the execution to its end; the exit code says how it ended. */
export async function watchExecution(
  target: Target,
  executionArn: string,
  io: Io,
  options: WatchOptions = {},
): Promise<ExitCode> {
  const definition = await executionDefinition(target, executionArn);
  const graph = new ExecutionGraph(definition);
  const name = executionNameOf(executionArn);
  const view = makeView(
    graph,
    { executionName: name, consoleUrl: target.consoleUrl(executionArn) },
    io,
    options.json === true,
  );
  const interrupted = new AbortController();
  const onSignal = (): void => interrupted.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const stopLogs = target.runtimeLogs?.((line) => view.log(line));
  try {
    await follow(target, executionArn, graph, definition, {
      onUpdate: (update) => view.update(update),
      minRedriveCount: options.minRedriveCount,
      signal: interrupted.signal,
      pollMs: options.interval !== undefined ? options.interval * 1000 : undefined,
    });
  } finally {
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
    stopLogs?.();
    view.finish();
  }
  if (interrupted.signal.aborted) {
    const note =
      target.kind === 'in-process'
        ? 'interrupted: the execution ran in this process and is stopped with it; redrive it to continue'
        : `interrupted: the execution goes on; follow it again with \`stepdeploy watch ${name}${options.targetFlags ?? ''}\``;
    eprintln(io, note);
    return ExitCode.Interrupted;
  }
  if (graph.status === 'SUCCEEDED') return ExitCode.Ok;
  const failed = graph.states.find((s) => s.status === 'FAILED' || s.status === 'TIMED_OUT');
  const where = failed ? ` at ${failed.name}: ${failureLine(failed)}` : graph.error ? `: ${failureLine(graph)}` : '';
  eprintln(io, `stepdeploy: execution ${name} ${graph.status}${where}`);
  if (graph.status !== 'ABORTED' || failed)
    eprintln(
      io,
      `fix the cause, then retry from the failed step: stepdeploy redrive ${name}${options.targetFlags ?? ''}`,
    );
  return ExitCode.ExecutionFailed;
}
