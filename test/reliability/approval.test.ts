import { join } from 'node:path';
import { ExitCode } from '../../cli/exit-codes';
import { runCli } from '../../cli/main';
import { LOCAL_APPROVAL_PATH, LOCAL_IDENTITY_HEADER } from '../../local/approval-url';
import { capture } from '../helpers/io';
import { startExampleRuntime, type TestRuntime } from '../helpers/local-runtime';
import { etagOf, readJson, topLevelStatesEntered, waitFor } from '../helpers/reliability';

/**
 * Promise: where the config requires approval, nothing deploys until a person other than the
 * requester approves the built artifact; a rejection or a timeout ends the execution FAILED at the
 * approval, with nothing deployed, and a redrive asks again. End to end on the local runtime:
 * the same definition, tasks and function URL handler as on AWS.
 */

let t: TestRuntime;
const printed: string[] = [];

beforeAll(async () => {
  t = await startExampleRuntime(
    (config) => {
      config.environments.acceptance.approval = { required: true, timeoutMinutes: 60, allowSelfApproval: false };
      // A second environment whose approval runs out in 2 seconds.
      config.environments.preproduction.approval = { required: true, timeoutMinutes: 2 / 60, allowSelfApproval: true };
    },
    // What the functions print (their log group on AWS): with no Slack webhook configured, the approval
    // request is printed there; keep it for the asserts.
    { onFunctionLog: (line) => printed.push(line) },
  );
});

afterAll(async () => {
  await t.close();
});

interface Answer {
  readonly status: number;
  readonly body: { message?: string; decidedBy?: string; action?: string };
}

