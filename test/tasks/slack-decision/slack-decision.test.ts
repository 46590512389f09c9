import { createHmac } from 'node:crypto';
import { GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SendTaskSuccessCommand, SFNClient } from '@aws-sdk/client-sfn';
import { mockClient } from 'aws-sdk-client-mock';
import 'aws-sdk-client-mock-jest';
import type { ApprovalRecord } from '../../../tasks/await-approval/approval-record';
import { cachedSecret } from '../../../tasks/shared/secret';
import { parseButtonValue } from '../../../tasks/slack-decision/actions';
import { isSlackResponseUrl, replyPoster } from '../../../tasks/slack-decision/respond';
import {
  handleSlackAction,
  MAX_SLACK_BODY_BYTES,
  type SlackDecisionDependencies,
  type SlackReply,
} from '../../../tasks/slack-decision/slack-decision';
import { serveJsonObjects } from '../../helpers/s3-mock';

const s3Mock = mockClient(S3Client);
const sfnMock = mockClient(SFNClient);
const smMock = mockClient(SecretsManagerClient);
const SECRET = 'slack-signing-secret-0123456789';
const NOW = new Date('2026-12-08T00:00:00.000Z');
const NOW_SECONDS = String(NOW.getTime() / 1000);
const EXECUTION = 'production-20261207T235000-aaaaaa';
const KEY = `approvals/production/${EXECUTION}.json`;
const TOKEN = 'AQCEAAAAKgAAAA-the-task-token';
const RESPONSE_URL = 'https://hooks.slack.com/actions/T0001/123/abc';

const waiting: ApprovalRecord = {
  environment: 'production',
  execution: EXECUTION,
  startedAt: '2026-12-07T23:50:00.000Z',
  redriveCount: 0,
  taskToken: TOKEN,
  requestedBy: 'alice@example.com',
  allowSelfApproval: false,
  requestedAt: '2026-12-07T23:55:00.000Z',
  expiresAt: '2026-12-08T03:55:00.000Z',
  sources: [{ name: 'app', branch: 'main', commit: 'a'.repeat(40) }],
  redeployOf: null,
  status: 'waiting',
};

let replies: Array<{ url: string; message: SlackReply }>;
let logged: string[];

function deps(overrides: Partial<SlackDecisionDependencies> = {}): SlackDecisionDependencies {
  return {
    s3: new S3Client({}),
    sfn: new SFNClient({}),
    bucket: 'shop-artifacts',
    now: () => NOW,
    signingSecret: async () => SECRET,
    approvers: { U0BOB: 'bob@example.com', U0ALICE: 'alice@example.com' },
    reply: async (url, message) => {
      replies.push({ url, message });
      return { ok: true };
    },
    log: (line) => logged.push(line),
    ...overrides,
  };
}

function click(user: string, actionId = 'stepdeploy-approve', value = `production/${EXECUTION}`, extra = {}): string {
  const payload = {
    type: 'block_actions',
    user: { id: user, username: 'someone', team_id: 'T0001' },
    team: { id: 'T0001', domain: 'acme' },
    api_app_id: 'A0001',
    trigger_id: '1.2.3',
    response_url: RESPONSE_URL,
    container: { type: 'message', message_ts: '1.2' },
    message: {
      text: 'production: a deployment waits for approval',
      blocks: [
        { type: 'section', block_id: 'a', text: { type: 'mrkdwn', text: 'request' } },
        { type: 'actions', block_id: 'stepdeploy-approval', elements: [] },
      ],
    },
    actions: [{ type: 'button', action_id: actionId, block_id: 'stepdeploy-approval', value, action_ts: '1.3' }],
    ...extra,
  };
  return `payload=${encodeURIComponent(JSON.stringify(payload))}`;
}

function signed(body: string, timestamp = NOW_SECONDS, secret = SECRET) {
  const signature = `v0=${createHmac('sha256', secret).update(`v0:${timestamp}:${body}`).digest('hex')}`;
  return {
    method: 'POST',
    headers: { 'x-slack-request-timestamp': timestamp, 'x-slack-signature': signature },
    body: Buffer.from(body),
  };
}

