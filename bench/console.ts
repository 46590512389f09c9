import { readFileSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { serveConsole } from '../cli/local-serve';
import { startExampleRuntime } from '../local/example-runtime';
import { CONSOLE_SECTION, withSection } from './kept-sections';
import { summarize } from './stats';

/**
 * `npm run bench:console`: the console's first render, locally, in Debian's chromium driven by
 * playwright-core: the execution page of a finished deployment (graph laid out and coloured) and
 * the executions list with 1,000 executions. Writes its section of BENCHMARKS.md.
 */

const RUNS = 5;
const LIST_SIZE = 1000;
const CHROMIUM = process.env.STEPDEPLOY_CHROMIUM || '/usr/bin/chromium';

async function main(): Promise<void> {
  console.log = (...values: unknown[]): void => console.error(...values);
  const started = Date.now();
  const rt = await startExampleRuntime(undefined, { notify: async () => undefined });
  const { chromium } = await import('playwright-core');
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu'] });
  try {
    const deployment = await rt.run('bench-console', { environment: 'acceptance', branches: { app: 'develop' } });
    if (deployment.status !== 'SUCCEEDED') throw new Error(`the deployment ended ${deployment.status}`);
    // Executions that end at ValidateInput (an unknown environment): real executions, cheap to make.
    const made = Date.now();
    const names = Array.from({ length: LIST_SIZE - 1 }, (_, i) => `bench-list-${String(i).padStart(4, '0')}`);
    await Promise.all(
      names.map((name) =>
        rt.runtime.machine.wait(rt.runtime.machine.start(name, { environment: 'nowhere' }).executionArn),
      ),
    );
    const makeSeconds = (Date.now() - made) / 1000;
    const target = await serveConsole(rt.runtime, join(rt.dir, 'stepdeploy.config.yml'));
    const base = `${rt.runtime.endpoint}/`;

    /** Milliseconds from navigation in a fresh page to `ready`. */
    const render = async (hash: string, ready: string): Promise<number> => {
      const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
      const t0 = performance.now();
      await page.goto(`${base}${hash}`);
      await page.locator(ready).first().waitFor({ timeout: 120_000 });
      const ms = performance.now() - t0;
      await page.close();
      return ms;
    };
    const executionHash = `#/execution/${encodeURIComponent(deployment.executionArn)}`;
    const executionReady = 'g.node[data-state="RecordDeployment"][data-status="SUCCEEDED"]';
    const listReady = `.count:text("${LIST_SIZE} executions")`;
    // The first request builds the page bundle (esbuild) and describes every execution once.
    const coldExecution = await render(executionHash, executionReady);
    const coldList = await render('#/executions', listReady);
    const execution: number[] = [];
    const list: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      execution.push(await render(executionHash, executionReady));
      list.push(await render('#/executions', listReady));
    }
    const scroll: number[] = [];
    const oldest = 'bench-console';
    for (let i = 0; i < RUNS; i++) {
      const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
      await page.goto(`${base}#/executions`);
      await page.locator(listReady).waitFor({ timeout: 120_000 });
      const t0 = performance.now();
      await page.locator('.list-viewport').evaluate((el) => el.scrollTo(0, el.scrollHeight));
      await page.locator(`tr[data-execution="${oldest}"]`).waitFor({ timeout: 120_000 });
      scroll.push(performance.now() - t0);
      await page.close();
    }
    const s = summarize(scroll);
    const e = summarize(execution);
    const l = summarize(list);
    const ms = (v: number): string => `${Math.round(v)} ms`;
    const load = loadavg()
      .map((v) => v.toFixed(2))
      .join(' ');
    const section = `${CONSOLE_SECTION.start}
## 8. Console: first render

\`npm run bench:console\` (bench/console.ts) on ${new Date().toISOString()}, load average ${load} (a shared
2-core machine). The local runtime with the console at \`/\` of its endpoint, Debian's chromium
driven by playwright-core; each figure is a fresh page from navigation until the thing is drawn,
median of ${RUNS} (min-max).

| page | first request (bundle built, executions described) | then: median (min-max) |
| --- | --- | --- |
| Execution page of a finished deployment: graph laid out by dagre (each Map's sub-graph too), every state coloured | ${ms(coldExecution)} | ${ms(e.median)} (${ms(e.min)}-${ms(e.max)}) |
| Executions list with ${LIST_SIZE} executions (rows in view drawn; the list keeps only those in the page) | ${ms(coldList)} | ${ms(l.median)} (${ms(l.min)}-${ms(l.max)}) |
| Scrolling that list to its end until the oldest execution is drawn | | ${ms(s.median)} (${ms(s.min)}-${ms(s.max)}) |

The list's first request describes the newest 50 executions (DescribeExecution, 8 at a time, for
their environment and branches) and answers; the others are described in the background and fill in
as the page refreshes. An execution's input never changes, so later requests only list; the local
ListExecutions stats each execution's record and parses only those that changed since its last call
(edf8928; it parsed all ${LIST_SIZE} records, ~9 MB of JSON, on every call before). The
${LIST_SIZE - 1} extra executions end at ValidateInput (unknown environment): made in ${makeSeconds.toFixed(0)} s.
${CONSOLE_SECTION.end}`;
    const file = join(__dirname, '..', 'BENCHMARKS.md');
    writeFileSync(file, withSection(readFileSync(file, 'utf8'), file, CONSOLE_SECTION, section));
    process.stdout.write(
      `execution page ${ms(coldExecution)} cold, ${ms(e.median)} median; list of ${LIST_SIZE} ${ms(coldList)} cold, ${ms(l.median)} median; bench took ${((Date.now() - started) / 1000).toFixed(0)} s\n`,
    );
    await target.close();
  } finally {
    await browser.close();
    await rt.close();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
