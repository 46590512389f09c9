import '../local/quiet-sdk';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { ensureExampleRepositories } from '../local/examples';
import type { ExecutionRecord } from '../local/executions';
import { buildIdOf, startBenchRuntime } from './bench-runtime';
import { git } from './git-fixtures';
import { registerBenchChild, removeBenchDirectoriesOnInterrupt } from './interrupt';
import { summarize, type Summary } from './stats';

/**
 * Many executions at once on the example: acceptance from any branch, preproduction and
 * production from main. Checks that none reads another's artifact, that each one's record names
 * its own commits, and counts the older executions the deploy lease turns away
 * (DeploySupersededError).
 */

export interface ScaleOptions {
  readonly runs: number;
  readonly executions: number;
  /** Milliseconds between Deploy's DeployLeaseBusyError retries (the definition's backoff is minutes). */
  readonly retryIntervalMs: number;
  readonly log: (line: string) => void;
}

export interface ScaleResult {
  readonly executions: number;
  readonly single: Summary;
  readonly concurrent: Summary;
  /** Outcomes over all runs: SUCCEEDED, or the error name. */
  readonly outcomes: Readonly<Record<string, number>>;
  /** Lease waits (Deploy retries after DeployLeaseBusyError), median per execution. */
  readonly leaseWaits: Summary;
  readonly crossTalk: ReadonlyArray<string>;
  readonly checked: number;
  /**
   * Executions that ended otherwise than SUCCEEDED or turned away by the lease
   * (DeploySupersededError): name, the state they failed in, error and cause. Absent from
   * results saved before 2026-12-05 03:00.
   */
  readonly unexpected?: ReadonlyArray<string>;
}

/** A failure's cause, short: for a failed build (the `.sync` integration's cause is the Build), the phase that failed and why. */
export function failureCause(cause: string | undefined): string {
  try {
    const build = (
      JSON.parse(cause ?? '') as {
        Build?: {
          Phases?: Array<{
            PhaseType: string;
            PhaseStatus?: string;
            Contexts?: Array<{ StatusCode?: string; Message?: string }>;
          }>;
        };
      }
    ).Build;
    const failed = build?.Phases?.find((p) => p.PhaseStatus !== undefined && p.PhaseStatus !== 'SUCCEEDED');
    if (failed)
      return oneLine(
        `build phase ${failed.PhaseType} ${failed.PhaseStatus}: ${failed.Contexts?.map((c) => `${c.StatusCode ?? ''} ${c.Message ?? ''}`.trim()).join('; ') ?? ''}`,
      );
  } catch {
    // Not JSON: the cause as it is.
  }
  return oneLine(cause ?? '(no cause)');
}

/** On one line and at most 300 characters: it goes into the one-line summary. */
function oneLine(text: string): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > 300 ? `${flat.slice(0, 299)}…` : flat;
}

/** How an execution may end when a newer one of its environment holds or took the deploy lease. */
const EXPECTED_FAILURE = 'DeploySupersededError';

const ENVIRONMENTS = ['acceptance', 'preproduction', 'production'] as const;
const ACCEPTANCE_BRANCHES = ['main', 'develop', 'feature/cloudformationchange'] as const;

function inputFor(i: number): { environment: string; branches: Record<string, string> } {
  const environment = ENVIRONMENTS[i % 3]!;
  if (environment !== 'acceptance') return { environment, branches: { app: 'main', config: 'main' } };
  return {
    environment,
    branches: { app: ACCEPTANCE_BRANCHES[Math.floor(i / 3) % 3]!, config: i % 2 === 0 ? 'develop' : 'main' },
  };
}