beforeEach(() => {
  s3Mock.reset();
  sfnMock.reset();
  smMock.reset();
  s3Mock.on(PutObjectCommand).resolves({ ETag: '"e2"' });
  sfnMock.on(SendTaskSuccessCommand).resolves({});
  replies = [];
  logged = [];
});

describe('approve', () => {
  it('decides as the mapped identity, records "via Slack (<member id>)", and replaces the buttons with who approved', async () => {
    serveJsonObjects(s3Mock, { [KEY]: waiting });

    const response = await handleSlackAction(signed(click('U0BOB')), deps());

    expect(response).toEqual({ statusCode: 200, body: '' });
    const output = JSON.parse(sfnMock.commandCalls(SendTaskSuccessCommand)[0]!.args[0].input.output!);
    expect(output).toMatchObject({ approvedBy: 'bob@example.com via Slack (U0BOB)', comment: null });
    const written = JSON.parse(s3Mock.commandCalls(PutObjectCommand)[0]!.args[0].input.Body as string);
    expect(written).toMatchObject({ status: 'approved', decidedBy: 'bob@example.com via Slack (U0BOB)' });
    expect(replies).toEqual([
      {
        url: RESPONSE_URL,
        message: {
          replace_original: true,
          text: `:white_check_mark: Approved by bob@example.com (<@U0BOB>): ${EXECUTION} deploys to production now`,
          blocks: [
            { type: 'section', block_id: 'a', text: { type: 'mrkdwn', text: 'request' } },
            {
              type: 'section',
              text: {
                type: 'mrkdwn',
                text: `:white_check_mark: Approved by bob@example.com (<@U0BOB>): ${EXECUTION} deploys to production now`,
              },
            },
          ],
        },
      },
    ]);
    expect(JSON.stringify(replies)).not.toContain(TOKEN);
  });

  it('refuses self-approval by the mapped identity: an ephemeral reply with the rule, nothing sent', async () => {
    serveJsonObjects(s3Mock, { [KEY]: waiting });

    const response = await handleSlackAction(signed(click('U0ALICE')), deps());

    expect(response.statusCode).toBe(200);
    expect(sfnMock).not.toHaveReceivedCommand(SendTaskSuccessCommand);
    expect(s3Mock).not.toHaveReceivedCommand(PutObjectCommand);
    expect(replies).toHaveLength(1);
    expect(replies[0]!.message).toMatchObject({ response_type: 'ephemeral', replace_original: false });
    expect(replies[0]!.message.text).toContain('Not approved: alice@example.com requested');
    expect(replies[0]!.message.text).toContain('allowSelfApproval: false');
  });

  it('refuses a decision that no longer waits, with who decided it', async () => {
    serveJsonObjects(s3Mock, { [KEY]: { ...waiting, status: 'approved', decidedBy: 'carol' } });

    await handleSlackAction(signed(click('U0BOB')), deps());

    expect(sfnMock).not.toHaveReceivedCommand(SendTaskSuccessCommand);
    expect(replies[0]!.message.text).toContain(
      `Not approved: ${EXECUTION} no longer waits for approval: it was approved by carol`,
    );
  });
});

