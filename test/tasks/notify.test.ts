import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { GetExecutionHistoryCommand, SFNClient, type HistoryEvent } from '@aws-sdk/client-sfn';
import { mockClient } from 'aws-sdk-client-mock';
import 'aws-sdk-client-mock-jest';
import {
  notifyEventSchema,
  type BuildStateChange,
  type ExecutionStatusChange,
} from '../../tasks/shared/eventbridge-events';
import { toLine, toSlack } from '../../tasks/notify/format';
import { createHandler } from '../../tasks/notify/handler';
import { historyLookup, summarize } from '../../tasks/notify/history';
import { consoleLink, describeBuild, describeExecution } from '../../tasks/notify/message';
import { notify } from '../../tasks/notify/notify';
import { webhookUrlFromSecret } from '../../tasks/notify/webhook';
import buildFailedFixture from './fixtures/build-failed.json';
import historyFixture from './fixtures/execution-history-failed.json';
import failedFixture from './fixtures/execution-failed.json';
import runningFixture from './fixtures/execution-running.json';
import succeededFixture from './fixtures/execution-succeeded.json';

const EXECUTION_ARN =
  'arn:aws:states:eu-west-1:111111111111:execution:stepdeploy-pipeline:acceptance-20250301T101500-k3x9qa';
const CONSOLE = `https://eu-west-1.console.aws.amazon.com/states/home?region=eu-west-1#/v2/executions/details/${EXECUTION_ARN}`;

const execution = (fixture: unknown) => notifyEventSchema.parse(fixture) as ExecutionStatusChange;
const build = (fixture: unknown) => notifyEventSchema.parse(fixture) as BuildStateChange;
/** JSON timestamps are strings where the SDK has Dates; summarize reads neither. */
const history = historyFixture as unknown as { events: HistoryEvent[] };

