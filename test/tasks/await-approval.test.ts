import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { mockClient } from 'aws-sdk-client-mock';
import 'aws-sdk-client-mock-jest';
import type { ApprovalRecord } from '../../tasks/await-approval/approval-record';
import { approvalTimedOut, requestApproval, type AwaitApprovalEvent } from '../../tasks/await-approval/await-approval';
import { compareLink } from '../../tasks/await-approval/compare-link';
import { ApprovalTimedOutError } from '../../tasks/await-approval/errors';
import type { SlackMessage } from '../../tasks/notify/format';
import { serveJsonObjects } from '../helpers/s3-mock';

const s3Mock = mockClient(S3Client);
const s3 = new S3Client({});
const BUCKET = 'shop-artifacts';
const NOW = new Date('2026-11-29T10:00:00.000Z');
const TOKEN = 'AQCEAAAAKgAAAA-the-task-token';
const EXECUTION = 'production-20261129T095000-aaaaaa';
const KEY = `approvals/production/${EXECUTION}.json`;
const NEW = 'a'.repeat(40);
const OLD = 'b'.repeat(40);

const event: AwaitApprovalEvent = {
  taskToken: TOKEN,
  environment: 'production',
  execution: EXECUTION,
  startedAt: '2026-11-29T09:50:00.000Z',
  redriveCount: 0,
  requestedBy: 'alice@example.com',
  timeoutSeconds: 3600,
  allowSelfApproval: false,
  redeployOf: null,
  repositories: [
    { name: 'app', repository: 'https://github.com/acme/shop.git', sourceType: 'GITHUB' },
    { name: 'config', repository: 'https://git.internal/acme/config.git', sourceType: 'GITHUB_ENTERPRISE' },
  ],
  sources: [
    { name: 'app', branch: 'main', commit: NEW },
    { name: 'config', branch: 'main', commit: NEW },
  ],
};

beforeEach(() => {
  s3Mock.reset();
  s3Mock.on(PutObjectCommand).resolves({});
});

test('stores the token under approvals/ only, and the Slack request says what, what is deployed now, who asked, how to answer — never the token', async () => {
  serveJsonObjects(s3Mock, {
    'deployments/production/current.json': {
      execution: 'production-earlier',
      sources: [
        { name: 'app', branch: 'main', commit: OLD },
        { name: 'config', branch: 'main', commit: OLD },
      ],
    },
  });
  const sent: SlackMessage[] = [];

  const result = await requestApproval(event, {
    s3,
    bucket: BUCKET,
    now: () => NOW,
    slack: async (message) => {
      sent.push(message);
      return { ok: true };
    },
  });

  expect(result).toEqual({ approvalKey: KEY, expiresAt: '2026-11-29T11:00:00.000Z', notified: 'slack' });
  expect(s3Mock).toHaveReceivedCommandTimes(PutObjectCommand, 1);
  const put = s3Mock.commandCalls(PutObjectCommand)[0]!.args[0].input;
  expect(put.Key).toBe(KEY);
  expect(JSON.parse(put.Body as string)).toMatchObject({ taskToken: TOKEN, status: 'waiting', redriveCount: 0 });
  const text = JSON.stringify(sent);
  expect(text).not.toContain(TOKEN);
  expect(text).toContain(`production: a deployment waits for approval (execution ${EXECUTION})`);
  expect(text).toContain(
    `app main@aaaaaaa (deployed now main@bbbbbbb, changes: https://github.com/acme/shop/compare/${OLD}...${NEW})`,
  );
  // No compare link for a host whose compare URL is not known.
  expect(text).toContain('config main@aaaaaaa (deployed now main@bbbbbbb)');
  expect(text).toContain('deployed now: production-earlier');
  expect(text).toContain('requested by alice@example.com');
  expect(text).toContain(`stepdeploy approve ${EXECUTION}`);
  expect(text).toContain(`stepdeploy reject ${EXECUTION} --reason TEXT`);
});

