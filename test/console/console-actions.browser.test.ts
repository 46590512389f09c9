import type { Page } from 'playwright-core';
import { describeInBrowser } from '../helpers/browser';
import { type OpenConsole, openConsole } from '../helpers/console-page';
import { startExampleRuntime, type TestRuntime } from '../helpers/local-runtime';
import { localBuilds, readJson, topLevelStatesEntered, waitFor } from '../helpers/reliability';

/**
 * The console's approval and rollback actions in a real browser, on the real local runtime:
 * approve from the execution page → deployed; reject with a reason → FAILED ApprovalRejectedError;
 * roll back from the Environments page → the earlier build deploys, no build runs. The buttons go
 * through the CLI's code (the approval function as the git user; rollback's ValidateInput rules).
 */

const APPROVER = 'bob@example.com';
const REQUESTER = 'alice@example.com';
const GIT_USER = { GIT_CONFIG_COUNT: '1', GIT_CONFIG_KEY_0: 'user.email', GIT_CONFIG_VALUE_0: APPROVER };

let rt: TestRuntime;
let page: Page;
let url: string;
let dialogs: string[];
let consoleUnderTest: OpenConsole | undefined;

describeInBrowser('console actions in a browser: approve, reject, rollback', () => {
  beforeAll(async () => {
    Object.assign(process.env, GIT_USER);
    // The approval request is printed when no Slack webhook is configured: not this test's concern.
    rt = await startExampleRuntime(undefined, { notify: async () => undefined, onFunctionLog: () => undefined });
    consoleUnderTest = await openConsole(rt);
    ({ page, url, dialogs } = consoleUnderTest);
  });

  afterAll(async () => {
    await consoleUnderTest?.close();
    await rt?.close();
    for (const key of Object.keys(GIT_USER)) delete process.env[key];
  });

  /** A production deployment (approval required, no self-approval) that waits at AwaitApproval. */
  async function waitingDeployment(name: string): Promise<string> {
    const { executionArn } = rt.runtime.machine.start(name, {
      environment: 'production',
      branches: {},
      requestedBy: REQUESTER,
    });
    await waitFor(
      `${name} waiting for approval`,
      async () =>
        (await readJson(rt.runtime, `approvals/production/${name}.json`).catch(() => ({}))).status === 'waiting',
      120_000,
    );
    return executionArn;
  }

  test('approve from the execution page: it shows "waiting for approval", then deploys with the approver recorded', async () => {
    const executionArn = await waitingDeployment('production-console-approve');

    await page.goto(`${url}#/executions`);
    const row = page.locator('tr[data-execution="production-console-approve"]');
    await row.locator('text=waiting for approval').waitFor();

    await page.goto(`${url}#/execution/${encodeURIComponent(executionArn)}`);
    await page.locator('#approval').waitFor();
    expect(await page.locator('#execution-status').textContent()).toBe('waiting for approval');
    expect(await page.locator('g.node[data-state="AwaitApproval"]').getAttribute('data-status')).toBe('RUNNING');
    // Rejecting takes a reason: the button waits for one.
    expect(await page.isDisabled('#reject')).toBe(true);
    await page.fill('#approval-comment', 'checked <b>with</b> QA');
    await page.click('#approve');

    await page.locator('.execution[data-status="SUCCEEDED"]').waitFor({ timeout: 60_000 });
    expect(await page.locator('#approval').count()).toBe(0);
    const current = await readJson(rt.runtime, 'deployments/production/current.json');
    expect(current.execution).toBe('production-console-approve');
    expect(current.approval).toMatchObject({
      approvedBy: `arn:aws:iam::000000000000:user/${APPROVER}`,
      comment: 'checked <b>with</b> QA',
    });

    // The Environments page marks it, the comment as text.
    await page.goto(`${url}#/environments`);
    const production = page.locator('.environment[data-environment="production"] .deployment');
    await production.waitFor();
    expect(await production.locator('.approval-mark').textContent()).toBe(
      `approved by arn:aws:iam::000000000000:user/${APPROVER}: checked <b>with</b> QA`,
    );
    expect(await page.locator('.environments b', { hasText: 'with' }).count()).toBe(0);
  });

  test('reject from the execution page with a reason: FAILED ApprovalRejectedError, nothing deployed', async () => {
    const executionArn = await waitingDeployment('production-console-reject');
    await page.goto(`${url}#/execution/${encodeURIComponent(executionArn)}`);
    await page.locator('#approval').waitFor();

    await page.fill('#reject-reason', 'release freeze');
    await page.click('#reject');

    await page.locator('.execution[data-status="FAILED"]').waitFor({ timeout: 60_000 });
    const failure = await page.locator('.failure').textContent();
    expect(failure).toContain('ApprovalRejectedError');
    expect(failure).toContain('release freeze');
    expect(await page.locator('g.node[data-state="AwaitApproval"]').getAttribute('data-status')).toBe('FAILED');
    expect(await page.locator('g.node[data-state="Deploy"]').getAttribute('data-status')).toBe('PENDING');
    expect((await readJson(rt.runtime, 'deployments/production/current.json')).execution).toBe(
      'production-console-approve',
    );
  });

  test('a refused decision is shown on the page: the requester approving their own deployment', async () => {
    process.env.GIT_CONFIG_VALUE_0 = REQUESTER;
    try {
      const executionArn = await waitingDeployment('production-console-self');
      await page.goto(`${url}#/execution/${encodeURIComponent(executionArn)}`);
      await page.locator('#approval').waitFor();
      await page.click('#approve');
      const refused = page.locator('#decision.error');
      await refused.waitFor();
      expect(await refused.textContent()).toContain('allowSelfApproval: false: another person must approve it');
      expect(rt.runtime.machine.describe(executionArn).status).toBe('RUNNING');
    } finally {
      process.env.GIT_CONFIG_VALUE_0 = APPROVER;
    }
  });

  test('rollback from the Environments page: the earlier build deploys again, no build runs, marked as a rollback', async () => {
    for (const [name, app] of [
      ['acceptance-console-rb-1', 'main'],
      ['acceptance-console-rb-2', 'develop'],
    ] as const) {
      const record = await rt.run(name, { environment: 'acceptance', branches: { app }, requestedBy: REQUESTER });
      expect({ name, status: record.status }).toEqual({ name, status: 'SUCCEEDED' });
    }
    const first = await readJson(rt.runtime, 'deployments/acceptance/executions/acceptance-console-rb-1.json');
    const buildsBefore = localBuilds(rt.runtime.home).length;

    await page.goto(`${url}#/environments`);
    const acceptance = page.locator('.environment[data-environment="acceptance"]');
    const older = acceptance.locator('tr[data-execution="acceptance-console-rb-1"]');
    await older.waitFor();
    // What is deployed now offers no rollback to itself.
    expect(await acceptance.locator('tr[data-execution="acceptance-console-rb-2"] button').count()).toBe(0);
    await older.locator('button.roll-back').click();
    await older.locator('button.confirm-rollback').click();

    await page.locator('.execution').waitFor();
    await page.locator('.execution[data-status="SUCCEEDED"]').waitFor({ timeout: 60_000 });
    const current = await readJson(rt.runtime, 'deployments/acceptance/current.json');
    expect(current.redeployOf).toBe('acceptance-console-rb-1');
    expect(current.sources).toEqual(first.sources);
    expect(current.requestedBy).toBe(APPROVER);
    const states = topLevelStatesEntered(
      rt.runtime.machine.history(rt.runtime.machine.executionArn(current.execution)),
    );
    expect(states).not.toContain('FetchSources');
    expect(states).not.toContain('BuildTemplates');
    expect(
      localBuilds(rt.runtime.home)
        .slice(buildsBefore)
        .map((b) => b.ProjectName),
    ).toEqual(['stepdeploy-example-deploy']);

    await page.goto(`${url}#/environments`);
    const mark = page.locator('.environment[data-environment="acceptance"] .deployment .rollback-mark');
    await mark.waitFor();
    expect(await mark.textContent()).toBe('rollback to the build of acceptance-console-rb-1');
    expect(dialogs).toEqual([]);
  });
});
