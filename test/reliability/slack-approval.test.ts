import { execFileSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { readOrMakeSecret } from '../../local/local-secret';
import { SLACK_ACTIONS_PATH, slackSigningSecretFile } from '../../local/slack-actions';
import { startExampleRuntime, type TestRuntime } from '../helpers/local-runtime';
import { etagOf, readJson, topLevelStatesEntered, waitFor } from '../helpers/reliability';

/**
 * Promise: a click on Approve in the Slack request decides as the approver the click's Slack member
 * is mapped to, under the same rules as `stepdeploy approve` (self-approval, superseded, no longer
 * waiting); a request that Slack did not sign with the app's signing secret, or signed more than
 * 300 s ago, changes nothing. End to end on the local runtime: a real execution waiting at
 * AwaitApproval, requests signed by openssl (not the code under test), the answers posted to a
 * response URL served by this test.
 */

let t: TestRuntime;
let secret: string;
let slack: Server;
let responseUrl: string;
const replies: Array<Record<string, unknown>> = [];

beforeAll(async () => {
  t = await startExampleRuntime((config) => {
    config.environments.acceptance.approval = { required: true, timeoutMinutes: 60, allowSelfApproval: false };
    config.notifications.slack.signingSecretName = 'stepdeploy/slack-signing';
    config.notifications.slack.approvers = { U0BOB: 'bob@example.com', U0ALICE: 'alice@example.com' };
  });
  // What the Slack app's settings show; the runtime made it once, or makes it now.
  secret = readOrMakeSecret(slackSigningSecretFile(t.runtime.home));
  slack = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      replies.push(JSON.parse(Buffer.concat(chunks).toString('utf8')));
      res.end('ok');
    });
  });
  await new Promise<void>((resolve) => slack.listen(0, '127.0.0.1', resolve));
  responseUrl = `http://127.0.0.1:${(slack.address() as AddressInfo).port}/actions/T0001/1/abc`;
});

afterAll(async () => {
  await new Promise((resolve) => slack.close(resolve));
  await t.close();
});

beforeEach(() => {
  replies.length = 0;
});

function payload(user: string, value: string, actionId = 'stepdeploy-approve'): string {
  return `payload=${encodeURIComponent(
    JSON.stringify({
      type: 'block_actions',
      user: { id: user, username: 'someone', team_id: 'T0001' },
      team: { id: 'T0001', domain: 'acme' },
      api_app_id: 'A0001',
      trigger_id: '1.2.3',
      response_url: responseUrl,
      container: { type: 'message', message_ts: '1.2' },
      message: {
        text: 'acceptance: a deployment waits for approval',
        blocks: [
          { type: 'section', block_id: 'request', text: { type: 'mrkdwn', text: 'the request' } },
          { type: 'actions', block_id: 'stepdeploy-approval', elements: [] },
        ],
      },
      actions: [{ type: 'button', action_id: actionId, block_id: 'stepdeploy-approval', value, action_ts: '1.3' }],
    }),
  )}`;
}

/** X-Slack-Signature as Slack computes it, by openssl. */
function opensslSignature(timestamp: string, body: string, key = secret): string {
  const out = execFileSync('openssl', ['dgst', '-sha256', '-hmac', key], { input: `v0:${timestamp}:${body}` });
  return `v0=${/([0-9a-f]{64})\s*$/.exec(out.toString())![1]}`;
}

interface SignedRequest {
  readonly timestamp: string;
  readonly signature: string;
  readonly body: string;
}

function sign(body: string, options: { ageSeconds?: number; key?: string } = {}): SignedRequest {
  const timestamp = String(Math.floor(Date.now() / 1000) - (options.ageSeconds ?? 0));
  return { timestamp, signature: opensslSignature(timestamp, body, options.key), body };
}

async function post(request: SignedRequest): Promise<{ status: number; body: string }> {
  const response = await fetch(`${t.runtime.endpoint}${SLACK_ACTIONS_PATH}`, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      'x-slack-request-timestamp': request.timestamp,
      'x-slack-signature': request.signature,
    },
    body: request.body,
  });
  return { status: response.status, body: await response.text() };
}

