import { DescribeExecutionCommand, SFNClient } from '@aws-sdk/client-sfn';
import { mockClient } from 'aws-sdk-client-mock';
import { EventEmitter } from 'node:events';
import { request } from 'node:http';
import { runConsole } from '../../cli/commands/console';
import { ExitCode } from '../../cli/exit-codes';
import type { Target } from '../../cli/target';
import { capture } from '../helpers/io';

/** `stepdeploy console`: its own server on 127.0.0.1, the page and its script, Host checked, stops on a signal. */

const target = {
  kind: 'aws',
  description: 'AWS eu-west-1',
  pollMs: 2000,
} as unknown as Target;

function get(url: string, host?: string): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  const { hostname, port, pathname } = new URL(url);
  return new Promise((resolve, reject) => {
    request({ host: hostname, port, path: pathname, headers: host ? { host } : {} }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    })
      .on('error', reject)
      .end();
  });
}

it('serves the page and its bundled script on 127.0.0.1, refuses a foreign Host, and stops on SIGTERM', async () => {
  const io = capture();
  const signals = new EventEmitter();

  const running = runConsole(target, 'stepdeploy.config.yml', { port: 0, signals }, io);
  while (!io.stdout().includes('http://')) await new Promise((r) => setTimeout(r, 20));
  const url = /http:\/\/127\.0\.0\.1:\d+\//.exec(io.stdout())![0];

  const page = await get(url);
  expect(page.status).toBe(200);
  expect(page.body).toContain('<script src="/console/app.js"></script>');
  expect(page.headers['content-security-policy']).toContain("script-src 'self'");
  const script = await get(`${url}console/app.js`);
  expect(script.status).toBe(200);
  expect(script.body.length).toBeGreaterThan(10_000);
  expect((await get(url, 'attacker.example')).status).toBe(403);

  signals.emit('SIGTERM');
  expect(await running).toBe(ExitCode.Ok);
  expect(signals.listenerCount('SIGINT') + signals.listenerCount('SIGTERM')).toBe(0);
  expect(io.stdout()).toContain('stepdeploy console for AWS eu-west-1: http://127.0.0.1:');
});

/** A POST from the page: same origin, JSON. */
function post(url: string, path: string, body: unknown): Promise<{ status: number; body: string }> {
  const { hostname, port, host } = new URL(url);
  const text = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    request(
      {
        host: hostname,
        port,
        path,
        method: 'POST',
        headers: { origin: `http://${host}`, 'content-type': 'application/json', 'content-length': text.length },
      },
      (res) => {
        let answer = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (answer += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: answer }));
      },
    )
      .on('error', reject)
      .end(text);
  });
}

describe('approve and reject from the page, on AWS', () => {
  const APPROVAL_URL = 'https://abcdefghijklmnopqrstuvwxyz012345.lambda-url.eu-west-1.on.aws/';
  const ARN = 'arn:aws:states:eu-west-1:111111111111:execution:shop:production-20261129T031500-k3x9qa';
  const sfnMock = mockClient(SFNClient);
  const awsTarget = () =>
    ({
      ...target,
      sfn: new SFNClient({
        region: 'eu-west-1',
        credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY' },
      }),
      region: 'eu-west-1',
    }) as unknown as Target;

  beforeEach(() => {
    sfnMock.reset();
    sfnMock.on(DescribeExecutionCommand).resolves({ status: 'RUNNING', input: '{"environment":"production"}' });
  });
  afterEach(() => jest.restoreAllMocks());

  async function withConsole(run: (url: string) => Promise<void>): Promise<void> {
    const io = capture();
    const signals = new EventEmitter();
    const running = runConsole(
      awsTarget(),
      'stepdeploy.config.yml',
      { port: 0, approvalUrl: APPROVAL_URL, signals },
      io,
    );
    while (!io.stdout().includes('http://')) await new Promise((r) => setTimeout(r, 20));
    try {
      await run(/http:\/\/127\.0\.0\.1:\d+\//.exec(io.stdout())![0]);
    } finally {
      signals.emit('SIGTERM');
      await running;
    }
  }

  it("sends Approve to the approval function's URL signed with the console process's credentials (SigV4), as the CLI does", async () => {
    const fetchMock = jest.spyOn(globalThis, 'fetch').mockResolvedValue(
      new Response(JSON.stringify({ message: 'approved', decidedBy: 'arn:aws:iam::111111111111:user/bob' }), {
        status: 200,
      }),
    );

    await withConsole(async (url) => {
      const answer = await post(url, '/console/api/approve', { executionArn: ARN, comment: 'ok' });
      expect(answer.status).toBe(200);
      expect(JSON.parse(answer.body)).toEqual({ message: 'approved', decidedBy: 'arn:aws:iam::111111111111:user/bob' });
    });

    const [sentTo, init] = fetchMock.mock.calls[0]!;
    expect(String(sentTo)).toBe(APPROVAL_URL);
    expect((init!.headers as Record<string, string>).authorization).toMatch(
      /^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE\/\d{8}\/eu-west-1\/lambda\/aws4_request, /,
    );
    expect(JSON.parse(init!.body as string)).toEqual({
      action: 'approve',
      environment: 'production',
      execution: 'production-20261129T031500-k3x9qa',
      comment: 'ok',
    });
  });

  it("fails: Reject without a reason is refused before anything is sent; the function's refusal reaches the page as 409", async () => {
    const fetchMock = jest
      .spyOn(globalThis, 'fetch')
      .mockResolvedValue(new Response(JSON.stringify({ message: 'it no longer waits' }), { status: 409 }));

    await withConsole(async (url) => {
      const empty = await post(url, '/console/api/reject', { executionArn: ARN, reason: '  ' });
      expect({ status: empty.status, body: JSON.parse(empty.body) }).toEqual({
        status: 400,
        body: { error: 'reason is required' },
      });
      expect(fetchMock).not.toHaveBeenCalled();

      const refused = await post(url, '/console/api/reject', { executionArn: ARN, reason: 'freeze' });
      expect({ status: refused.status, body: JSON.parse(refused.body) }).toEqual({
        status: 409,
        body: { error: 'reject refused: it no longer waits' },
      });
    });
  });
});
