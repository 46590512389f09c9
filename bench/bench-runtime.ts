import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parse, stringify } from 'yaml';
import type { ExecutionRecord } from '../local/executions';
import type { HistoryEvent } from '../local/history';
import { LocalRuntime } from '../local/runtime';

const PROJECT_ROOT = resolve(__dirname, '..');

export interface BenchRuntime {
  readonly runtime: LocalRuntime;
  readonly dir: string;
  run(name: string, input: unknown): Promise<ExecutionRecord>;
  close(): Promise<void>;
}

/**
 * The real local runtime on a copy of the example config in a temp folder; `edit` changes the
 * config first (sources, buildspecs). Notifications are dropped (they would print every event).
 */
export async function startBenchRuntime(edit: (config: Record<string, any>, dir: string) => void, retryIntervalMs = 0): Promise<BenchRuntime> {
  const dir = mkdtempSync(join(tmpdir(), 'stepdeploy-bench-runtime-'));
  const config = parse(readFileSync(join(PROJECT_ROOT, 'stepdeploy.config.yml'), 'utf8'));
  config.buildspecs = {
    build: join(PROJECT_ROOT, config.buildspecs.build),
    deploy: join(PROJECT_ROOT, config.buildspecs.deploy),
  };
  edit(config, dir);
  const configPath = join(dir, 'stepdeploy.config.yml');
  writeFileSync(configPath, stringify(config));
  const runtime = await LocalRuntime.start({ configPath, retryIntervalMs, notify: async () => undefined });
  return {
    runtime,
    dir,
    async run(name, input) {
      const { executionArn } = runtime.machine.start(name, input);
      return runtime.machine.wait(executionArn);
    },
    async close() {
      await runtime.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
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
