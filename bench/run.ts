import { withKeptSections } from './kept-sections';
import '../local/quiet-sdk';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { costTable, type CostTable } from './cost-table';
import {
  makeFixture,
  measureCombineMemory,
  measureEntriesMemory,
  measureFetchCombine,
  type EntriesMemoryResult,
  type FetchCombineResult,
} from './fetch-combine';
import { describeShape, type LargeSourceShape } from './git-fixtures';
import { measureOverhead, type OverheadResult } from './overhead';
import { renderReport } from './report';
import { measureScaleInChild, type ScaleResult } from './scale';
import { removeBenchDirectoriesOnInterrupt } from './interrupt';
import { formatMegabytes, formatSeconds, summarize, timed, type Summary } from './stats';
import { rmSync } from 'node:fs';

/**
 * `npm run bench` (everything, results written to BENCHMARKS.md) or `npm run bench -- --quick`
 * (smaller sources, fewer runs, one line per figure, BENCHMARKS.md untouched unless --write).
 * Options: --runs N (runs of every figure), --no-per-file (skip baseline (b)), --render (write
 * BENCHMARKS.md again from the last full run's results in .stepdeploy/bench-results.json),
 * --entries N (files in the memory-per-entry snapshot), --only entries (that figure alone).
 */

export interface BenchPlan {
  readonly quick: boolean;
  readonly overhead: { readonly runs: number; readonly buildSleeps: number[]; readonly deploySleeps: number[] };
  readonly fetch: { readonly runs: number; readonly shape: LargeSourceShape; readonly perFile: boolean };
  readonly memorySmall: { readonly runs: number; readonly shape: LargeSourceShape };
  /** Files in the snapshot of the memory-per-entry figure. */
  readonly memoryEntries: { readonly runs: number; readonly entries: number };
  readonly scale: { readonly runs: number; readonly executions: number };
}

const MB = 1024 * 1024;

/** The command line: `npm run bench -- [options]` (see the comment above). Unknown options are refused. */
export function parseBenchArgs(args: ReadonlyArray<string>) {
  const { values } = parseArgs({
    args: [...args],
    options: {
      quick: { type: 'boolean', default: false },
      runs: { type: 'string' },
      'no-per-file': { type: 'boolean', default: false },
      render: { type: 'boolean', default: false },
      write: { type: 'boolean', default: false },
      entries: { type: 'string' },
      only: { type: 'string' },
    },
    strict: true,
    allowPositionals: false,
  });
  const positive = (name: string, value: string | undefined): number | undefined => {
    if (value === undefined) return undefined;
    const n = Number(value);
    if (!(Number.isInteger(n) && n > 0)) throw new Error(`--${name} must be a positive integer, got ${value}`);
    return n;
  };
  if (values.only !== undefined && !ONLY.includes(values.only as Only)) {
    throw new Error(`--only must be one of ${ONLY.join(', ')}, got ${values.only}`);
  }
  return {
    ...values,
    runs: positive('runs', values.runs),
    entries: positive('entries', values.entries),
    only: values.only as Only | undefined,
  };
}

/** Sections that `--only` runs alone (their figure printed, nothing saved). */
const ONLY = ['entries'] as const;
type Only = (typeof ONLY)[number];

export function planFor(args: ReadonlyArray<string>): BenchPlan {
  const options = parseBenchArgs(args);
  const quick = options.quick;
  const runs = options.runs;
  const perFile = !options['no-per-file'];
  if (quick) {
    return {
      quick,
      overhead: { runs: runs ?? 3, buildSleeps: [0.5], deploySleeps: [0.5] },
      fetch: { runs: runs ?? 2, shape: { files: 300, fileBytes: 10 * 1024, bigFileBytes: 5 * MB }, perFile },
      memorySmall: { runs: runs ?? 1, shape: { files: 30, fileBytes: 10 * 1024, bigFileBytes: 1 * MB } },
      memoryEntries: { runs: runs ?? 1, entries: options.entries ?? 5_000 },
      scale: { runs: runs ?? 1, executions: 6 },
    };
  }
  return {
    quick,
    overhead: { runs: runs ?? 5, buildSleeps: [2.5, 2.5], deploySleeps: [2.5, 2.5] },
    fetch: { runs: runs ?? 5, shape: { files: 20_000, fileBytes: 10 * 1024, bigFileBytes: 500 * MB }, perFile },
    memorySmall: { runs: runs ?? 5, shape: { files: 2_000, fileBytes: 10 * 1024, bigFileBytes: 50 * MB } },
    memoryEntries: { runs: runs ?? 5, entries: options.entries ?? 100_000 },
    scale: { runs: runs ?? 5, executions: 20 },
  };
}

