import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parse, stringify } from 'yaml';
import { ensureExampleRepositories } from '../../local/examples';
import { LocalRuntime, type LocalRuntimeOptions } from '../../local/runtime';
import type { ExecutionRecord } from '../../local/executions';

const PROJECT_ROOT = resolve(__dirname, '..', '..');

export interface TestRuntime {
  readonly runtime: LocalRuntime;
  readonly dir: string;
  /** Starts an execution and waits for its end. */
  run(name: string, input: unknown): Promise<ExecutionRecord>;
  close(): Promise<void>;
}

/**
 * The real local runtime on the bundled example, in a temporary folder: real git repositories,
 * real bash builds, real S3 protocol. `edit` may change the example config first.
 */
export async function startExampleRuntime(
  edit: (config: Record<string, any>) => void = () => undefined,
  options: Partial<LocalRuntimeOptions> = {},
): Promise<TestRuntime> {
  const dir = mkdtempSync(join(tmpdir(), 'stepdeploy-runtime-'));
  const config = parse(require('node:fs').readFileSync(join(PROJECT_ROOT, 'stepdeploy.config.yml'), 'utf8'));
  config.buildspecs = {
    build: join(PROJECT_ROOT, config.buildspecs.build),
    deploy: join(PROJECT_ROOT, config.buildspecs.deploy),
  };
  edit(config);
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
