import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { LOCAL_S3_CREDENTIALS } from '../../local/s3';
import { describeInBrowser } from '../helpers/browser';
import { type OpenConsole, openConsole } from '../helpers/console-page';
import { startExampleRuntime, type TestRuntime } from '../helpers/local-runtime';
import { pushCommit } from '../helpers/reliability';

/**
 * The console in a real browser, on the real local runtime (`local serve`'s endpoint, page at /):
 * start a deployment from the form, watch its states turn succeeded, fail one and redrive it from
 * the page, and a hostile log line that stays text.
 */

const HOSTILE = '<img src=x onerror=alert(1)>';
const TOP_LEVEL = [
  'ValidateInput',
  'FetchSources',
  'CombineConfigAndCode',
  'BuildTemplates',
  'Deploy',
  'RecordDeployment',
];
/** Where to keep screenshots (the README's comes from here), when set. */
const SCREENSHOTS = process.env.STEPDEPLOY_CONSOLE_SCREENSHOTS;

let rt: TestRuntime;
let page: Page;
let url: string;
let dialogs: string[];
let consoleUnderTest: OpenConsole | undefined;

async function shot(name: string): Promise<void> {
  if (!SCREENSHOTS) return;
  mkdirSync(SCREENSHOTS, { recursive: true });
  await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage: true });
}

