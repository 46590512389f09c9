import '../local/quiet-sdk';
import { execFile, execFileSync } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs, promisify } from 'node:util';
import { DescribeExecutionCommand, SFNClient, StopExecutionCommand } from '@aws-sdk/client-sfn';
import { parse, stringify } from 'yaml';
import { serveLocal } from '../cli/local-serve';
import type { Io } from '../cli/io';
import { PUSH_SECTION, withSection } from './kept-sections';
import { summarize, type Summary } from './stats';

/**
 * `npx tsx bench/push.ts [--runs N] [--no-write] [--compare-hook FILE --compare-label TEXT]`: deploy
 * on push, locally. `local serve` runs in this process; each run commits once and pushes that commit
 * on a new branch to the example app repository, whose post-receive hook posts the signed push to the
 * serve, which starts an acceptance execution before the hook (so the push) returns; and, alternating
 * which goes first, the same commit to a bare copy of that repository without the hook (the
 * baseline: a plain `git push`). Measured: each
 * push's wall time, the hook's own time (git's trace2 events), and push start → the execution's
 * startDate. Each execution is stopped once started (what runs after the start is not this figure).
 * `--compare-hook` adds, in each run, a push of the same commit through another hook entry (run as
 * `node FILE <home>`, e.g. an earlier version's post-receive.js), so that two entries are measured
 * interleaved, under the same load. Writes its section of BENCHMARKS.md.
 */

const ROOT = join(__dirname, '..');
const CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };
const GIT_ENV = {
  ...process.env,
  GIT_AUTHOR_NAME: 'push bench',
  GIT_AUTHOR_EMAIL: 'push-bench@stepdeploy.invalid',
  GIT_COMMITTER_NAME: 'push bench',
  GIT_COMMITTER_EMAIL: 'push-bench@stepdeploy.invalid',
  GIT_CONFIG_NOSYSTEM: '1',
  GIT_CONFIG_GLOBAL: '/dev/null',
};

interface TraceEvent {
  readonly event: string;
  readonly sid: string;
  readonly child_id?: number;
  readonly child_class?: string;
  readonly hook_name?: string;
  readonly t_rel?: number;
}

/** Milliseconds the named hook ran, from a GIT_TRACE2_EVENT file (child_start → its child_exit's t_rel). */
export function hookMilliseconds(trace: string, hook: string): number {
  const events = trace
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as TraceEvent);
  const start = events.find((e) => e.event === 'child_start' && e.child_class === 'hook' && e.hook_name === hook);
  if (start === undefined) throw new Error(`no ${hook} hook ran (no child_start of class hook in the trace)`);
  const exit = events.find((e) => e.event === 'child_exit' && e.sid === start.sid && e.child_id === start.child_id);
  if (exit?.t_rel === undefined) throw new Error(`the ${hook} hook has no child_exit in the trace`);
  return exit.t_rel * 1000;
}