describe('who may click', () => {
  it.each(['U0MALLORY', '__proto__', 'constructor', 'toString'])(
    'an unmapped member (%p) gets a private reply and nothing happens',
    async (user) => {
      serveJsonObjects(s3Mock, { [KEY]: waiting });

      const response = await handleSlackAction(signed(click(user)), deps());

      expect(response.statusCode).toBe(200);
      expect(s3Mock).not.toHaveReceivedCommand(GetObjectCommand);
      expect(sfnMock).not.toHaveReceivedCommand(SendTaskSuccessCommand);
      expect(replies).toHaveLength(1);
      expect(replies[0]!.message).toMatchObject({ response_type: 'ephemeral', replace_original: false });
      expect(replies[0]!.message.text).toContain(
        'is not an approver of this pipeline (notifications.slack.approvers): nothing was done',
      );
    },
  );

  it('Reject answers privately with the command to run: a rejection needs a reason', async () => {
    const response = await handleSlackAction(signed(click('U0BOB', 'stepdeploy-reject')), deps());

    expect(response.statusCode).toBe(200);
    expect(sfnMock.calls()).toHaveLength(0);
    expect(replies[0]!.message).toMatchObject({ response_type: 'ephemeral' });
    expect(replies[0]!.message.text).toContain(`\`stepdeploy reject ${EXECUTION} --reason "<why>"\``);
  });

  it('refuses a click from another workspace when teamId is set', async () => {
    const response = await handleSlackAction(signed(click('U0BOB')), deps({ teamId: 'T0OTHER' }));

    expect(response.statusCode).toBe(403);
    expect(s3Mock.calls()).toHaveLength(0);
    expect(replies).toEqual([]);
  });

  it('acknowledges and ignores interactions that are not its buttons', async () => {
    const shortcut = await handleSlackAction(signed(click('U0BOB', 'other-app-button')), deps());
    const submission = await handleSlackAction(
      signed(click('U0BOB', 'stepdeploy-approve', undefined, { type: 'view_submission' })),
      deps(),
    );

    expect([shortcut.statusCode, submission.statusCode]).toEqual([200, 200]);
    expect(s3Mock.calls()).toHaveLength(0);
    expect(replies).toEqual([]);
  });
});

describe('hostile input stays data', () => {
  it.each([
    `production/${EXECUTION}; rm -rf /`,
    `production/$(touch /tmp/pwned)`,
    `../../production/${EXECUTION}`,
    `production/${EXECUTION}/../other`,
    'production',
    `Production/${EXECUTION}`,
  ])('refuses the button value %p before reading anything', async (value) => {
    const response = await handleSlackAction(signed(click('U0BOB', 'stepdeploy-approve', value)), deps());

    expect(response).toEqual({
      statusCode: 400,
      body: JSON.stringify({ message: 'the button value is not <environment>/<execution>' }),
    });
    expect(s3Mock.calls()).toHaveLength(0);
  });

  it('shows a hostile member id as escaped text, never as markup', async () => {
    await handleSlackAction(signed(click('<!channel> & <https://evil|x>')), deps());

    expect(replies[0]!.message.text).toContain('"&lt;!channel&gt; &amp; &lt;https://evil|x&gt;" is not an approver');
    expect(replies[0]!.message.text).not.toContain('<!channel>');
  });

  it('refuses a body that is not a Slack interaction', async () => {
    for (const body of ['payload=not-json', 'token=x', `payload=${encodeURIComponent('{"type":"block_actions"}')}`]) {
      expect((await handleSlackAction(signed(body), deps())).statusCode).toBe(400);
    }
  });
});