export interface BenchResults {
  readonly plan: BenchPlan;
  readonly date: string;
  readonly machine: string;
  /** The commit measured (\`git rev-parse --short HEAD\`), marked when tracked files had changes; absent from results saved before 2026-11-29 17:30. */
  readonly commit?: string;
  readonly durationSeconds: number;
  /** Seconds per section of the bench, in the order run (absent from results saved before 2026-11-29 12:00). */
  readonly sections?: Readonly<Record<string, number>>;
  readonly overhead: OverheadResult;
  readonly fetch: FetchCombineResult;
  readonly memorySmall: { shape: LargeSourceShape; maxRss: Summary; combine: Summary };
  readonly memoryEntries: EntriesMemoryResult;
  readonly scale: ScaleResult;
  readonly cost: CostTable;
}

/** The commit the bench runs, as \`abc1234\`, or \`abc1234 with uncommitted changes\`; undefined outside a git checkout. */
function commitMeasured(): string | undefined {
  try {
    const cwd = join(__dirname, '..');
    const head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], {
      cwd,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    }).trim();
    const changed =
      execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], {
        cwd,
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'ignore'],
      }).trim() !== '';
    return changed ? `${head} with uncommitted changes` : head;
  } catch {
    return undefined;
  }
}

function machine(): string {
  const cpu = cpus()[0]?.model ?? 'unknown CPU';
  let load = '';
  try {
    load = execFileSync('cat', ['/proc/loadavg'], { encoding: 'utf8' }).split(' ').slice(0, 3).join(' ');
  } catch {
    load = 'unknown';
  }
  return `${cpus().length} cores (${cpu}), ${(totalmem() / 1024 ** 3).toFixed(0)} GB RAM, Node ${process.version}, load average at start ${load}`;
}

