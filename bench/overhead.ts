import { spawn } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { buildIdOf, startBenchRuntime, topLevelSpans } from './bench-runtime';
import { commitAndCloneBare, git, writeSmallTree } from './git-fixtures';
import { registerBenchChild } from './interrupt';
import { makeScratchDirectory } from './s3-process';
import { summarize, type Summary } from './stats';

/**
 * Orchestration overhead: one local execution whose build and deploy run a known amount of work
 * (sleeps), against a plain bash script that runs the same commands in order. The difference is
 * what stepdeploy adds: validation, fetch builds, combine, artifact upload/download, the deploy
 * lease, record. Each execution runs with the script beside it, started at the same moment, so
 * noise hits both alike (the script sleeps; see measureOverhead).
 *
 * Each command sleeps for the seconds in an environment variable of its own (`sleep
 * "$BUILD_SLEEP_1"`): the config gives acceptance, where the measured executions run, the work's
 * seconds, and preproduction zeros, so that the warm-up execution there runs the same commands
 * and loads the same modules without sleeping. The script sets the acceptance values.
 */

export interface OverheadOptions {
  readonly runs: number;
  /** Commands of the build phase and of the deploy phase; each is `sleep <seconds>`. */
  readonly buildSleeps: ReadonlyArray<number>;
  readonly deploySleeps: ReadonlyArray<number>;
  readonly log: (line: string) => void;
}

export interface OverheadResult {
  readonly workSeconds: number;
  readonly pipeline: Summary;
  /** The bash script, each run beside one execution (started together). */
  readonly baseline: Summary;
  /**
   * One run of the bash script alone, before the pairs (results saved from 2c1f622 to 5a29016;
   * before, the two ran one after the other; since, see baselineAboveWork).
   */
  readonly baselineAloneMs?: number;
  /**
   * The script's time above its sleeps, per run beside an execution (absent before this field):
   * what its forks took, and the most that running beside an execution can have added to it and
   * so taken off the added time.
   */
  readonly baselineAboveWork?: Summary;
  /** pipeline − baseline per pair of runs. */
  readonly added: Summary;
  readonly ratio: number;
  /** Median milliseconds per top-level state, work subtracted (BuildTemplates, Deploy). */
  readonly perState: ReadonlyArray<{ readonly name: string; readonly overheadMs: number; readonly totalMs: number }>;
  /** Median milliseconds per build phase of the BuildTemplates and Deploy builds. */
  readonly buildPhases: ReadonlyArray<{ readonly build: string; readonly phase: string; readonly ms: number }>;
  /** Execution wall time not inside any top-level state (engine, history, gaps). */
  readonly betweenStatesMs: number;
  /** Durations of the Lambda-backed states, for the cost table (median ms). */
  readonly lambdaMs: Readonly<Record<string, number>>;
  /** Median build durations in ms (fetch, build, deploy), for the cost table. */
  readonly buildMs: Readonly<Record<string, number>>;
}

const TOP_LEVEL = [
  'ValidateInput',
  'FetchSources',
  'CombineConfigAndCode',
  'BuildTemplates',
  'Deploy',
  'PostDeployHooks',
  'RecordDeployment',
];

/** The variable each command sleeps for: BUILD_SLEEP_1, BUILD_SLEEP_2, DEPLOY_SLEEP_1, ... */
function sleepVariables(phase: 'BUILD' | 'DEPLOY', seconds: ReadonlyArray<number>): Array<[string, number]> {
  return seconds.map((s, i) => [`${phase}_SLEEP_${i + 1}`, s]);
}

/**
 * The overhead's work, one text per consumer: the build and deploy buildspecs, the bash script
 * that runs the same commands in order (setting the measured seconds), and the variables of the
 * environment the measured executions run in (acceptance) and of the warm-up's (preproduction:
 * every sleep 0).
 */
export function overheadWork(options: Pick<OverheadOptions, 'buildSleeps' | 'deploySleeps'>): {
  readonly buildspecs: { readonly build: string; readonly deploy: string };
  readonly script: string;
  readonly variables: { readonly measured: Record<string, string>; readonly warmup: Record<string, string> };
} {
  const build = sleepVariables('BUILD', options.buildSleeps);
  const deploy = sleepVariables('DEPLOY', options.deploySleeps);
  const command = ([name]: [string, number]): string => `sleep "$${name}"`;
  const sleeps = [...build, ...deploy];
  return {
    buildspecs: { build: buildspec(build.map(command), true), deploy: buildspec(deploy.map(command), false) },
    script: ['set -e', ...sleeps.map(([name, s]) => `${name}=${s}`), ...sleeps.map(command), ''].join('\n'),
    variables: {
      measured: Object.fromEntries(sleeps.map(([name, s]) => [name, String(s)])),
      warmup: Object.fromEntries(sleeps.map(([name]) => [name, '0'])),
    },
  };
}

