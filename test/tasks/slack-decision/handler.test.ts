import { createHmac } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetObjectCommand, NoSuchKey, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SendTaskSuccessCommand, SFNClient } from '@aws-sdk/client-sfn';
import { mockClient } from 'aws-sdk-client-mock';
import 'aws-sdk-client-mock-jest';
import { parse, stringify } from 'yaml';
import { PROJECT_ROOT } from '../../../infra/task-function';
import { createHandler } from '../../../tasks/slack-decision/handler';

const s3Mock = mockClient(S3Client);
const sfnMock = mockClient(SFNClient);
const secretsMock = mockClient(SecretsManagerClient);
const SECRET = 'the-slack-signing-secret';
const EXECUTION = 'production-20261207T235000-aaaaaa';
const dir = mkdtempSync(join(tmpdir(), 'stepdeploy-slack-decision-'));

function configFile(name: string, slack: Record<string, unknown>): string {
  const raw = parse(readFileSync(join(PROJECT_ROOT, 'stepdeploy.config.yml'), 'utf8'));
  raw.notifications.slack = { ...raw.notifications.slack, ...slack };
  const path = join(dir, name);
  writeFileSync(path, stringify(raw));
  return path;
}

const env = {
  STEPDEPLOY_CONFIG_PATH: configFile('buttons.yml', {
    signingSecretName: 'acme/slack-signing',
    approvers: { U0BOB: 'bob@example.com' },
  }),
  ARTIFACT_BUCKET: 'shop-artifacts',
  AWS_REGION: 'eu-west-1',
};

/** A click as the function URL hands it over: form body base64-encoded, header names as sent. */
function functionUrlEvent(user: string, secret = SECRET) {
  const body = `payload=${encodeURIComponent(
    JSON.stringify({
      type: 'block_actions',
      user: { id: user },
      team: { id: 'T0001' },
      actions: [{ action_id: 'stepdeploy-approve', value: `production/${EXECUTION}` }],
    }),
  )}`;
  const timestamp = String(Math.floor(Date.now() / 1000));
  return {
    version: '2.0',
    rawPath: '/',
    headers: {
      'Content-Type': 'application/x-www-form-urlencoded',
      'X-Slack-Request-Timestamp': timestamp,
      'X-Slack-Signature': `v0=${createHmac('sha256', secret).update(`v0:${timestamp}:${body}`).digest('hex')}`,
    },
    body: Buffer.from(body).toString('base64'),
    isBase64Encoded: true,
    requestContext: { http: { method: 'POST', path: '/' } },
  };
}

afterAll(() => rmSync(dir, { recursive: true, force: true }));
beforeEach(() => {
  s3Mock.reset();
  sfnMock.reset();
  secretsMock.reset();
  secretsMock.on(GetSecretValueCommand, { SecretId: 'acme/slack-signing' }).resolves({ SecretString: SECRET });
  s3Mock.on(GetObjectCommand).callsFake((input: { Key: string }) => {
    if (input.Key !== `approvals/production/${EXECUTION}.json`)
      throw new NoSuchKey({ message: 'The specified key does not exist.', $metadata: {} });
    const record = {
      environment: 'production',
      execution: EXECUTION,
      startedAt: '2026-12-07T23:50:00.000Z',
      taskToken: 't',
      requestedBy: 'alice',
      allowSelfApproval: false,
      status: 'waiting',
    };
    return { ETag: '"e1"', Body: { transformToString: async () => JSON.stringify(record) } };
  });
  s3Mock.on(PutObjectCommand).resolves({ ETag: '"e2"' });
  sfnMock.on(SendTaskSuccessCommand).resolves({});
});

test('reads the signing secret named in the bundled config once, checks the click, and decides', async () => {
  const handler = createHandler(env);

  const first = await handler(functionUrlEvent('U0BOB'));
  const second = await handler(functionUrlEvent('U0BOB'));

  expect([first.statusCode, second.statusCode]).toEqual([200, 200]);
  expect(secretsMock).toHaveReceivedCommandTimes(GetSecretValueCommand, 1);
  expect(secretsMock).toHaveReceivedCommandWith(GetSecretValueCommand, { SecretId: 'acme/slack-signing' });
  expect(sfnMock).toHaveReceivedCommandWith(SendTaskSuccessCommand, { taskToken: 't' });
});

test('a wrong signature answers 401 before any read; forged requests do not make it read the secret again and again', async () => {
  const handler = createHandler(env);

  const answers = [
    await handler(functionUrlEvent('U0BOB', 'forged')),
    await handler(functionUrlEvent('U0BOB', 'forged')),
  ];

  expect(answers.map((a) => a.statusCode)).toEqual([401, 401]);
  // Read once; a fresh read after a mismatch waits 10 s from the last one (tasks/shared/secret.ts).
  expect(secretsMock).toHaveReceivedCommandTimes(GetSecretValueCommand, 1);
  expect(s3Mock).not.toHaveReceivedCommand(GetObjectCommand);
});

test('a secret that cannot be read fails the invocation naming the secret, never a value', async () => {
  secretsMock.on(GetSecretValueCommand).rejects(Object.assign(new Error('denied'), { name: 'AccessDeniedException' }));

  await expect(createHandler(env)(functionUrlEvent('U0BOB'))).rejects.toThrow(
    'cannot read the Slack signing secret acme/slack-signing: AccessDeniedException',
  );
});

test('fails at once on a bundled config without the Slack button settings, and on a non-URL event', async () => {
  expect(() => createHandler({ ...env, STEPDEPLOY_CONFIG_PATH: configFile('plain.yml', {}) })).toThrow(
    'the bundled config has no notifications.slack.signingSecretName and approvers',
  );
  expect((await createHandler(env)({ hello: 'world' })).statusCode).toBe(400);
  expect(secretsMock).not.toHaveReceivedCommand(GetSecretValueCommand);
});