describe('messages from realistic events', () => {
  it('names environment, branch@shortsha per source, status, duration and the console link for a success', () => {
    const line = toLine(describeExecution(execution(succeededFixture)));

    expect(line).toBe(
      '[stepdeploy] acceptance: SUCCEEDED | app feature/cloudformationchange@a1b2c3d, config develop@0f1e2d3 | 4m 32s' +
        ` | execution acceptance-20250301T101500-k3x9qa | requested by jane | ${CONSOLE}`,
    );
    expect(consoleLink(EXECUTION_ARN)).toBe(CONSOLE);
  });

  it('names the failing state and the fetched commits from the execution history', () => {
    const summary = summarize(history.events);

    const n = describeExecution(execution(failedFixture), summary);

    expect(summary.lastState).toBe('BuildTemplates');
    expect(n).toMatchObject({ status: 'FAILED', step: 'BuildTemplates', durationMs: 188_877 });
    expect(toLine(n)).toContain(
      'acceptance: FAILED at BuildTemplates | app feature/cloudformationchange@a1b2c3d, config develop@0f1e2d3',
    );
    expect(n.error).toMatch(/^States\.TaskFailed: Build failed: .*exit status 1$/);
  });

  it("shows a Lambda task's errorMessage, not the JSON document Step Functions records as the cause", () => {
    const cause = JSON.stringify({
      errorType: 'SourceBranchNotFoundError',
      errorMessage: 'source app: branch "x" does not exist in repo',
      trace: ['at a', 'at b'],
    });
    const failed = execution({
      ...failedFixture,
      detail: { ...failedFixture.detail, error: 'SourceBranchNotFoundError', cause },
    });

    expect(describeExecution(failed).error).toBe(
      'SourceBranchNotFoundError: source app: branch "x" does not exist in repo',
    );
  });

  it('falls back to the requested branches when the history is not available', () => {
    const line = toLine(describeExecution(execution(failedFixture)));

    expect(line).toContain('acceptance: FAILED | config develop, app feature/cloudformationchange | 3m 09s');
  });

  it('says a deployment started, or was redriven', () => {
    expect(toLine(describeExecution(execution(runningFixture)))).toMatch(
      /^\[stepdeploy\] acceptance: RUNNING \| config develop, app /,
    );
    const redriven = { ...runningFixture, detail: { ...runningFixture.detail, redriveCount: 1 } };
    expect(describeExecution(execution(redriven)).status).toBe('REDRIVEN');
  });

  it('describes a failed build with its state, commits, failed phase and log link', () => {
    const n = describeBuild(build(buildFailedFixture));

    expect(n).toMatchObject({
      environment: 'acceptance',
      execution: 'acceptance-20250301T101500-k3x9qa',
      status: 'FAILED',
      step: 'BuildTemplates',
      durationMs: 125_000,
      sources: [
        { name: 'app', branch: 'feature/cloudformationchange', commit: 'a1b2c3d4e5f60718293a4b5c6d7e8f9012345678' },
        { name: 'config', branch: 'develop', commit: '0f1e2d3c4b5a69788796a5b4c3d2e1f001234567' },
      ],
      link: { label: 'Build logs', url: expect.stringContaining('logEvent:group=/aws/codebuild/stepdeploy-build') },
    });
    expect(n.error).toBe(
      'BUILD FAILED: COMMAND_EXECUTION_ERROR: Error while executing command: ./stepdeploy/build. Reason: exit status 1',
    );
  });

  it('tells a deploy build and a fetch build by the variables their states set', () => {
    const withVariables = (variables: Array<{ name: string; value: string }>) => {
      const event = structuredClone(buildFailedFixture);
      event.detail['additional-information'].environment['environment-variables'] = variables.map((v) => ({
        ...v,
        type: 'PLAINTEXT',
      }));
      return describeBuild(build(event));
    };

    expect(
      withVariables([
        { name: 'ENVIRONMENT', value: 'acceptance' },
        { name: 'STEPDEPLOY_DEPLOY_ROLE_ARN', value: 'arn' },
      ]).step,
    ).toBe('Deploy');
    expect(
      withVariables([
        { name: 'STEPDEPLOY_SOURCE', value: 'config' },
        { name: 'STEPDEPLOY_BRANCH', value: 'develop' },
      ]),
    ).toMatchObject({ step: 'FetchSource', sources: [{ name: 'config', branch: 'develop' }] });
  });

  it('builds a Slack message with escaped text and a link', () => {
    const n = { ...describeExecution(execution(succeededFixture)), requestedBy: 'ops <team> & co' };

    const message = toSlack(n);

    expect(message.text).toBe(':white_check_mark: acceptance: SUCCEEDED');
    const text = (message.blocks[0] as { text: { text: string } }).text.text;
    expect(text).toContain('requested by ops &lt;team&gt; &amp; co');
    expect(text).toContain(`<${CONSOLE}|Open in the Step Functions console>`);
  });
});

describe('which events notify', () => {
  const printed: string[] = [];
  const print = (line: string) => printed.push(line);
  beforeEach(() => printed.splice(0));

  it.each(['IN_PROGRESS', 'SUCCEEDED', 'STOPPED'])(
    'skips a %s build (the execution events cover it)',
    async (status) => {
      const event = { ...buildFailedFixture, detail: { ...buildFailedFixture.detail, 'build-status': status } };

      await expect(notify(build(event), { print })).resolves.toEqual({
        delivered: false,
        reason: `build status ${status} is not notified`,
      });
      expect(printed).toEqual([]);
    },
  );

  it('skips PENDING_REDRIVE (the RUNNING event that follows says it)', async () => {
    const event = { ...runningFixture, detail: { ...runningFixture.detail, status: 'PENDING_REDRIVE' } };

    await expect(notify(execution(event), { print })).resolves.toMatchObject({ delivered: false });
  });

  it('sends without the history when the lookup fails', async () => {
    const error = jest.spyOn(console, 'error').mockImplementation(() => undefined);
    const lookup = jest.fn().mockRejectedValue(Object.assign(new Error('denied'), { name: 'AccessDeniedException' }));

    const result = await notify(execution(failedFixture), { print, history: lookup });

    expect(result).toEqual({ delivered: true, via: 'stdout' });
    expect(lookup).toHaveBeenCalledWith(EXECUTION_ARN);
    expect(printed[0]).toContain('acceptance: FAILED | config develop');
    expect(error).toHaveBeenCalledWith(expect.stringContaining('AccessDeniedException'));
    error.mockRestore();
  });
});