function buildspec(commands: ReadonlyArray<string>, artifacts: boolean): string {
  const spec: Record<string, unknown> = { version: 0.2, env: { shell: 'bash' }, phases: { build: { commands } } };
  if (artifacts) spec.artifacts = { files: ['**/*'] };
  return `# Generated by bench/overhead.ts: a fixed amount of work, the same commands as the bash baseline.\n${stringify(spec)}`;
}

function runScript(path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const start = performance.now();
    const child = spawn('bash', [path], { stdio: 'ignore' });
    registerBenchChild(child);
    child.on('error', reject);
    child.on('exit', (code) =>
      code === 0 ? resolve(performance.now() - start) : reject(new Error(`baseline script exited ${code}`)),
    );
  });
}

function medianOf(values: ReadonlyArray<number>): number {
  return summarize(values).median;
}

export async function measureOverhead(options: OverheadOptions): Promise<OverheadResult> {
  const work = makeScratchDirectory('stepdeploy-bench-overhead-');
  const texts = overheadWork(options);
  const buildWorkMs = options.buildSleeps.reduce((a, b) => a + b, 0) * 1000;
  const deployWorkMs = options.deploySleeps.reduce((a, b) => a + b, 0) * 1000;
  try {
    // Two small sources, as the example has: the app (with a few files) and the config.
    const app = join(work, 'app');
    mkdirSync(app);
    writeSmallTree(app, {
      'README.md': 'bench app\n',
      'templates/service.json': '{"Resources":{}}\n',
      'src/index.js': 'module.exports = 1;\n',
    });
    const config = join(work, 'config');
    mkdirSync(config);
    writeSmallTree(config, { 'acceptance.json': '{"stackPrefix":"bench"}\n' });
    const appRepo = commitAndCloneBare(app).repository;
    const configRepo = commitAndCloneBare(config).repository;
    writeFileSync(join(work, 'build.yml'), texts.buildspecs.build);
    writeFileSync(join(work, 'deploy.yml'), texts.buildspecs.deploy);
    const scriptPath = join(work, 'baseline.sh');
    writeFileSync(scriptPath, texts.script);

    const bench = await startBenchRuntime((c) => {
      c.sources.app.repository = appRepo;
      c.sources.config.repository = configRepo;
      c.buildspecs = { build: join(work, 'build.yml'), deploy: join(work, 'deploy.yml') };
      for (const env of Object.values(c.environments) as Array<Record<string, unknown>>) delete env.hooks;
      c.environments.acceptance.variables = texts.variables.measured;
      c.environments.preproduction.variables = texts.variables.warmup;
    });
    const pipeline: number[] = [];
    const baseline: number[] = [];
    const perState = new Map<string, number[]>();
    const phases = new Map<string, number[]>();
    const between: number[] = [];
    const lambdaMs = new Map<string, number[]>();
    const buildMs = new Map<string, number[]>();
    const push = (m: Map<string, number[]>, k: string, v: number): void => void m.set(k, [...(m.get(k) ?? []), v]);
    try {
      // One execution first, not measured: loads the task modules (a Lambda's cold start) and
      // stores the config's snapshot. In preproduction, whose variables make every sleep 0.
      const warmup = await bench.run('preproduction-bench-warmup', { environment: 'preproduction' });
      if (warmup.status !== 'SUCCEEDED')
        throw new Error(`the warm-up execution ended ${warmup.status}: ${warmup.error} ${warmup.cause}`);
      for (let i = 0; i < options.runs; i++) {
        // A new app commit for every measured run (not timed): its fetch build runs, as for most
        // deployments; the config's snapshot is reused (ResolveSource finds it), as config changes less often.
        writeFileSync(join(app, 'src', 'index.js'), `module.exports = ${i + 2};\n`);
        git(app, ['commit', '--quiet', '--all', '-m', `bench change ${i + 1}`]);
        git(app, ['push', '--quiet', appRepo, 'HEAD:refs/heads/main']);
        // The bash script runs beside the execution, started at the same moment: it sleeps
        // almost all the time (a few forks), so each measures its own wall time, and a pair costs
        // one run's time instead of two. Its time above its sleeps (baselineAboveWork) bounds how
        // much running beside the execution can have slowed it.
        const script = runScript(scriptPath);
        const start = performance.now();
        const record = await bench.run(`acceptance-bench-${i}`, { environment: 'acceptance' });
        const ms = performance.now() - start;
        baseline.push(await script);
        if (record.status !== 'SUCCEEDED')
          throw new Error(`bench execution ${record.name} ended ${record.status}: ${record.error} ${record.cause}`);
        const fetchBuilds = bench.runtime.machine
          .history(record.executionArn)
          .filter(
            (e) =>
              e.type === 'TaskStateEntered' && (e.stateEnteredEventDetails as { name: string }).name === 'FetchSource',
          ).length;
        if (fetchBuilds !== 1)
          throw new Error(
            `bench execution ${record.name} ran ${fetchBuilds} fetch builds; expected 1 (the new app commit)`,
          );
        pipeline.push(ms);
        options.log(
          `  run ${i + 1}/${options.runs}: execution ${(ms / 1000).toFixed(2)} s, bash ${(baseline.at(-1)! / 1000).toFixed(2)} s`,
        );

        const history = bench.runtime.machine.history(record.executionArn);
        const spans = topLevelSpans(history, TOP_LEVEL);
        let inside = 0;
        for (const span of spans) {
          const total = span.end - span.start;
          inside += total;
          const workMs = span.name === 'BuildTemplates' ? buildWorkMs : span.name === 'Deploy' ? deployWorkMs : 0;
          push(perState, `${span.name}\ttotal`, total);
          push(perState, `${span.name}\toverhead`, total - workMs);
        }
        const first = history[0]!.timestamp;
        const last = history.at(-1)!.timestamp;
        between.push(last - first - inside);
        push(
          perState,
          `(outside the history: start → first event, last event → wait() returns)\ttotal`,
          ms - (last - first),
        );
        push(
          perState,
          `(outside the history: start → first event, last event → wait() returns)\toverhead`,
          ms - (last - first),
        );
        for (const name of ['ValidateInput', 'CombineConfigAndCode', 'RecordDeployment']) {
          const span = spans.find((s) => s.name === name);
          if (span) push(lambdaMs, name, span.end - span.start);
        }
        const builds = {
          BuildTemplates: buildIdOf(history, 'BuildTemplates'),
          Deploy: buildIdOf(history, 'Deploy'),
        };
        for (const [state, id] of Object.entries(builds)) {
          const build = id === undefined ? undefined : bench.runtime.builds.get(id);
          if (!build) continue;
          push(buildMs, state, (build.EndTime ?? build.StartTime) - build.StartTime);
          for (const phase of build.Phases) {
            if (phase.EndTime === undefined) continue;
            const workMs = phase.PhaseType === 'BUILD' ? (state === 'Deploy' ? deployWorkMs : buildWorkMs) : 0;
            push(phases, `${state}\t${phase.PhaseType}`, phase.EndTime - phase.StartTime - workMs);
          }
        }
        // The Deploy Lambda itself returns once the build is started: its share of the state.
        const deploySpan = spans.find((s) => s.name === 'Deploy');
        const deployBuild = builds.Deploy === undefined ? undefined : bench.runtime.builds.get(builds.Deploy);
        if (deploySpan && deployBuild) push(lambdaMs, 'Deploy', deployBuild.StartTime - deploySpan.start);
        for (const e of history) {
          const exited = e.stateExitedEventDetails as { name?: string; output?: string } | undefined;
          if (exited?.name !== 'FetchSource' || exited.output === undefined) continue;
          const id = (JSON.parse(exited.output) as { fetched?: { buildId?: string } }).fetched?.buildId;
          const build = id === undefined ? undefined : bench.runtime.builds.get(id);
          if (!build) continue;
          push(buildMs, 'FetchSource', (build.EndTime ?? build.StartTime) - build.StartTime);
          for (const phase of build.Phases)
            if (phase.EndTime !== undefined)
              push(phases, `FetchSource\t${phase.PhaseType}`, phase.EndTime - phase.StartTime);
        }
      }
    } finally {
      await bench.close();
    }
    const added = pipeline.map((p, i) => p - baseline[i]!);
    const p = summarize(pipeline);
    const b = summarize(baseline);
    return {
      workSeconds: (buildWorkMs + deployWorkMs) / 1000,
      pipeline: p,
      baseline: b,
      baselineAboveWork: summarize(baseline.map((ms) => ms - buildWorkMs - deployWorkMs)),
      added: summarize(added),
      ratio: p.median / b.median,
      perState: [...TOP_LEVEL, '(outside the history: start → first event, last event → wait() returns)']
        .filter((n) => perState.has(`${n}\ttotal`))
        .map((name) => ({
          name,
          totalMs: medianOf(perState.get(`${name}\ttotal`)!),
          overheadMs: medianOf(perState.get(`${name}\toverhead`)!),
        })),
      buildPhases: [...phases.entries()]
        .map(([key, values]) => {
          const [build, phase] = key.split('\t') as [string, string];
          return { build, phase, ms: medianOf(values) };
        })
        .filter((p) => p.ms >= 1),
      betweenStatesMs: medianOf(between),
      lambdaMs: Object.fromEntries([...lambdaMs.entries()].map(([k, v]) => [k, medianOf(v)])),
      buildMs: Object.fromEntries([...buildMs.entries()].map(([k, v]) => [k, medianOf(v)])),
    };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