describeInBrowser('console in a browser, on the local runtime', () => {
  beforeAll(async () => {
    rt = await startExampleRuntime(undefined, { notify: async () => undefined });
    // A branch whose build prints markup: the page must show it as text.
    const appRepo = join(rt.dir, '.stepdeploy', 'example-repos', 'app.git');
    pushCommit(
      appRepo,
      'feature/hostile-log',
      'stepdeploy/build',
      `#!/usr/bin/env bash\nset -euo pipefail\necho '${HOSTILE}'\nnode ./generator/render.js "$1"\n`,
    );
    consoleUnderTest = await openConsole(rt);
    ({ page, url, dialogs } = consoleUnderTest);
  });

  afterAll(async () => {
    await consoleUnderTest?.close();
    await rt?.close();
  });

  async function statusOf(state: string): Promise<string | null> {
    return page.locator(`g.node[data-state="${state}"]`).getAttribute('data-status');
  }

  /** The Map's iterations as its chooser lists them: label and status. */
  async function iterationsOf(map: string): Promise<string[][]> {
    return page
      .locator(`select.iteration-select[data-map="${map}"] option`)
      .evaluateAll((options) =>
        options.map((o) => [o.textContent!.replace(/ · .*$/, ''), o.getAttribute('data-status')!]),
      );
  }

  /** The status of each state drawn inside the Map, as the shown iteration ran it. */
  async function innerStatuses(map: string): Promise<Record<string, string | null>> {
    return Object.fromEntries(
      await page
        .locator(`g.node[data-state="${map}"] g.inner-node`)
        .evaluateAll((nodes) => nodes.map((n) => [n.getAttribute('data-state'), n.getAttribute('data-status')])),
    );
  }

  test('starts a deployment from the form: field errors first, then the graph turns succeeded', async () => {
    const before = rt.runtime.machine.list().length;
    await page.goto(`${url}#/start`);
    await page.selectOption('#environment', 'acceptance');

    await page.fill('#branch-app', 'feature/..bad');
    const problem = page.locator('.problem[data-field="branches.app"]');
    await problem.waitFor();
    expect(await problem.textContent()).toContain('"feature/..bad"');
    expect(await page.isDisabled('button[type=submit]')).toBe(true);
    expect(rt.runtime.machine.list()).toHaveLength(before);

    await page.fill('#branch-app', 'feature/hostile-log');
    await problem.waitFor({ state: 'detached' });
    await page.fill('#requested-by', 'console test');
    // Every status an inner state of a Map is drawn with, in order, from the execution page's first render.
    await page.evaluate(`(() => {
      const seen = (window.seen = []);
      const record = (node) => seen.push(node.getAttribute('data-state') + ':' + node.getAttribute('data-status'));
      new MutationObserver((changes) => {
        for (const change of changes) {
          if (change.type === 'attributes' && change.target.matches('g.inner-node')) record(change.target);
          for (const added of change.addedNodes)
            if (added.nodeType === 1) [added, ...added.querySelectorAll('g.inner-node')].filter((n) => n.matches('g.inner-node')).forEach(record);
        }
      }).observe(document.body, { subtree: true, childList: true, attributes: true, attributeFilter: ['data-status'] });
    })()`);
    await page.click('button[type=submit]');
    await page.locator('.execution').waitFor();

    // Seen running, then succeeded: the page follows the execution live, inside the Map too.
    await page.locator('g.node[data-status="RUNNING"]').first().waitFor();
    await page.locator('.execution[data-status="SUCCEEDED"]').waitFor({ timeout: 60_000 });
    for (const state of TOP_LEVEL) expect(await statusOf(state)).toBe('SUCCEEDED');
    const seen = (await page.evaluate('window.seen')) as string[];
    expect(seen).toEqual(expect.arrayContaining(['FetchSource:RUNNING', 'FetchSource:SUCCEEDED']));
    expect(seen.indexOf('FetchSource:RUNNING')).toBeLessThan(seen.lastIndexOf('FetchSource:SUCCEEDED'));
    expect(await iterationsOf('FetchSources')).toEqual([
      ['app @ feature/hostile-log', 'SUCCEEDED'],
      ['config @ main', 'SUCCEEDED'],
    ]);
    // Both branches were new: each iteration fetched its source.
    expect(await innerStatuses('FetchSources')).toEqual({
      ResolveSource: 'SUCCEEDED',
      SnapshotStored: 'SUCCEEDED',
      ReuseSnapshot: 'PENDING',
      FetchSource: 'SUCCEEDED',
      FetchSourceThroughConnection: 'PENDING',
      DescribeSnapshot: 'SUCCEEDED',
    });
    expect(await page.locator('g.node[data-state="FetchSources"] .aggregate').textContent()).toBe('2/2 succeeded');
    expect(rt.runtime.machine.list()).toHaveLength(before + 1);
  });

  test("shows a build's log as text: a hostile line stays text and runs nothing", async () => {
    await page.click('g.node[data-state="BuildTemplates"] .node-name');
    const log = page.locator('pre.log');
    await page.locator('pre.log', { hasText: HOSTILE }).waitFor();

    expect(await log.textContent()).toContain(HOSTILE);
    expect(await page.locator('.details-pane img').count()).toBe(0);
    expect(await page.locator('.build .phases li').allTextContents()).toEqual(
      expect.arrayContaining([expect.stringMatching(/^build/), expect.stringMatching(/^completed/)]),
    );
    expect(dialogs).toEqual([]);
    await shot('execution');
  });

  test('a failing build: the page shows it FAILED at BuildTemplates, and Redrive completes it', async () => {
    const failMarker = join(rt.runtime.home, 'fail-build');
    writeFileSync(failMarker, '');
    try {
      await page.goto(`${url}#/start`);
      await page.selectOption('#environment', 'acceptance');
      await page.locator('button[type=submit]:not([disabled])').click();
      await page.locator('.execution').waitFor();
      await page.locator('.execution[data-status="FAILED"]').waitFor({ timeout: 60_000 });
    } finally {
      rmSync(failMarker, { force: true });
    }
    expect(await statusOf('BuildTemplates')).toBe('FAILED');
    expect(await statusOf('Deploy')).toBe('PENDING');
    await page.locator('pre.log', { hasText: 'fails on purpose' }).waitFor();
    await shot('execution-failed');

    await page.click('#redrive');
    await page.locator('.execution[data-status="SUCCEEDED"]').waitFor({ timeout: 60_000 });
    for (const state of TOP_LEVEL) expect(await statusOf(state)).toBe('SUCCEEDED');
    expect(await page.locator('.execution-header').textContent()).toContain('redriven ×1');
  });

  test('lists executions newest first, filters them, and shows what is deployed where', async () => {
    await page.goto(`${url}#/executions`);
    await page.locator('tr[data-execution]').nth(1).waitFor();
    const names = await page
      .locator('tr[data-execution]')
      .evaluateAll((rows) => rows.map((r) => r.getAttribute('data-execution')));
    const newestFirst = rt.runtime.machine.list().map((r) => r.name);
    expect(names).toEqual(newestFirst);
    // Each row's environment and branches come from its input (DescribeExecution).
    expect(await page.locator(`tr[data-execution="${newestFirst[0]}"]`).textContent()).toMatch(
      /acceptance.*app: main.*config: main/,
    );
    await page.selectOption('select[name=status]', 'FAILED');
    await page.locator('.count', { hasText: '0 executions' }).waitFor();

    await page.goto(`${url}#/environments`);
    const acceptance = page.locator('.environment[data-environment="acceptance"]');
    await acceptance.waitFor();
    expect(await acceptance.textContent()).toMatch(/app feature\/hostile-log@[0-9a-f]{12}|app main@[0-9a-f]{12}/);
    expect(await page.locator('.environment[data-environment="production"]').textContent()).toContain(
      'nothing deployed yet',
    );
    await shot('environments');
  });

  test('refuses a foreign Host or Origin, and never sends a credential to the page', async () => {
    const before = rt.runtime.machine.list().length;
    const port = new URL(url).port;
    const status = async (path: string, headers: Record<string, string>, method = 'GET', body?: string) =>
      (await fetch(`${url.replace(/\/$/, '')}${path}`, { method, headers, body })).status;
    // fetch() cannot set Host; a raw request can.
    const { request } = await import('node:http');
    const foreignHost = await new Promise<number>((resolve, reject) => {
      request({ host: '127.0.0.1', port, path: '/', headers: { host: `rebound.example:${port}` } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      })
        .on('error', reject)
        .end();
    });
    expect(foreignHost).toBe(403);
    const start = JSON.stringify({ environment: 'acceptance', branches: {} });
    expect(
      await status(
        '/console/api/start',
        { origin: 'http://evil.example', 'content-type': 'application/json' },
        'POST',
        start,
      ),
    ).toBe(403);
    expect(await status('/console/api/start', { 'content-type': 'text/plain' }, 'POST', start)).toBe(403);
    expect(rt.runtime.machine.list()).toHaveLength(before);

    const arn = rt.runtime.machine.list()[0]!.executionArn;
    for (const path of [
      '/console/api/options',
      '/console/api/executions',
      `/console/api/execution?arn=${encodeURIComponent(arn)}`,
    ]) {
      const text = await (await fetch(`${url.replace(/\/$/, '')}${path}`)).text();
      expect(text).not.toContain(LOCAL_S3_CREDENTIALS.secretAccessKey);
    }
  });

  test("a source that fails: red inside the Map in its iteration, its error and build log when selected; the other iteration's colours when chosen", async () => {
    // A file name zip tools would read as a folder: the fetch build of app refuses it.
    const appRepo = join(rt.dir, '.stepdeploy', 'example-repos', 'app.git');
    pushCommit(appRepo, 'crafted/backslash', 'a\\b.txt', 'one file, not a folder\n');
    await page.goto(`${url}#/start`);
    await page.selectOption('#environment', 'acceptance');
    await page.fill('#branch-app', 'crafted/backslash');
    await page.locator('button[type=submit]:not([disabled])').click();
    await page.locator('.execution[data-status="FAILED"]').waitFor({ timeout: 60_000 });

    expect(await statusOf('FetchSources')).toBe('FAILED');
    // config's iteration ends first when its snapshot is reused, else app's failure aborts it, as on AWS.
    expect(await page.locator('g.node[data-state="FetchSources"] .aggregate').textContent()).toMatch(
      /^(1\/2 succeeded · 1 failed|0\/2 succeeded · 1 failed · 1 aborted)$/,
    );
    // The failed iteration is shown first, and its failed state selected.
    expect(await page.locator('g.map-body[data-map="FetchSources"]').getAttribute('data-iteration')).toBe(
      'app @ crafted/backslash',
    );
    expect(await innerStatuses('FetchSources')).toMatchObject({
      ResolveSource: 'SUCCEEDED',
      FetchSource: 'FAILED',
      DescribeSnapshot: 'PENDING',
    });
    // Drawn red: the --failed colour.
    const stroke = await page.evaluate(
      `getComputedStyle(document.querySelector('g.inner-node[data-state="FetchSource"] > .node-box')).stroke`,
    );
    expect(stroke).toBe('rgb(198, 43, 43)');
    const details = page.locator('.state-details[data-state="FetchSource"]');
    await details.waitFor();
    expect(await details.getAttribute('data-trail')).toBe('FetchSources / app @ crafted/backslash');
    expect(await details.locator('dd.error').textContent()).toBe('States.TaskFailed');
    await page.locator('pre.log', { hasText: 'backslash' }).waitFor();
    await shot('execution-failed-source');

    // Selected, it stays selected in the iteration chosen next: config's, where nothing failed.
    await page.click('g.inner-node[data-state="FetchSource"] .node-name');
    await page.selectOption('select.iteration-select[data-map="FetchSources"]', '1');
    await page.locator('g.map-body[data-iteration="config @ main"]').waitFor();
    const config = await innerStatuses('FetchSources');
    expect(Object.values(config)).not.toContain('FAILED');
    expect(config.ResolveSource).toBe('SUCCEEDED');
    expect(await details.getAttribute('data-trail')).toBe('FetchSources / config @ main');
    expect(await details.locator('dd.error').count()).toBe(0);

    // Another inner state, selected: that iteration's run of it.
    await page.click('g.inner-node[data-state="ResolveSource"] .node-name');
    const resolve = page.locator('.state-details[data-state="ResolveSource"]');
    await resolve.waitFor();
    expect(await resolve.locator('details pre').first().textContent()).toContain('"config"');
    expect(dialogs).toEqual([]);
  });
});