/** A decision through the local function URL, as `stepdeploy approve/reject --local` sends it. */
async function decide(identity: string, body: Record<string, unknown>): Promise<Answer> {
  const response = await fetch(`${t.runtime.endpoint}${LOCAL_APPROVAL_PATH}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', [LOCAL_IDENTITY_HEADER]: identity },
    body: JSON.stringify(body),
  });
  return { status: response.status, body: (await response.json()) as Answer['body'] };
}

function start(name: string, environment: string, requestedBy = 'alice@example.com') {
  return t.runtime.machine.start(name, { environment, branches: {}, requestedBy });
}

async function waitingForApproval(environment: string, execution: string, redriveCount = 0): Promise<void> {
  await waitFor(
    `${execution} waiting for approval`,
    async () => {
      if ((await etagOf(t.runtime, `approvals/${environment}/${execution}.json`)) === undefined) return false;
      const record = await readJson(t.runtime, `approvals/${environment}/${execution}.json`);
      return record.status === 'waiting' && record.redriveCount === redriveCount;
    },
    120_000,
  );
}

async function currentExecution(environment: string): Promise<string | undefined> {
  if ((await etagOf(t.runtime, `deployments/${environment}/current.json`)) === undefined) return undefined;
  return (await readJson(t.runtime, `deployments/${environment}/current.json`)).execution;
}

test('approve: the execution waits at AwaitApproval, then deploys; who approved is in the history and the deployment record', async () => {
  const { executionArn } = start('acceptance-approve-1', 'acceptance');
  await waitingForApproval('acceptance', 'acceptance-approve-1');
  expect(t.runtime.machine.describe(executionArn).status).toBe('RUNNING');
  expect(await currentExecution('acceptance')).toBeUndefined();
  const request = printed.filter((l) => l.includes('acceptance-approve-1'));
  expect(request.join('\n')).toContain('acceptance: a deployment waits for approval (execution acceptance-approve-1)');
  expect(request.join('\n')).toMatch(/app main@[0-9a-f]{7} \(nothing deployed yet\)/);
  expect(request.join('\n')).toContain('requested by alice@example.com');
  expect(request.join('\n')).toContain('stepdeploy approve acceptance-approve-1');
  const token = (await readJson(t.runtime, 'approvals/acceptance/acceptance-approve-1.json')).taskToken as string;
  expect(printed.join('\n')).not.toContain(token);
  // `executions` tells it apart from a deployment that runs: in the table and in its JSON.
  const listed = capture();
  const listedJson = capture();
  const cliTarget = ['node', 'stepdeploy', '--config', join(t.dir, 'stepdeploy.config.yml'), '--endpoint-url'];
  await runCli([...cliTarget, t.runtime.endpoint, 'executions', '--env', 'acceptance'], listed);
  await runCli([...cliTarget, t.runtime.endpoint, 'executions', '--env', 'acceptance', '--json'], listedJson);
  expect(listed.stdout()).toMatch(/acceptance-approve-1\s+waiting for approval\s+acceptance/);
  expect(JSON.parse(listedJson.stdout())).toEqual(
    expect.arrayContaining([
      expect.objectContaining({ name: 'acceptance-approve-1', status: 'RUNNING', waitingForApproval: true }),
    ]),
  );

  // Through the CLI, as a person runs it: the git user is who decides.
  const io = capture();
  const git = { GIT_CONFIG_COUNT: '1', GIT_CONFIG_KEY_0: 'user.email', GIT_CONFIG_VALUE_0: 'bob@example.com' };
  Object.assign(process.env, git);
  const code = await runCli(
    [
      ...['node', 'stepdeploy', '--config', join(t.dir, 'stepdeploy.config.yml')],
      ...['--endpoint-url', t.runtime.endpoint, 'approve', 'acceptance-approve-1', '--comment', 'looks good'],
    ],
    io,
  ).finally(() => {
    for (const key of Object.keys(git)) delete process.env[key];
  });

  expect({ code, err: io.stderr() }).toEqual({ code: ExitCode.Ok, err: '' });
  expect(io.stdout()).toContain(
    'approved acceptance-approve-1 in acceptance: it deploys now (decided by arn:aws:iam::000000000000:user/bob@example.com)',
  );
  const record = await t.runtime.machine.wait(executionArn);
  expect(record.status).toBe('SUCCEEDED');
  const current = await readJson(t.runtime, 'deployments/acceptance/current.json');
  expect(current.execution).toBe('acceptance-approve-1');
  expect(current.approval).toEqual({
    approvedBy: 'arn:aws:iam::000000000000:user/bob@example.com',
    comment: 'looks good',
    approvedAt: expect.any(String),
  });
  const history = t.runtime.machine.history(executionArn);
  expect(topLevelStatesEntered(history)).toEqual(
    expect.arrayContaining(['ApprovalRequired', 'AwaitApproval', 'Deploy']),
  );
  expect(JSON.stringify(history)).toContain('bob@example.com');
  // A second decision: the execution no longer waits.
  const again = await decide('carol@example.com', {
    action: 'reject',
    environment: 'acceptance',
    execution: 'acceptance-approve-1',
    reason: 'too late',
  });
  expect(again.status).toBe(409);
  expect(again.body.message).toContain(
    'no longer waits for approval: it was approved by arn:aws:iam::000000000000:user/bob@example.com',
  );
});

test('self-approval is refused where allowSelfApproval is false; reject ends FAILED ApprovalRejectedError with nothing deployed', async () => {
  const before = await currentExecution('acceptance');
  const { executionArn } = start('acceptance-reject-1', 'acceptance', 'Alice@example.com');
  await waitingForApproval('acceptance', 'acceptance-reject-1');

  const self = await decide('alice@example.com', {
    action: 'approve',
    environment: 'acceptance',
    execution: 'acceptance-reject-1',
  });
  expect(self.status).toBe(403);
  expect(self.body.message).toContain('allowSelfApproval: false: another person must approve it');
  expect(t.runtime.machine.describe(executionArn).status).toBe('RUNNING');

  const rejected = await decide('bob@example.com', {
    action: 'reject',
    environment: 'acceptance',
    execution: 'acceptance-reject-1',
    reason: 'wrong branch',
  });
  expect(rejected.status).toBe(200);
  const record = await t.runtime.machine.wait(executionArn);
  expect(record).toMatchObject({ status: 'FAILED', error: 'ApprovalRejectedError' });
  expect(record.cause).toContain('rejected by arn:aws:iam::000000000000:user/bob@example.com');
  expect(record.cause).toContain('wrong branch');
  expect(record.lastTopLevelState?.name).toBe('AwaitApproval');
  expect(await currentExecution('acceptance')).toBe(before);
  expect(topLevelStatesEntered(t.runtime.machine.history(executionArn))).not.toContain('Deploy');
});

test('approving an execution that a newer one superseded is refused, naming the newer one', async () => {
  const older = start('acceptance-older-1', 'acceptance');
  await waitingForApproval('acceptance', 'acceptance-older-1');
  await new Promise((resolve) => setTimeout(resolve, 20));
  const newer = start('acceptance-newer-1', 'acceptance');
  await waitingForApproval('acceptance', 'acceptance-newer-1');
  expect(
    (await decide('bob@example.com', { action: 'approve', environment: 'acceptance', execution: 'acceptance-newer-1' }))
      .status,
  ).toBe(200);
  expect((await t.runtime.machine.wait(newer.executionArn)).status).toBe('SUCCEEDED');

  const answer = await decide('bob@example.com', {
    action: 'approve',
    environment: 'acceptance',
    execution: 'acceptance-older-1',
  });

  expect(answer.status).toBe(409);
  expect(answer.body.message).toContain('acceptance-older-1 is superseded: the newer execution acceptance-newer-1');
  expect(t.runtime.machine.describe(older.executionArn).status).toBe('RUNNING');
  t.runtime.machine.stop(older.executionArn);
  await t.runtime.machine.wait(older.executionArn);
});

test('timeout: FAILED ApprovalTimedOutError at ApprovalTimedOut; a late approval is refused; redrive asks again, approve deploys', async () => {
  const { executionArn } = start('preproduction-timeout-1', 'preproduction');
  await waitingForApproval('preproduction', 'preproduction-timeout-1');

  const failed = await t.runtime.machine.wait(executionArn);

  expect(failed).toMatchObject({ status: 'FAILED', error: 'ApprovalTimedOutError' });
  expect(failed.lastTopLevelState?.name).toBe('ApprovalTimedOut');
  expect(failed.cause).toContain('Redrive the execution to ask again');
  expect(await currentExecution('preproduction')).toBeUndefined();
  const late = await decide('bob@example.com', {
    action: 'approve',
    environment: 'preproduction',
    execution: 'preproduction-timeout-1',
  });
  expect(late.status).toBe(409);
  expect(late.body.message).toContain('no longer waits for approval: it was timed-out');

  t.runtime.machine.redrive(executionArn);
  await waitingForApproval('preproduction', 'preproduction-timeout-1', 1);
  const approved = await decide('alice@example.com', {
    action: 'approve',
    environment: 'preproduction',
    execution: 'preproduction-timeout-1',
  });
  expect(approved.status).toBe(200);

  expect((await t.runtime.machine.wait(executionArn)).status).toBe('SUCCEEDED');
  expect(await currentExecution('preproduction')).toBe('preproduction-timeout-1');
  const redriven = t.runtime.machine.history(executionArn);
  const after = topLevelStatesEntered(redriven.slice(redriven.findIndex((e) => e.type === 'ExecutionRedriven')));
  expect(after).toEqual(['ApprovalTimedOut', 'AwaitApproval', 'Deploy', 'PostDeployHooks', 'RecordDeployment']);
});

test('a request without an identity, or with a malformed body, is refused before anything is read', async () => {
  const unsigned = await fetch(`${t.runtime.endpoint}${LOCAL_APPROVAL_PATH}`, { method: 'POST', body: '{}' });
  expect(unsigned.status).toBe(403);
  const bad = await decide('bob@example.com', { action: 'reject', environment: 'acceptance', execution: 'x' });
  expect(bad.status).toBe(400);
  expect(bad.body.message).toContain('reason');
  const unknown = await decide('bob@example.com', { action: 'approve', environment: 'acceptance', execution: 'nope' });
  expect(unknown.status).toBe(404);
});