interface HookedPush {
  readonly pushMs: number;
  readonly hookMs: number;
  /** Push start → the execution's startDate. */
  readonly startMs: number;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      runs: { type: 'string', default: '5' },
      'no-write': { type: 'boolean', default: false },
      'compare-hook': { type: 'string' },
      'compare-label': { type: 'string' },
    },
  });
  const runs = Number(values.runs);
  if (!Number.isInteger(runs) || runs < 1) throw new Error(`--runs takes a whole number of runs, got ${values.runs}`);
  const compareHook = values['compare-hook'] === undefined ? undefined : resolve(values['compare-hook']);
  if (compareHook !== undefined && !existsSync(compareHook)) {
    throw new Error(`--compare-hook ${compareHook} does not exist: give the path of a post-receive.js`);
  }
  if ((compareHook === undefined) !== (values['compare-label'] === undefined)) {
    throw new Error('--compare-hook and --compare-label go together: the label names the other entry in the table');
  }
  console.log = (...items: unknown[]): void => console.error(...items);
  const began = Date.now();
  const dir = mkdtempSync(join(tmpdir(), 'stepdeploy-bench-push-'));
  const config = parse(readFileSync(join(ROOT, 'stepdeploy.config.yml'), 'utf8'));
  config.buildspecs = { build: join(ROOT, config.buildspecs.build), deploy: join(ROOT, config.buildspecs.deploy) };
  const configPath = join(dir, 'stepdeploy.config.yml');
  writeFileSync(configPath, stringify(config));
  let out = '';
  const io: Io = {
    out: (text) => {
      out += text;
    },
    err: () => undefined,
    isTTY: false,
  };
  const signals = new EventEmitter();
  const serving = serveLocal({ configPath, port: 0, signals }, io);
  try {
    for (let i = 0; !out.includes('Press Ctrl-C to stop.'); i++) {
      if (i > 1200) throw new Error(`local serve did not start:\n${out}`);
      await new Promise((tick) => setTimeout(tick, 100));
    }
    const endpoint = /^stepdeploy local runtime on (http:\/\/127\.0\.0\.1:\d+) /m.exec(out)![1]!;
    const sfn = new SFNClient({ endpoint, region: 'us-east-1', credentials: CREDENTIALS });
    const machine = 'arn:aws:states:us-east-1:000000000000:execution:stepdeploy-example';
    const hookedRepo = join(dir, '.stepdeploy', 'example-repos', 'app.git');
    const plainRepo = join(dir, 'plain.git');
    const work = join(dir, 'work');
    const git = (args: string[], cwd = work) =>
      execFileSync('git', args, { cwd, env: GIT_ENV, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
    git(['clone', '--quiet', '--bare', hookedRepo, plainRepo], dir);
    git(['clone', '--quiet', hookedRepo, work], dir);
    git(['remote', 'add', 'plain', plainRepo]);

    const push = async (remote: string, branch: string, trace?: string) => {
      const env = trace ? { ...GIT_ENV, GIT_TRACE2_EVENT: trace } : GIT_ENV;
      const started = Date.now();
      const { stderr } = await promisify(execFile)('git', ['push', remote, `HEAD:refs/heads/${branch}`], {
        cwd: work,
        env,
      });
      return { ms: Date.now() - started, started, output: stderr };
    };
    const hookFile = join(hookedRepo, 'hooks', 'post-receive');
    const ownHook = readFileSync(hookFile, 'utf8');
    /** The same hook script, running another entry with the same arguments. */
    const otherHook =
      compareHook && ownHook.replace(/'[^']*post-receive\.js'/, `'${compareHook.replace(/'/g, `'\\''`)}'`);
    if (otherHook === ownHook) throw new Error(`the hook does not run a post-receive.js as expected:\n${ownHook}`);
    const hooked = async (branch: string, script = ownHook): Promise<HookedPush> => {
      writeFileSync(hookFile, script);
      const trace = join(dir, `${branch.replace(/\//g, '-')}.trace.json`);
      const pushed = await push('origin', branch, trace);
      const name = /execution (acceptance-\S+)/.exec(pushed.output)?.[1];
      if (name === undefined) throw new Error(`the push started no execution:\n${pushed.output}`);
      const executionArn = `${machine}:${name}`;
      const { startDate } = await sfn.send(new DescribeExecutionCommand({ executionArn }));
      await sfn.send(new StopExecutionCommand({ executionArn }));
      for (;;) {
        const { status } = await sfn.send(new DescribeExecutionCommand({ executionArn }));
        if (status !== 'RUNNING') break;
        await new Promise((tick) => setTimeout(tick, 200));
      }
      return {
        pushMs: pushed.ms,
        hookMs: hookMilliseconds(readFileSync(trace, 'utf8'), 'post-receive'),
        startMs: startDate!.getTime() - pushed.started,
      };
    };

    const withHook: HookedPush[] = [];
    const withOther: HookedPush[] = [];
    const plain: number[] = [];
    // Run 0 warms the hook's Node.js and the receiver's modules, and is not counted.
    for (let run = 0; run <= runs; run++) {
      writeFileSync(join(work, 'PUSHED.md'), `push bench run ${run}\n`);
      git(['add', 'PUSHED.md']);
      git(['commit', '--quiet', '-m', `push bench run ${run}`]);
      const branch = `bench/push-${run}`;
      let measured: HookedPush;
      let baseline: number;
      let other: HookedPush | undefined;
      if (run % 2 === 0) {
        measured = await hooked(branch);
        if (otherHook) other = await hooked(`${branch}-other`, otherHook);
        baseline = (await push('plain', branch)).ms;
      } else {
        baseline = (await push('plain', branch)).ms;
        if (otherHook) other = await hooked(`${branch}-other`, otherHook);
        measured = await hooked(branch);
      }
      if (run === 0) continue;
      withHook.push(measured);
      if (other) withOther.push(other);
      plain.push(baseline);
    }
    writeFileSync(hookFile, ownHook);
    sfn.destroy();

    const pushS = summarize(withHook.map((p) => p.pushMs));
    const hookS = summarize(withHook.map((p) => p.hookMs));
    const startS = summarize(withHook.map((p) => p.startMs));
    const plainS = summarize(plain);
    const returnAfterStart = summarize(withHook.map((p) => p.pushMs - p.startMs));
    const ms = (s: Summary) => `${Math.round(s.median)} ms (${Math.round(s.min)}-${Math.round(s.max)})`;
    const load = loadavg()
      .map((v) => v.toFixed(2))
      .join(' ');
    const label = values['compare-label'];
    const otherPushS = withOther.length === 0 ? undefined : summarize(withOther.map((p) => p.pushMs));
    const compared =
      otherPushS === undefined
        ? ''
        : `| \`git push\` with ${label} as the hook (same runs, interleaved) | ${ms(otherPushS)} |
| of which that hook | ${ms(summarize(withOther.map((p) => p.hookMs)))} |
| \`git push\` start → the execution's startDate, with that hook | ${ms(summarize(withOther.map((p) => p.startMs)))} |
`;
    const section = `${PUSH_SECTION.start}
## 9. Deploy on push: git push → execution start

\`npx tsx bench/push.ts${label === undefined ? '' : ` --compare-hook … --compare-label "${label}"`}\` on ${new Date().toISOString()}, load average ${load} (a shared 2-core machine),
median of ${runs} runs (min-max), after one warm-up run. \`local serve\` in the bench's process; each run
pushes one new commit on a new branch to the example app repository, whose post-receive hook posts the
signed push to the serve (the same receiver as the Lambda's), which starts an acceptance execution; and
the same commit to a bare copy without the hook, alternating which goes first. The hook is synchronous:
the execution has started before \`git push\` returns.

| | median (min-max) |
| --- | --- |
| \`git push\` with the hook (start → return) | ${ms(pushS)} |
| of which the post-receive hook (git trace2: Node.js start, sign, POST, receiver, StartExecution) | ${ms(hookS)} |
| \`git push\` start → the execution's startDate | ${ms(startS)} |
| the execution's start → \`git push\` returns | ${ms(returnAfterStart)} |
| plain \`git push\`, no hook (baseline, same commit) | ${ms(plainS)} |
| ratio: push with the hook / plain push | ${(pushS.median / plainS.median).toFixed(1)}x |
${compared}
On AWS the same push goes to the provider, whose webhook reaches the function URL after the push
returns (not measured here: no network).
${PUSH_SECTION.end}`;
    if (!values['no-write']) {
      const file = join(ROOT, 'BENCHMARKS.md');
      writeFileSync(file, withSection(readFileSync(file, 'utf8'), file, PUSH_SECTION, section));
    }
    process.stdout.write(
      `push with hook ${ms(pushS)} (hook ${ms(hookS)}), push → execution start ${ms(startS)}; plain push ${ms(plainS)}${otherPushS ? `; with ${label}: ${ms(otherPushS)}` : ''}; ${((Date.now() - began) / 1000).toFixed(0)} s\n`,
    );
  } finally {
    signals.emit('SIGTERM');
    await serving;
    rmSync(dir, { recursive: true, force: true });
  }
}

if (require.main === module) {
  main().catch((err) => {
    process.stderr.write(`${(err as Error).stack ?? err}\n`);
    process.exitCode = 1;
  });
}