describe('verification comes first', () => {
  it('refuses a wrong signature with 401, reading the secret again once (a regenerated one)', async () => {
    let reads = 0;
    const signingSecret = async (read?: { fresh?: boolean }) => {
      reads += read?.fresh ? 1 : 0;
      return SECRET;
    };

    const response = await handleSlackAction(
      signed(click('U0BOB'), NOW_SECONDS, 'another-secret'),
      deps({ signingSecret }),
    );

    expect(response).toEqual({
      statusCode: 401,
      body: JSON.stringify({ message: 'X-Slack-Signature does not match the body and timestamp' }),
    });
    expect(reads).toBe(1);
    expect(s3Mock.calls()).toHaveLength(0);
    expect(replies).toEqual([]);
  });

  it('accepts a request signed with a regenerated secret once Secrets Manager has it', async () => {
    smMock.on(GetSecretValueCommand).resolvesOnce({ SecretString: 'old-secret' }).resolves({ SecretString: SECRET });
    let clock = 0;
    const signingSecret = cachedSecret(new SecretsManagerClient({}), 'acme/slack-signing', {
      what: 'the Slack signing secret',
      expected: 'a secret string',
      parse: (value) => value || undefined,
      error: (message) => new Error(message),
      now: () => clock,
    });
    serveJsonObjects(s3Mock, { [KEY]: waiting });
    await signingSecret();
    clock = 60_000;

    const response = await handleSlackAction(signed(click('U0BOB')), deps({ signingSecret }));

    expect(response.statusCode).toBe(200);
    expect(smMock).toHaveReceivedCommandTimes(GetSecretValueCommand, 2);
    expect(sfnMock).toHaveReceivedCommandTimes(SendTaskSuccessCommand, 1);
  });

  it('refuses a timestamp more than 300 s away, and an old request replayed, without reading the secret', async () => {
    const signingSecret = jest.fn(async () => SECRET);
    const old = String(Number(NOW_SECONDS) - 301);

    const replayed = await handleSlackAction(signed(click('U0BOB'), old), deps({ signingSecret }));
    const ahead = await handleSlackAction(
      signed(click('U0BOB'), String(Number(NOW_SECONDS) + 301)),
      deps({ signingSecret }),
    );

    expect([replayed.statusCode, ahead.statusCode]).toEqual([401, 401]);
    expect(replayed.body).toContain('is 301 s from now, more than 300 s');
    expect(signingSecret).not.toHaveBeenCalled();
    expect(s3Mock.calls()).toHaveLength(0);
  });

  it('refuses an oversized body and other methods before anything else', async () => {
    const signingSecret = jest.fn(async () => SECRET);
    const big = signed(`payload=${'x'.repeat(MAX_SLACK_BODY_BYTES)}`);

    expect((await handleSlackAction(big, deps({ signingSecret }))).statusCode).toBe(413);
    expect(
      (await handleSlackAction({ ...signed(click('U0BOB')), method: 'GET' }, deps({ signingSecret }))).statusCode,
    ).toBe(405);
    expect(signingSecret).not.toHaveBeenCalled();
  });
});

describe('replies', () => {
  it('go to Slack response URLs only', async () => {
    expect(isSlackResponseUrl(new URL(RESPONSE_URL))).toBe(true);
    for (const url of [
      'http://hooks.slack.com/x',
      'https://hooks.slack.com.evil.example/x',
      'https://hooks.slack.com:8443/x',
      'https://169.254.169.254/latest',
    ])
      expect(isSlackResponseUrl(new URL(url))).toBe(false);
    const result = await replyPoster()('https://169.254.169.254/latest', { text: 'x', blocks: [] });
    expect(result).toEqual({
      ok: false,
      reason: 'the response_url is not a Slack response URL (https://hooks.slack.com/...)',
    });
  });

  it('a reply that fails is logged without its URL; the decision stands', async () => {
    serveJsonObjects(s3Mock, { [KEY]: waiting });

    const response = await handleSlackAction(
      signed(click('U0BOB')),
      deps({ reply: async () => ({ ok: false, reason: 'Slack answered HTTP 404' }) }),
    );

    expect(response.statusCode).toBe(200);
    expect(sfnMock).toHaveReceivedCommandTimes(SendTaskSuccessCommand, 1);
    expect(logged).toContain('slack-decision: the reply was not delivered: Slack answered HTTP 404');
    expect(logged.join('\n')).not.toContain(RESPONSE_URL);
  });
});

describe('button values', () => {
  it('name an execution by name or ARN', () => {
    expect(parseButtonValue(`production/${EXECUTION}`)).toEqual({ environment: 'production', execution: EXECUTION });
    expect(parseButtonValue(`production/arn:aws:states:eu-west-1:111111111111:execution:shop:${EXECUTION}`)).toEqual({
      environment: 'production',
      execution: EXECUTION,
    });
  });
});