const smMock = mockClient(SecretsManagerClient);
const sfnMock = mockClient(SFNClient);

describe('webhookUrlFromSecret', () => {
  const sm = new SecretsManagerClient({});
  beforeEach(() => smMock.reset());

  it('reads a plain URL or {"url"} and caches it until the TTL passes', async () => {
    let now = 0;
    smMock
      .on(GetSecretValueCommand)
      .resolvesOnce({ SecretString: 'https://hooks.slack.com/services/T/B/one' })
      .resolves({ SecretString: '{"url": "https://hooks.slack.com/services/T/B/two"}' });
    const url = webhookUrlFromSecret(sm, 'stepdeploy/slack', { ttlMs: 1000, now: () => now });

    expect(await url()).toBe('https://hooks.slack.com/services/T/B/one');
    now = 999;
    expect(await url()).toBe('https://hooks.slack.com/services/T/B/one');
    now = 1000;
    expect(await url()).toBe('https://hooks.slack.com/services/T/B/two');
    expect(smMock).toHaveReceivedCommandTimes(GetSecretValueCommand, 2);
    expect(smMock).toHaveReceivedCommandWith(GetSecretValueCommand, { SecretId: 'stepdeploy/slack' });
  });

  it('fails with a message that names the secret but not its value', async () => {
    smMock
      .on(GetSecretValueCommand)
      .resolves({ SecretString: '{"webhook": "https://hooks.slack.com/services/T/B/secret"}' });

    const read = webhookUrlFromSecret(sm, 'stepdeploy/slack')();

    await expect(read).rejects.toMatchObject({
      name: 'WebhookSecretError',
      message: expect.stringContaining('stepdeploy/slack'),
    });
    await expect(read).rejects.toMatchObject({ message: expect.not.stringContaining('secret"') });
  });
});

describe('historyLookup', () => {
  beforeEach(() => sfnMock.reset());

  it('reads at most three pages, newest first, when they do not tell where the execution stopped', async () => {
    sfnMock.on(GetExecutionHistoryCommand).resolves({ events: [], nextToken: 'more' });

    const summary = await historyLookup(new SFNClient({}))(EXECUTION_ARN);

    expect(summary).toEqual({});
    expect(sfnMock).toHaveReceivedCommandTimes(GetExecutionHistoryCommand, 3);
    expect(sfnMock).toHaveReceivedCommandWith(GetExecutionHistoryCommand, {
      executionArn: EXECUTION_ARN,
      reverseOrder: true,
    });
  });

  it('stops at the first page that tells both facts', async () => {
    sfnMock.on(GetExecutionHistoryCommand).resolves({ events: history.events, nextToken: 'more' });

    const summary = await historyLookup(new SFNClient({}))(EXECUTION_ARN);

    expect(summary.lastState).toBe('BuildTemplates');
    expect(summary.fetched).toBeDefined();
    expect(sfnMock).toHaveReceivedCommandTimes(GetExecutionHistoryCommand, 1);
  });
});