function start(name: string, requestedBy = 'alice@example.com') {
  return t.runtime.machine.start(name, { environment: 'acceptance', branches: {}, requestedBy });
}

async function waitingForApproval(execution: string): Promise<void> {
  await waitFor(
    `${execution} waiting for approval`,
    async () =>
      (await etagOf(t.runtime, `approvals/acceptance/${execution}.json`)) !== undefined &&
      (await readJson(t.runtime, `approvals/acceptance/${execution}.json`)).status === 'waiting',
    120_000,
  );
}

async function approvalStatus(execution: string): Promise<string> {
  return (await readJson(t.runtime, `approvals/acceptance/${execution}.json`)).status;
}

test('Approve, signed: deployed, recorded as the mapped approver "via Slack", the message updated; a second click is refused', async () => {
  const { executionArn } = start('acceptance-slack-1');
  await waitingForApproval('acceptance-slack-1');
  expect(statSync(slackSigningSecretFile(t.runtime.home)).mode & 0o777).toBe(0o600);
  const click = sign(payload('U0BOB', 'acceptance/acceptance-slack-1'));

  const answer = await post(click);

  // The decision and the reply come before the answer (Slack shows a click as failed after 3 s;
  // how long that takes is a figure for a bench, not a bound for a test on a loaded machine).
  expect(answer).toEqual({ status: 200, body: '' });
  expect(replies).toEqual([
    expect.objectContaining({
      replace_original: true,
      text: ':white_check_mark: Approved by bob@example.com (<@U0BOB>): acceptance-slack-1 deploys to acceptance now',
    }),
  ]);
  // The request stays in the channel; its buttons are gone.
  expect(JSON.stringify(replies[0]!.blocks)).toContain('the request');
  expect(JSON.stringify(replies[0]!.blocks)).not.toContain('stepdeploy-approval');
  const record = await t.runtime.machine.wait(executionArn);
  expect(record.status).toBe('SUCCEEDED');
  expect(topLevelStatesEntered(t.runtime.machine.history(executionArn))).toEqual(
    expect.arrayContaining(['AwaitApproval', 'Deploy', 'RecordDeployment']),
  );
  const current = await readJson(t.runtime, 'deployments/acceptance/current.json');
  expect(current.execution).toBe('acceptance-slack-1');
  expect(current.approval).toMatchObject({ approvedBy: 'bob@example.com via Slack (U0BOB)', comment: null });
  const token = (await readJson(t.runtime, 'approvals/acceptance/acceptance-slack-1.json')).taskToken as string;
  expect(JSON.stringify(replies)).not.toContain(token);

  // The same signed request again (within its 300 s): decided already, nothing changes.
  replies.length = 0;
  expect((await post(click)).status).toBe(200);
  expect(replies).toEqual([expect.objectContaining({ response_type: 'ephemeral', replace_original: false })]);
  expect(replies[0]!.text).toContain(
    'no longer waits for approval: it was approved by bob@example.com via Slack (U0BOB)',
  );
});

