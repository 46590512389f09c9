import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parse, stringify } from 'yaml';
import { ensureExampleRepositories } from './examples';
import type { ExecutionRecord } from './executions';
import { LocalRuntime, type LocalRuntimeOptions } from './runtime';

const PROJECT_ROOT = resolve(__dirname, '..');

export interface ExampleRuntime {
  readonly runtime: LocalRuntime;
  /** The temporary folder holding the config copy and its `.stepdeploy/`. */
  readonly dir: string;
  /** Starts an execution and waits for its end. */
  run(name: string, input: unknown): Promise<ExecutionRecord>;
  /** Stops the runtime and removes the folder. */
  close(): Promise<void>;
}

/**
 * The real local runtime on a copy of the bundled example config in a temporary folder (its
 * example repositories made there too): for tests and benchmarks that need a whole pipeline.
 * `edit` may change the config first (sources, environments, hooks, buildspecs); it gets the folder.
 */
export async function startExampleRuntime(
  // biome-ignore lint/suspicious/noExplicitAny: the callback edits the parsed YAML config before it is validated
  edit: (config: Record<string, any>, dir: string) => void = () => undefined,
  options: Partial<LocalRuntimeOptions> = {},
): Promise<ExampleRuntime> {
  const dir = mkdtempSync(join(tmpdir(), 'stepdeploy-runtime-'));
  const config = parse(readFileSync(join(PROJECT_ROOT, 'stepdeploy.config.yml'), 'utf8'));
  config.buildspecs = {
    build: join(PROJECT_ROOT, config.buildspecs.build),
    deploy: join(PROJECT_ROOT, config.buildspecs.deploy),
  };
  edit(config, dir);
  const configPath = join(dir, 'stepdeploy.config.yml');
  writeFileSync(configPath, stringify(config));
  ensureExampleRepositories(join(dir, '.stepdeploy', 'example-repos'));
  const runtime = await LocalRuntime.start({ configPath, retryIntervalMs: 0, ...options });
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
