import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { ExecutionAlreadyExists, SFNClient, StartExecutionCommand } from '@aws-sdk/client-sfn';
import { mockClient } from 'aws-sdk-client-mock';
import { createHandler } from '../../tasks/receive-push/handler';
import { COMMIT, githubPush, rawConfig, SECRET, signed } from './receive-push/fixtures';

const sfnMock = mockClient(SFNClient);
const secretsMock = mockClient(SecretsManagerClient);
const STATE_MACHINE_ARN = 'arn:aws:states:eu-west-1:999999999999:stateMachine:shop';
const dir = mkdtempSync(join(tmpdir(), 'stepdeploy-receiver-'));
writeFileSync(join(dir, 'stepdeploy.config.yml'), JSON.stringify(rawConfig));

/** One function for the file (one cold start): it reads its config and environment when made. */
let loaded: { handler: ReturnType<typeof createHandler> } | undefined;
function loadHandler(): { handler: ReturnType<typeof createHandler> } {
  loaded ??= {
    handler: createHandler({
      STEPDEPLOY_CONFIG_PATH: join(dir, 'stepdeploy.config.yml'),
      STATE_MACHINE_ARN,
      WEBHOOK_SECRET_NAMES: JSON.stringify({ github: 'shop/webhook/github' }),
    }),
  };
  return loaded;
}

function functionUrlEvent(request: ReturnType<typeof signed>, base64 = false) {
  return {
    version: '2.0',
    rawPath: request.path,
    rawQueryString: '',
    headers: Object.fromEntries(Object.entries(request.headers).map(([k, v]) => [k.replace(/^x-/, 'X-'), v])),
    body: request.body.toString(base64 ? 'base64' : 'utf8'),
    isBase64Encoded: base64,
    requestContext: { http: { method: request.method, path: request.path } },
  };
}

afterAll(() => rmSync(dir, { recursive: true, force: true }));
beforeEach(() => {
  sfnMock.reset();
  secretsMock.reset();
  secretsMock.on(GetSecretValueCommand, { SecretId: 'shop/webhook/github' }).resolves({ SecretString: SECRET });
});

test('a function URL request: the secret from Secrets Manager, StartExecution on the state machine', async () => {
  sfnMock.on(StartExecutionCommand).resolves({ executionArn: `${STATE_MACHINE_ARN}:x`, startDate: new Date() });
  const { handler } = loadHandler();

  const response = (await handler(functionUrlEvent(signed('github', githubPush()), true))) as {
    statusCode: number;
    body: string;
  };

  expect(response.statusCode).toBe(200);
  // Read once per container (cached): the first test's cold start reads it.
  expect(secretsMock).toHaveReceivedCommandWith(GetSecretValueCommand, { SecretId: 'shop/webhook/github' });
  const call = sfnMock.commandCalls(StartExecutionCommand)[0]!.args[0].input;
  expect(call.stateMachineArn).toBe(STATE_MACHINE_ARN);
  expect(call.name).toMatch(/^acceptance-0123456-[0-9a-f]{12}$/);
  expect(JSON.parse(call.input!)).toEqual({
    environment: 'acceptance',
    branches: { app: 'feature/login' },
    commits: { app: COMMIT },
    requestedBy: 'push by alice (github)',
  });
});

test('ExecutionAlreadyExists (a redelivery) is an answer, not a failure', async () => {
  sfnMock.on(StartExecutionCommand).rejects(new ExecutionAlreadyExists({ message: 'exists', $metadata: {} }));
  const { handler } = loadHandler();

  const response = (await handler(functionUrlEvent(signed('github', githubPush())))) as {
    statusCode: number;
    body: string;
  };

  expect(response.statusCode).toBe(200);
  expect(JSON.parse(response.body).alreadyStarted).toHaveLength(1);
});

test('a throttled StartExecution answers 500, so the provider retries with the same delivery', async () => {
  sfnMock.on(StartExecutionCommand).rejects(Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException' }));
  const { handler } = loadHandler();

  const response = (await handler(functionUrlEvent(signed('github', githubPush())))) as { statusCode: number };

  expect(response.statusCode).toBe(500);
});

test('a provider without a secret name: 404, Secrets Manager not asked', async () => {
  const { handler } = loadHandler();

  const response = (await handler(functionUrlEvent(signed('gitlab', {})))) as { statusCode: number };

  expect(response.statusCode).toBe(404);
  expect(secretsMock.commandCalls(GetSecretValueCommand)).toHaveLength(0);
  expect(sfnMock.commandCalls(StartExecutionCommand)).toHaveLength(0);
});

test('a forged request: 401, nothing started', async () => {
  const { handler } = loadHandler();

  const response = (await handler(functionUrlEvent(signed('github', githubPush(), {}, 'guessed')))) as {
    statusCode: number;
  };

  expect(response.statusCode).toBe(401);
  expect(sfnMock.commandCalls(StartExecutionCommand)).toHaveLength(0);
});

test('a CodeCommit EventBridge event takes the same path, without a signature', async () => {
  sfnMock.on(StartExecutionCommand).resolves({ executionArn: `${STATE_MACHINE_ARN}:x`, startDate: new Date() });
  const { handler } = loadHandler();

  await handler({
    version: '0',
    id: 'e-1',
    'detail-type': 'CodeCommit Repository State Change',
    source: 'aws.codecommit',
    account: '999999999999',
    time: '2026-12-07T10:00:00Z',
    region: 'eu-west-1',
    resources: ['arn:aws:codecommit:eu-west-1:999999999999:infra'],
    detail: {
      event: 'referenceCreated',
      repositoryName: 'infra',
      referenceType: 'branch',
      referenceFullName: 'refs/heads/x',
      referenceName: 'x',
      commitId: COMMIT,
    },
  });

  expect(JSON.parse(sfnMock.commandCalls(StartExecutionCommand)[0]!.args[0].input.input!)).toMatchObject({
    environment: 'acceptance',
    branches: { infra: 'x' },
  });
});