/** One line per figure: what was measured, against what, and the target. */
export function summaryLines(r: BenchResults): string[] {
  const o = r.overhead;
  const f = r.fetch;
  const ratio = (a: Summary, b: Summary): string => (a.median / b.median).toFixed(2);
  const verdict = (ok: boolean): string => (ok ? 'MET' : 'MISSED');
  const lines = [
    `1 overhead: execution ${formatSeconds(o.pipeline)} vs bash ${formatSeconds(o.baseline)} for ${o.workSeconds} s of work: ${o.ratio.toFixed(2)}x, +${(o.added.median / 1000).toFixed(2)} s (target <= 1.1x and <= 1 s: ${verdict(o.ratio <= 1.1 && o.added.median <= 1000)})`,
    `2 fetch+combine (${describeShape(f.shape)}): ${formatSeconds(f.pipeline)} [fetch ${formatSeconds(f.fetch)} + combine ${formatSeconds(f.combine)}] vs (a) git archive + upload ${formatSeconds(f.archive)}: ${ratio(f.pipeline, f.archive)}x (target <= 1.2x: ${verdict(f.pipeline.median <= 1.2 * f.archive.median)})` +
      (f.perFile
        ? `; vs (b) one PUT per file ${formatSeconds(f.perFile)}: ${(f.perFile.median / f.pipeline.median).toFixed(2)}x faster (target >= 10x: ${verdict(f.perFile.median >= 10 * f.pipeline.median)})`
        : '; (b) skipped'),
    `3 memory: combine-sources peak RSS ${formatMegabytes(f.combineMaxRss)} on ${describeShape(f.shape)}, ${formatMegabytes(r.memorySmall.maxRss)} on ${describeShape(r.memorySmall.shape)}, on ${r.memoryEntries.entries.toLocaleString('en-US')} files of 1 byte: ${formatMegabytes(r.memoryEntries.copy.maxRss)} first combine, ${formatMegabytes(r.memoryEntries.rerun.maxRss)} re-run, ${formatMegabytes(r.memoryEntries.full.maxRss)} full streaming combine (target <= 256 MB: ${verdict(Math.max(f.combineMaxRss.max, r.memorySmall.maxRss.max, r.memoryEntries.copy.maxRss.max, r.memoryEntries.rerun.maxRss.max, r.memoryEntries.full.maxRss.max) <= 256 * MB)})`,
    `4 re-run, same commits: ${formatSeconds(f.rerun)} = ${((f.rerun.median / f.pipeline.median) * 100).toFixed(0)}% of the first run (target <= 10%: ${verdict(f.rerun.median <= 0.1 * f.pipeline.median)}) [fetch ${formatSeconds(f.rerunFetch)} + combine ${formatSeconds(f.rerunCombine)}; ${f.rerunReusedSnapshots} of ${2 * f.pipeline.runs} snapshots reused]`,
    `5 cost per deployment: ${r.cost.transitions} transitions (+1 per lease wait, none per build minute), Step Functions + Lambda ${r.cost.headline.orchestration} vs CodePipeline V2 ${r.cost.headline.codePipeline} (${r.cost.headline.scenario}); CodeBuild ${r.cost.headline.codeBuild} in both`,
    `6 scale: ${r.scale.executions} concurrent executions ${formatSeconds(r.scale.concurrent)} vs one ${formatSeconds(r.scale.single)} (${(r.scale.concurrent.median / r.scale.single.median).toFixed(1)}x); outcomes ${Object.entries(
      r.scale.outcomes,
    )
      .map(([k, v]) => `${k}: ${v}`)
      .join(
        ', ',
      )}; cross-talk ${r.scale.crossTalk.length === 0 ? `none (${r.scale.checked} executions checked)` : r.scale.crossTalk.join('; ')}` +
      (r.scale.unexpected === undefined
        ? ''
        : `; other failures ${r.scale.unexpected.length === 0 ? 'none' : r.scale.unexpected.join('; ')}`),
  ];
  return lines;
}

/** The last full run's results, so that `--render` can write BENCHMARKS.md again (after the analysis text changed) without measuring. */
const RESULTS_FILE = join(__dirname, '..', '.stepdeploy', 'bench-results.json');
const BENCHMARKS_FILE = join(__dirname, '..', 'BENCHMARKS.md');

/** The bench's own output: the figures, on stdout. */
function print(line: string): void {
  process.stdout.write(`${line}\n`);
}