export async function measureScale(options: ScaleOptions): Promise<ScaleResult> {
  let repos = '';
  const bench = await startBenchRuntime((_config, dir) => {
    repos = join(dir, '.stepdeploy', 'example-repos');
    ensureExampleRepositories(repos);
  }, options.retryIntervalMs);
  const commit = (source: string, branch: string): string =>
    git(join(repos, `${source}.git`), ['rev-parse', `refs/heads/${branch}`]).trim();
  const s3 = bench.runtime.s3Client;
  const bucket = bench.runtime.bucket;
  const readJson = async (key: string): Promise<any> => {
    const out = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    return JSON.parse(await out.Body!.transformToString());
  };
  const single: number[] = [];
  const concurrent: number[] = [];
  const outcomes: Record<string, number> = {};
  const waits: number[] = [];
  const crossTalk: string[] = [];
  const unexpected: string[] = [];
  let checked = 0;
  try {
    await bench.run('acceptance-scale-warmup', { environment: 'acceptance' });
    for (let r = 0; r < options.runs; r++) {
      const t0 = performance.now();
      const alone = await bench.run(`acceptance-scale-single-${r}`, { environment: 'acceptance' });
      single.push(performance.now() - t0);
      if (alone.status !== 'SUCCEEDED') throw new Error(`single execution ended ${alone.status}: ${alone.error}`);

      const inputs = Array.from({ length: options.executions }, (_, i) => ({
        name: `${inputFor(i).environment}-scale-${r}-${String(i).padStart(2, '0')}`,
        input: inputFor(i),
      }));
      const t1 = performance.now();
      const records: ExecutionRecord[] = await Promise.all(inputs.map(({ name, input }) => bench.run(name, input)));
      concurrent.push(performance.now() - t1);

      for (const [i, record] of records.entries()) {
        const { environment, branches } = inputs[i]!.input;
        const outcome = record.status === 'SUCCEEDED' ? 'SUCCEEDED' : `${record.status} ${record.error}`;
        outcomes[outcome] = (outcomes[outcome] ?? 0) + 1;
        const history = bench.runtime.machine.history(record.executionArn);
        if (record.status !== 'SUCCEEDED' && record.error !== EXPECTED_FAILURE) {
          unexpected.push(
            `${record.name}: ${record.status} in ${record.lastTopLevelState?.name ?? 'no state'}: ${record.error ?? '(no error)'}: ${failureCause(record.cause)}`,
          );
        }
        waits.push(
          history.filter(
            (e) =>
              e.type === 'TaskScheduled' &&
              (e.taskScheduledEventDetails as { resource?: string }).resource === 'invoke.waitForTaskToken',
          ).length - 1,
        );
        const expected = {
          app: commit('app', branches.app ?? 'main'),
          config: commit('config', branches.config ?? 'main'),
        };
        const own = `artifacts/${environment}/${record.name}`;
        const problem = (what: string): void => void crossTalk.push(`${record.name}: ${what}`);
        // What it fetched and combined: its own branches' commits, in its own artifact.
        const combined = history.find(
          (e) => (e.stateExitedEventDetails as { name?: string } | undefined)?.name === 'CombineConfigAndCode',
        );
        if (combined) {
          checked++;
          const output = JSON.parse((combined.stateExitedEventDetails as { output: string }).output);
          if (output.artifact.key !== `${own}/source.zip`) problem(`combined into ${output.artifact.key}`);
          for (const s of output.fetched as Array<{ name: 'app' | 'config'; commit: string }>)
            if (s.commit !== expected[s.name]) problem(`fetched ${s.name}@${s.commit}, expected ${expected[s.name]}`);
          const buildId = buildIdOf(history, 'BuildTemplates');
          const build = buildId === undefined ? undefined : bench.runtime.builds.get(buildId);
          if (build && build.Source.Location !== `${bucket}/${own}/source.zip`)
            problem(`BuildTemplates read ${build.Source.Location}`);
        }
        const deployId = buildIdOf(history, 'Deploy');
        const deployBuild = deployId === undefined ? undefined : bench.runtime.builds.get(deployId);
        if (deployBuild && deployBuild.Source.Location !== `${bucket}/${own}/build.zip`)
          problem(`Deploy read ${deployBuild.Source.Location}`);
        if (record.status === 'SUCCEEDED') {
          // Its own deployment record (the append-only history entry RecordDeployment wrote).
          const historyKey = JSON.parse(record.output!).record.historyKey as string;
          const current = (await readJson(historyKey)) as {
            execution: string;
            sources: Array<{ name: 'app' | 'config'; commit: string }>;
          };
          if (current.execution !== record.name) problem(`its record names ${current.execution}`);
          for (const s of current.sources)
            if (s.commit !== expected[s.name]) problem(`recorded ${s.name}@${s.commit}, expected ${expected[s.name]}`);
        }
      }
      // Each environment's current.json: the newest execution that succeeded there, with its commits.
      for (const environment of ENVIRONMENTS) {
        const succeeded = records.filter(
          (rec, i) => rec.status === 'SUCCEEDED' && inputs[i]!.input.environment === environment,
        );
        if (succeeded.length === 0) continue;
        const newest = succeeded.reduce((a, b) =>
          b.startDate > a.startDate || (b.startDate === a.startDate && b.name > a.name) ? b : a,
        );
        const current = await readJson(`deployments/${environment}/current.json`);
        if (current.execution !== newest.name)
          crossTalk.push(
            `${environment}: current.json names ${current.execution}, the newest successful execution is ${newest.name}`,
          );
      }
      options.log(
        `  run ${r + 1}/${options.runs}: one execution ${(single.at(-1)! / 1000).toFixed(1)} s, ${options.executions} concurrent ${(concurrent.at(-1)! / 1000).toFixed(1)} s`,
      );
    }
  } finally {
    await bench.close();
  }
  return {
    executions: options.executions,
    single: summarize(single),
    concurrent: summarize(concurrent),
    outcomes,
    leaseWaits: summarize(waits),
    crossTalk,
    checked,
    unexpected,
  };
}

/**
 * The local runtime keeps the task modules it loaded, and their SDK clients, pointed at its own
 * endpoint: a second runtime in one process would send their calls to the first one's closed
 * port. So this figure runs in a process of its own: `tsx bench/scale.ts '<options json>'`.
 */
export function measureScaleInChild(
  options: Omit<ScaleOptions, 'log'> & { log: (line: string) => void },
): Promise<ScaleResult> {
  const { log, ...rest } = options;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', __filename, JSON.stringify(rest)], {
      cwd: join(__dirname, '..'),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    // An interrupted bench stops it, and it removes its runtime's folder.
    registerBenchChild(child);
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => {
      for (const line of c.toString().split('\n')) if (line.startsWith('  run ')) log(line);
    });
    child.on('error', reject);
    child.on('exit', (code) => {
      const last = out.trim().split('\n').at(-1) ?? '';
      if (code === 0 && last.startsWith('{')) resolve(JSON.parse(last) as ScaleResult);
      else reject(new Error(`bench/scale.ts exited ${code}: ${out}`));
    });
  });
}

if (require.main === module) {
  removeBenchDirectoriesOnInterrupt();
  const options = JSON.parse(process.argv[2] ?? '{}') as Omit<ScaleOptions, 'log'>;
  measureScale({ ...options, log: (line) => console.error(line) })
    .then((result) => process.stdout.write(`${JSON.stringify(result)}\n`))
    .catch((err: unknown) => {
      console.error(err);
      process.exitCode = 1;
    });
}
