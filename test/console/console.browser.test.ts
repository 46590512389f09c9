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
    await page.click('button[type=submit]');
    await page.locator('.execution').waitFor();

    // Seen running, then succeeded: the page follows the execution live.
    await page.locator('g.node[data-status="RUNNING"]').first().waitFor();
    await page.locator('.execution[data-status="SUCCEEDED"]').waitFor({ timeout: 60_000 });
    for (const state of TOP_LEVEL) expect(await statusOf(state)).toBe('SUCCEEDED');
    const iterations = await page
      .locator('g.node[data-state="FetchSources"] g.iteration')
      .evaluateAll((nodes) => nodes.map((n) => [n.getAttribute('data-iteration'), n.getAttribute('data-status')]));
    expect(iterations).toEqual([
      ['app @ feature/hostile-log', 'SUCCEEDED'],
      ['config @ main', 'SUCCEEDED'],
    ]);
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
});