async function main(): Promise<void> {
  // The task handlers the local runtime runs in this process log as Lambdas do, with console.log
  // (ResolveSource: "source app: main is ...; fetching it"): to stderr with the progress lines, so
  // that stdout holds the figures alone.
  console.log = (...values: unknown[]): void => console.error(...values);
  const args = process.argv.slice(2);
  const options = parseBenchArgs(args);
  if (options.render) {
    const saved = JSON.parse(readFileSync(RESULTS_FILE, 'utf8')) as BenchResults;
    writeFileSync(BENCHMARKS_FILE, withKeptSections(renderReport(saved, summaryLines(saved)), BENCHMARKS_FILE));
    print(`BENCHMARKS.md written again from ${RESULTS_FILE} (the run of ${saved.date})`);
    return;
  }
  const plan = planFor(args);
  // Interrupted (Ctrl-C, or killed by a timeout): the stores in /dev/shm and the scratch folders go with the bench.
  removeBenchDirectoriesOnInterrupt();
  const log = (line: string): void => console.error(line);
  const started = performance.now();
  const date = new Date().toISOString();
  const where = machine();
  const commit = commitMeasured();
  log(
    `stepdeploy bench (${plan.quick ? 'quick' : 'full'}) on ${where}${commit === undefined ? '' : `, commit ${commit}`}`,
  );
  try {
    log(`df -h /tmp: ${execFileSync('df', ['-h', '/tmp'], { encoding: 'utf8' }).trim().split('\n').at(-1)}`);
  } catch {
    // df is informational only.
  }

  const sections: Record<string, number> = {};
  const section = async <T>(name: string, work: () => Promise<T>): Promise<T> => {
    const { ms, value } = await timed(work);
    sections[name] = ms / 1000;
    log(`  (${name}: ${sections[name]!.toFixed(0)} s)`);
    return value;
  };

  if (options.only === 'entries') {
    const e = await measureEntriesMemory(plan.memoryEntries.entries, plan.memoryEntries.runs);
    const row = (name: string, x: { maxRss: Summary; combine: Summary }): string =>
      `${name} ${formatMegabytes(x.maxRss)} in ${formatSeconds(x.combine)}`;
    print(
      `3 memory per entry, ${e.entries.toLocaleString('en-US')} files of 1 byte: ${row('first combine', e.copy)}; ${row('re-run', e.rerun)}; ${row('full streaming combine', e.full)} (target <= 256 MB: ${Math.max(e.copy.maxRss.max, e.rerun.maxRss.max, e.full.maxRss.max) <= 256 * MB ? 'MET' : 'MISSED'})`,
    );
    print(`bench took ${((performance.now() - started) / 1000).toFixed(0)} s (--only entries: nothing saved)`);
    return;
  }

  log(`[1/6] orchestration overhead (${plan.overhead.runs} runs)`);
  const overhead = await section('overhead', () => measureOverhead({ ...plan.overhead, log }));

  log(
    `[2-4/6] fetch + combine, memory, re-run on ${describeShape(plan.fetch.shape)} (${plan.fetch.runs} runs; generating the sources)`,
  );
  const fixture = await section('generating the sources', async () => makeFixture(plan.fetch.shape));
  let fetch: FetchCombineResult;
  try {
    fetch = await section('fetch + combine with both baselines', () =>
      measureFetchCombine(
        { runs: plan.fetch.runs, shape: plan.fetch.shape, putConcurrency: 10, skipPerFile: !plan.fetch.perFile, log },
        fixture,
      ),
    );
  } finally {
    rmSync(fixture.dir, { recursive: true, force: true });
  }
  log(`[3/6] memory on a second size: ${describeShape(plan.memorySmall.shape)} (${plan.memorySmall.runs} runs)`);
  const memorySmall = await section('memory, second size', () =>
    measureCombineMemory(plan.memorySmall.shape, plan.memorySmall.runs),
  );
  log(
    `[3/6] memory per entry: a snapshot of ${plan.memoryEntries.entries.toLocaleString('en-US')} files (${plan.memoryEntries.runs} runs)`,
  );
  const memoryEntries = await section('memory per entry', () =>
    measureEntriesMemory(plan.memoryEntries.entries, plan.memoryEntries.runs),
  );

  log(`[6/6] scale: ${plan.scale.executions} concurrent executions (${plan.scale.runs} runs)`);
  const scale = await section('scale', () => measureScaleInChild({ ...plan.scale, retryIntervalMs: 250, log }));

  log('[5/6] cost per deployment');
  const cost = costTable(overhead);

  const results: BenchResults = {
    plan,
    date,
    machine: where,
    ...(commit === undefined ? {} : { commit }),
    durationSeconds: (performance.now() - started) / 1000,
    sections,
    overhead,
    fetch,
    memorySmall,
    memoryEntries,
    scale,
    cost,
  };
  for (const line of summaryLines(results)) print(line);
  print(cost.text);
  print(`bench took ${results.durationSeconds.toFixed(0)} s`);
  if (!plan.quick || options.write) {
    mkdirSync(dirname(RESULTS_FILE), { recursive: true });
    writeFileSync(RESULTS_FILE, JSON.stringify(results, null, 2));
    writeFileSync(BENCHMARKS_FILE, withKeptSections(renderReport(results, summaryLines(results)), BENCHMARKS_FILE));
    print('written to BENCHMARKS.md');
  }
}

if (require.main === module) {
  main().catch((err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  });
}

export { summarize };