describe('handler', () => {
  let server: Server;
  let baseUrl: string;
  let received: Array<{ path: string; body: string }>;
  let errors: jest.SpyInstance;
  let logs: jest.SpyInstance;
  let secretCounter = 0;
  let secretName: string;
  let handler: ReturnType<typeof createHandler>;

  beforeAll(async () => {
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (chunk) => (body += chunk));
      req.on('end', () => {
        received.push({ path: req.url ?? '', body });
        if (req.url === '/ok') res.end('ok');
        else if (req.url === '/broken') res.writeHead(500).end('internal_error');
        // '/silent' never answers.
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  beforeEach(() => {
    smMock.reset();
    sfnMock.reset();
    received = [];
    errors = jest.spyOn(console, 'error').mockImplementation(() => undefined);
    logs = jest.spyOn(console, 'log').mockImplementation(() => undefined);
    // A function (a cold start) per test: each caches its secret's URL for the container's life.
    secretName = `stepdeploy/slack-${++secretCounter}`;
    handler = createHandler({ SLACK_WEBHOOK_SECRET_NAME: secretName });
  });
  afterEach(() => {
    errors.mockRestore();
    logs.mockRestore();
  });

  function webhookAt(path: string): string {
    const url = `${baseUrl}${path}`;
    smMock.on(GetSecretValueCommand).resolves({ SecretString: JSON.stringify({ url }) });
    return url;
  }

  it('posts the message to the webhook from Secrets Manager', async () => {
    webhookAt('/ok');

    const result = await handler(succeededFixture);

    expect(result).toEqual({ delivered: true, via: 'slack' });
    expect(smMock).toHaveReceivedCommandWith(GetSecretValueCommand, {
      SecretId: secretName,
    });
    expect(JSON.parse(received[0]!.body)).toMatchObject({ text: ':white_check_mark: acceptance: SUCCEEDED' });
  });

  it('reads the failing state from the execution history for a failed run', async () => {
    webhookAt('/ok');
    sfnMock.on(GetExecutionHistoryCommand).resolves(history as never);

    await handler(failedFixture);

    expect(sfnMock).toHaveReceivedCommandWith(GetExecutionHistoryCommand, {
      executionArn: EXECUTION_ARN,
      reverseOrder: true,
    });
    expect(JSON.parse(received[0]!.body).text).toBe(':x: acceptance: FAILED at BuildTemplates');
  });

  it('reports a Slack error without throwing and without logging the URL', async () => {
    const url = webhookAt('/broken');

    const result = await handler(succeededFixture);

    expect(result).toEqual({ delivered: false, reason: 'Slack answered HTTP 500' });
    expect(errors).toHaveBeenCalledWith(expect.stringContaining('HTTP 500'));
    expect(errors.mock.calls.flat().join('\n')).not.toContain(url);
  });

  it('gives up on a Slack that never answers within the 5 s bound, without throwing', async () => {
    webhookAt('/silent');
    const started = Date.now();

    const result = await handler(succeededFixture);

    // It waited the 5 s, and did not hang: the upper bound leaves a loaded machine 10 s of slack.
    expect(Date.now() - started).toBeGreaterThanOrEqual(4900);
    expect(Date.now() - started).toBeLessThan(15_000);
    expect(result).toEqual({ delivered: false, reason: 'Slack did not answer within 5000 ms' });
  });

  it('reports an unreadable secret without throwing', async () => {
    smMock.on(GetSecretValueCommand).rejects(Object.assign(new Error('no'), { name: 'ResourceNotFoundException' }));

    await expect(handler(succeededFixture)).resolves.toEqual({
      delivered: false,
      reason: 'the Slack webhook secret is unavailable',
    });
    expect(errors).toHaveBeenCalledWith(expect.stringContaining('ResourceNotFoundException'));
  });

  it('prints one line to stdout when no webhook secret is configured', async () => {
    handler = createHandler({});

    const result = await handler(buildFailedFixture);

    expect(result).toEqual({ delivered: true, via: 'stdout' });
    expect(logs).toHaveBeenCalledTimes(1);
    expect(logs.mock.calls[0]![0]).toMatch(
      /^\[stepdeploy\] acceptance: FAILED at BuildTemplates \| app feature\/cloudformationchange@a1b2c3d/,
    );
    expect(smMock).not.toHaveReceivedCommand(GetSecretValueCommand);
  });

  it('ignores an event it does not know, without throwing', async () => {
    await expect(
      handler({ 'detail-type': 'EC2 Instance State-change Notification', detail: {} }),
    ).resolves.toMatchObject({
      delivered: false,
    });
  });
});

describe('a Slack failure never shows the webhook URL', () => {
  /** The secret part of a webhook URL is its path: a leak shows it whole or in part. */
  const TOKEN = 'services/T000SECRET/B000SECRET/xoxSECRETtoken';
  let server: Server;
  let open: string;
  let closedPort: number;
  let output: jest.SpyInstance[];

  beforeAll(async () => {
    server = createServer((req, res) => {
      req.resume();
      if (req.url?.startsWith('/reset/')) req.socket.destroy();
      else if (req.url?.startsWith('/not-found/')) res.writeHead(404).end('no_service');
      // '/silent/' never answers.
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    open = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    // A port that was just listening and is now closed: connecting to it is refused.
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    closedPort = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });
  beforeEach(() => {
    output = (['log', 'info', 'warn', 'error', 'debug'] as const).map((method) =>
      jest.spyOn(console, method).mockImplementation(() => undefined),
    );
  });
  afterEach(() => {
    for (const spy of output) spy.mockRestore();
  });

  /** Everything the notifier said: its result and every console line. */
  function said(result: unknown): string {
    return [JSON.stringify(result), ...output.flatMap((spy) => spy.mock.calls.flat().map(String))].join('\n');
  }

  it.each([
    // 127.0.0.1 on a closed port: the connection is refused.
    ['refused', () => `http://127.0.0.1:${closedPort}/${TOKEN}`, 'the request to Slack failed (ECONNREFUSED)'],
    // A 64-character label is not a DNS name: the resolver rejects it without asking the network.
    ['a DNS failure', () => `https://${'h'.repeat(64)}.invalid/${TOKEN}`, 'the request to Slack failed (ENOTFOUND)'],
    ['a reset connection', () => `${open}/reset/${TOKEN}`, 'the request to Slack failed (UND_ERR_SOCKET)'],
    ['an unanswered request', () => `${open}/silent/${TOKEN}`, 'Slack did not answer within 300 ms'],
    ['HTTP 404', () => `${open}/not-found/${TOKEN}`, 'Slack answered HTTP 404'],
  ])('%s: reported, logged once, URL nowhere', async (_case, url, reason) => {
    const webhook = url();

    const result = await notify(execution(succeededFixture), { webhookUrl: async () => webhook, timeoutMs: 300 });

    expect(result).toEqual({ delivered: false, reason });
    const errors = output[3]!;
    expect(errors.mock.calls).toEqual([
      [`notify: Slack notification for acceptance-20250301T101500-k3x9qa not delivered: ${reason}`],
    ]);
    expect(said(result)).not.toContain(TOKEN.split('/')[2]);
  });

  it.each([
    ['a value with no URL', `see ${TOKEN}`],
    ['a URL with a space', `https://hooks.slack.com/${TOKEN} x`],
    ['a URL fetch cannot parse', `https://[hooks.slack.com/${TOKEN}`],
    ['JSON without "url"', JSON.stringify({ webhook: `https://hooks.slack.com/${TOKEN}` })],
    ['broken JSON', `{"url": "https://hooks.slack.com/${TOKEN}"`],
  ])('a secret holding %s: WebhookSecretError naming the secret, value nowhere', async (_case, value) => {
    smMock.reset();
    smMock.on(GetSecretValueCommand).resolves({ SecretString: value });
    const webhookUrl = webhookUrlFromSecret(new SecretsManagerClient({}), 'stepdeploy/slack');

    await expect(webhookUrl()).rejects.toMatchObject({
      name: 'WebhookSecretError',
      message:
        'the Slack webhook secret stepdeploy/slack holds neither a webhook URL nor JSON {"url": "https://hooks.slack.com/..."}',
    });
    const result = await notify(execution(succeededFixture), { webhookUrl });

    expect(result).toEqual({ delivered: false, reason: 'the Slack webhook secret is unavailable' });
    expect(said(result)).toContain('stepdeploy/slack holds neither');
    expect(said(result)).not.toContain(TOKEN.split('/')[2]);
  });
});
