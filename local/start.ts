import './quiet-sdk';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { ExecutionGraph, durationOf, formatDuration } from '../cli/graph';
import { ProgressPrinter, statusLine } from '../cli/progress';
import { DEFAULT_CONFIG_PATH } from '../shared/config';
import type { FetchedSource } from '../shared/contracts';
import { prepareExampleRepositories } from './examples';
import type { ExecutionRecord } from './executions';
import { executionName } from '../cli/execution-name';
import { LocalRuntime } from './runtime';

/**
 * `npm start`: one full deployment of the bundled example on the embedded runtime, shown live
 * state by state with the build logs, then what was deployed. Exits 0 when it SUCCEEDED.
 */

const USAGE = `usage: npm start -- [--config PATH] [--env ENVIRONMENT] [--branch SOURCE=BRANCH ...] [--quiet]

Runs one deployment on the local runtime (no AWS account needed) and exits 0 when it succeeds.
  --config PATH       pipeline config (default ./${DEFAULT_CONFIG_PATH})
  --env NAME          environment to deploy (default: acceptance, or the first one in the config)
  --branch S=B        deploy source S from branch B (repeatable; default: each source's default branch)
  --quiet             do not stream build logs`;

interface Options {
  readonly configPath: string;
  readonly environment?: string;
  readonly branches: Record<string, string>;
  readonly quiet: boolean;
}

function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      config: { type: 'string', default: DEFAULT_CONFIG_PATH },
      env: { type: 'string' },
      branch: { type: 'string', multiple: true, default: [] },
      quiet: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
    strict: true,
  });
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  const branches: Record<string, string> = {};
  for (const pair of values.branch ?? []) {
    const at = pair.indexOf('=');
    if (at <= 0)
      throw new Error(`--branch takes SOURCE=BRANCH, got ${JSON.stringify(pair)} (e.g. --branch app=develop)`);
    branches[pair.slice(0, at)] = pair.slice(at + 1);
  }
  return { configPath: values.config!, environment: values.env, branches, quiet: values.quiet! };
}

/** The parts of the execution's output the summary shows. */
interface ExecutionOutput {
  readonly fetched?: FetchedSource[];
  readonly artifact?: { key: string; buildPath: string };
  readonly record?: { currentKey: string; historyKey: string };
}

/** Prints the summary; `stored` holds the snapshot keys that existed before this run. */
function printResult(
  record: ExecutionRecord,
  graph: ExecutionGraph,
  stored: ReadonlySet<string>,
  runtime: LocalRuntime,
): void {
  const out = record.output ? (JSON.parse(record.output) as ExecutionOutput) : {};
  const reused = new Set((out.fetched ?? []).map((s) => s.snapshotKey).filter((k) => stored.has(k)));
  console.log('');
  console.log(
    `execution ${record.name}: ${record.status} in ${formatDuration(durationOf({ startedAt: record.startDate, endedAt: record.stopDate }))}`,
  );
  for (const state of graph.states)
    console.log(statusLine('  ', state.status, state.name, formatDuration(durationOf(state))));
  if (out.fetched) {
    console.log('sources:');
    for (const source of out.fetched) {
      console.log(
        `  ${source.name.padEnd(10)} ${source.branch} @ ${source.commit.slice(0, 12)}  ${source.snapshotKey}${reused.has(source.snapshotKey) ? '  (already stored: same commit as an earlier run)' : ''}`,
      );
    }
  }
  if (out.artifact) {
    console.log('artifacts:');
    console.log(`  s3://${runtime.bucket}/${out.artifact.key}`);
    console.log(`  s3://${runtime.bucket}/${out.artifact.buildPath}/build.zip`);
  }
  if (out.record) console.log(`deployment record: s3://${runtime.bucket}/${out.record.currentKey}`);
  if (record.status !== 'SUCCEEDED') {
    console.log(`error: ${record.error ?? ''}: ${record.cause ?? ''}`);
    console.log(`fix the cause, then redrive: npx stepdeploy redrive --local ${record.name}`);
  }
  console.log(`local data: ${runtime.home}`);
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  const configPath = resolve(options.configPath);
  let graph: ExecutionGraph | undefined;
  let printer: ProgressPrinter | undefined;
  // Parallel fetch builds print at once: each line names its build (`FetchSource app │ ...`).
  let label = (buildId: string): string => buildId;
  const runtime: LocalRuntime = await LocalRuntime.start({
    configPath,
    listeners: [
      {
        onHistoryEvent: (_execution, event) => {
          graph?.apply([event]);
          printer?.update();
        },
      },
    ],
    onBuildLog: options.quiet ? undefined : (line, buildId) => console.log(`      ${label(buildId)} │ ${line}`),
  });
  const width = Math.max(
    'BuildTemplates'.length,
    ...Object.keys(runtime.config.sources).map((s) => `FetchSource ${s}`.length),
  );
  label = (buildId) => runtime.buildLabel(buildId).padEnd(width);
  const stop = (): void => {
    console.log('\nstopping: the running execution is stopped (redrive it later to continue)');
    void runtime.close().finally(() => process.exit(130));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    for (const created of prepareExampleRepositories(runtime.config, configPath, runtime.home)) {
      console.log(`created example repository ${created}`);
    }
    const environments = Object.keys(runtime.config.environments);
    const environment = options.environment ?? (environments.includes('acceptance') ? 'acceptance' : environments[0]!);
    const stored = await storedSnapshots(runtime);
    graph = new ExecutionGraph(runtime.machine.definition);
    printer = new ProgressPrinter(graph, (line) => console.log(line));
    const name = executionName(environment);
    console.log(`stepdeploy local: deploying ${environment} (${name}); API endpoint ${runtime.endpoint}`);
    const started = runtime.machine.start(name, { environment, branches: options.branches, requestedBy: 'npm start' });
    const record = await runtime.machine.wait(started.executionArn);
    printResult(record, graph, stored, runtime);
    process.exitCode = record.status === 'SUCCEEDED' ? 0 : 1;
  } finally {
    process.removeListener('SIGINT', stop);
    process.removeListener('SIGTERM', stop);
    await runtime.close();
  }
}

/** Snapshot keys stored before this run (prefix-scoped listings): the same commit fetched again reuses its key. */
async function storedSnapshots(runtime: LocalRuntime): Promise<Set<string>> {
  const keys = new Set<string>();
  for (const source of Object.keys(runtime.config.sources)) {
    let token: string | undefined;
    do {
      const page = await runtime.s3Client.send(
        new ListObjectsV2Command({ Bucket: runtime.bucket, Prefix: `sources/${source}/`, ContinuationToken: token }),
      );
      for (const object of page.Contents ?? []) if (object.Key) keys.add(object.Key);
      token = page.NextContinuationToken;
    } while (token);
  }
  return keys;
}

main().catch((err: unknown) => {
  console.error(`stepdeploy: ${err instanceof Error ? err.message : String(err)}`);
  process.exitCode = 1;
});
