import { startExampleRuntime, type ExampleRuntime } from '../local/example-runtime';
import type { HistoryEvent } from '../local/history';
import { registerBenchDirectory } from './interrupt';

export type BenchRuntime = ExampleRuntime;

/**
 * The real local runtime on a copy of the example config; notifications are dropped (they would
 * print every event). Its folder is removed by an interrupted bench too (removeBenchDirectoriesOnInterrupt).
 */
export function startBenchRuntime(
  edit: (config: Record<string, any>, dir: string) => void,
  retryIntervalMs = 0,
): Promise<BenchRuntime> {
  const registered = (config: Record<string, any>, dir: string): void => {
    registerBenchDirectory(dir);
    edit(config, dir);
  };
  return startExampleRuntime(registered, { retryIntervalMs, notify: async () => undefined });
}

export interface StateSpan {
  readonly name: string;
  readonly start: number;
  readonly end: number;
}

/** Top-level states with their entered / exited (or failed) times, from the execution history. */
export function topLevelSpans(history: ReadonlyArray<HistoryEvent>, topLevel: ReadonlyArray<string>): StateSpan[] {
  const spans: StateSpan[] = [];
  const open = new Map<string, number>();
  for (const e of history) {
    const entered = (e.stateEnteredEventDetails as { name?: string } | undefined)?.name;
    const exited = (e.stateExitedEventDetails as { name?: string } | undefined)?.name;
    if (entered !== undefined && topLevel.includes(entered)) open.set(entered, e.timestamp);
    if (exited !== undefined && topLevel.includes(exited) && open.has(exited)) {
      spans.push({ name: exited, start: open.get(exited)!, end: e.timestamp });
      open.delete(exited);
    }
  }
  return spans;
}

/** The id of the build a Task state's history recorded (TaskSucceeded output → Build.Id or buildId). */
export function buildIdOf(history: ReadonlyArray<HistoryEvent>, stateName: string): string | undefined {
  for (const e of history) {
    const exited = e.stateExitedEventDetails as { name?: string; output?: string } | undefined;
    if (exited?.name !== stateName || exited.output === undefined) continue;
    const output = JSON.parse(exited.output) as Record<string, any>;
    return stateName === 'Deploy' ? output.deploy?.buildId : output.build?.buildId;
  }
  return undefined;
}