test('with slackButtons the message offers Approve (confirmed first) and Reject, valued <environment>/<execution>, never the token', async () => {
  serveJsonObjects(s3Mock, {});
  const sent: SlackMessage[] = [];
  const deps = {
    s3,
    bucket: BUCKET,
    now: () => NOW,
    slack: async (message: SlackMessage) => {
      sent.push(message);
      return { ok: true as const };
    },
  };

  await requestApproval(event, { ...deps, slackButtons: true });
  await requestApproval(event, deps);

  const [withButtons, without] = sent;
  const actions = withButtons!.blocks.filter((b) => b.type === 'actions');
  expect(actions).toEqual([
    {
      type: 'actions',
      block_id: 'stepdeploy-approval',
      elements: [
        expect.objectContaining({
          type: 'button',
          action_id: 'stepdeploy-approve',
          value: `production/${EXECUTION}`,
          style: 'primary',
          confirm: expect.objectContaining({
            text: { type: 'plain_text', text: `${EXECUTION} deploys to production as soon as you confirm.` },
          }),
        }),
        {
          type: 'button',
          action_id: 'stepdeploy-reject',
          text: { type: 'plain_text', text: 'Reject' },
          style: 'danger',
          value: `production/${EXECUTION}`,
        },
      ],
    },
  ]);
  expect(JSON.stringify(withButtons)).not.toContain(TOKEN);
  expect(without!.blocks.some((b) => b.type === 'actions')).toBe(false);
});

test('a Slack outage does not fail the request: the approval waits all the same', async () => {
  serveJsonObjects(s3Mock, {});
  const warn = jest.spyOn(console, 'warn').mockImplementation(() => undefined);
  const result = await requestApproval(event, {
    s3,
    bucket: BUCKET,
    now: () => NOW,
    slack: async () => ({ ok: false, reason: 'Slack answered HTTP 500' }),
  });
  expect(result.notified).toBe('not delivered');
  expect(warn.mock.calls.join('\n')).not.toContain(TOKEN);
  warn.mockRestore();
});

test('compare links for GitHub, GitLab and Bitbucket URLs; none for other hosts or non-commits', () => {
  expect(compareLink('https://gitlab.com/acme/group/shop.git', OLD, NEW)).toBe(
    `https://gitlab.com/acme/group/shop/-/compare/${OLD}...${NEW}`,
  );
  expect(compareLink('https://bitbucket.org/acme/shop', OLD, NEW)).toBe(
    `https://bitbucket.org/acme/shop/branches/compare/${NEW}%0D${OLD}`,
  );
  expect(compareLink('https://github.com/acme/shop', 'main', NEW)).toBeUndefined();
  expect(compareLink('/srv/git/shop.git', OLD, NEW)).toBeUndefined();
});

describe('ApprovalTimedOut', () => {
  const record: ApprovalRecord = {
    environment: 'production',
    execution: EXECUTION,
    startedAt: event.startedAt,
    redriveCount: 0,
    taskToken: TOKEN,
    requestedBy: 'alice@example.com',
    allowSelfApproval: false,
    requestedAt: '2026-11-29T10:00:00.000Z',
    expiresAt: '2026-11-29T11:00:00.000Z',
    sources: event.sources,
    redeployOf: null,
    status: 'waiting',
  };
  const timedOut = { environment: 'production', execution: EXECUTION };

  test('the run that asked: marks the request timed out and fails ApprovalTimedOutError, saying how to ask again', async () => {
    serveJsonObjects(s3Mock, { [KEY]: record });

    const error = await approvalTimedOut(
      { ...timedOut, redriveCount: 0 },
      { s3, bucket: BUCKET, now: () => NOW },
    ).catch((e: Error) => e);

    expect(error).toBeInstanceOf(ApprovalTimedOutError);
    expect((error as Error).message).toContain('no decision by 2026-11-29T11:00:00.000Z');
    expect((error as Error).message).toContain('Redrive the execution to ask again');
    expect(JSON.parse(s3Mock.commandCalls(PutObjectCommand)[0]!.args[0].input.Body as string).status).toBe('timed-out');
  });

  test('a redrive (a later run than the one that asked) goes back to ask again', async () => {
    serveJsonObjects(s3Mock, { [KEY]: { ...record, status: 'timed-out' } });

    await expect(approvalTimedOut({ ...timedOut, redriveCount: 1 }, { s3, bucket: BUCKET })).resolves.toEqual({
      askAgain: true,
    });
    expect(s3Mock).not.toHaveReceivedCommand(PutObjectCommand);
  });
});