describe('nothing happens', () => {
  const execution = 'acceptance-slack-refused';
  let executionArn: string;

  beforeAll(async () => {
    executionArn = start(execution).executionArn;
    await waitingForApproval(execution);
  });

  afterAll(async () => {
    t.runtime.machine.stop(executionArn);
    await t.runtime.machine.wait(executionArn);
  });

  afterEach(async () => {
    expect(t.runtime.machine.describe(executionArn).status).toBe('RUNNING');
    expect(await approvalStatus(execution)).toBe('waiting');
  });

  test('on a wrong signature: 401', async () => {
    const forged = sign(payload('U0BOB', `acceptance/${execution}`), { key: 'not-the-signing-secret' });

    const answer = await post(forged);

    expect(answer.status).toBe(401);
    expect(JSON.parse(answer.body).message).toBe('X-Slack-Signature does not match the body and timestamp');
    expect(replies).toEqual([]);
  });

  test('on a body changed after signing: 401', async () => {
    const signed = sign(payload('U0MALLORY', `acceptance/${execution}`));

    const answer = await post({ ...signed, body: payload('U0BOB', `acceptance/${execution}`) });

    expect(answer.status).toBe(401);
    expect(replies).toEqual([]);
  });

  test('on a timestamp more than 300 s from now, and on an old request replayed: 401', async () => {
    // Well past 300 s: the runtime reads its clock a moment later, maybe in the next second.
    const future = sign(payload('U0BOB', `acceptance/${execution}`), { ageSeconds: -330 });
    // Captured ten minutes ago, validly signed then.
    const captured = sign(payload('U0BOB', `acceptance/${execution}`), { ageSeconds: 600 });

    const answers = [await post(future), await post(captured)];

    expect(answers.map((a) => a.status)).toEqual([401, 401]);
    expect(JSON.parse(answers[1]!.body).message).toMatch(
      /^X-Slack-Request-Timestamp is 60\d s from now, more than 300 s/,
    );
    expect(replies).toEqual([]);
  });

  test('for a Slack user who is not an approver: a private reply', async () => {
    const answer = await post(sign(payload('U0MALLORY', `acceptance/${execution}`)));

    expect(answer.status).toBe(200);
    expect(replies).toEqual([expect.objectContaining({ response_type: 'ephemeral', replace_original: false })]);
    expect(replies[0]!.text).toContain(
      '<@U0MALLORY> is not an approver of this pipeline (notifications.slack.approvers)',
    );
  });

  test('when the requester approves: self-approval is refused', async () => {
    const answer = await post(sign(payload('U0ALICE', `acceptance/${execution}`)));

    expect(answer.status).toBe(200);
    expect(replies).toHaveLength(1);
    expect(replies[0]).toMatchObject({ response_type: 'ephemeral' });
    expect(replies[0]!.text).toContain('Not approved: alice@example.com requested acceptance-slack-refused');
    expect(replies[0]!.text).toContain('allowSelfApproval: false: another person must approve it');
  });

  test('on Reject: the command to run, with a reason', async () => {
    await post(sign(payload('U0BOB', `acceptance/${execution}`, 'stepdeploy-reject')));

    expect(replies).toEqual([expect.objectContaining({ response_type: 'ephemeral' })]);
    expect(replies[0]!.text).toContain(`stepdeploy reject ${execution} --reason "<why>"`);
  });

  test('with hostile strings in the payload: they stay data', async () => {
    const marker = join(t.dir, 'pwned');
    const values = [
      `acceptance/${execution};touch ${marker}`,
      `acceptance/$(touch ${marker})`,
      `acceptance/../../deployments/acceptance/current`,
    ];
    for (const value of values) expect((await post(sign(payload('U0BOB', value)))).status).toBe(400);
    const hostileUser = await post(sign(payload(`<!channel> $(touch ${marker}) \`id\``, `acceptance/${execution}`)));

    expect(hostileUser.status).toBe(200);
    expect(replies).toHaveLength(1);
    expect(replies[0]!.text).toContain('&lt;!channel&gt;');
    expect(replies[0]!.text).not.toContain('<!channel>');
    expect(existsSync(marker)).toBe(false);
  });
});

test('approving an execution that a newer one superseded is refused, naming the newer one', async () => {
  const older = start('acceptance-slack-older', 'carol@example.com');
  await waitingForApproval('acceptance-slack-older');
  await new Promise((resolve) => setTimeout(resolve, 20));
  const newer = start('acceptance-slack-newer', 'carol@example.com');
  await waitingForApproval('acceptance-slack-newer');
  expect((await post(sign(payload('U0BOB', 'acceptance/acceptance-slack-newer')))).status).toBe(200);
  expect((await t.runtime.machine.wait(newer.executionArn)).status).toBe('SUCCEEDED');
  replies.length = 0;

  expect((await post(sign(payload('U0BOB', 'acceptance/acceptance-slack-older')))).status).toBe(200);

  expect(replies).toEqual([expect.objectContaining({ response_type: 'ephemeral' })]);
  expect(replies[0]!.text).toContain(
    'acceptance-slack-older is superseded: the newer execution acceptance-slack-newer',
  );
  expect(t.runtime.machine.describe(older.executionArn).status).toBe('RUNNING');
  expect(await approvalStatus('acceptance-slack-older')).toBe('waiting');
  t.runtime.machine.stop(older.executionArn);
  await t.runtime.machine.wait(older.executionArn);
});
