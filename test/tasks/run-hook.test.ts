import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { HookConfig } from '../../shared/config';
import { HookFailedError } from '../../tasks/run-hook/errors';
import { handler } from '../../tasks/run-hook/handler';
import { runHook } from '../../tasks/run-hook/run-hook';
import { HOOK_TIME_BUDGET_SECONDS } from '../../shared/hook-time';
import { allStates, DEFINITION_PATH, type StateMachineDefinition } from '../../workflows/definition';

/** A real HTTP server on 127.0.0.1; `respond` decides each request's fate (or never answers). */
async function startServer(
  respond: (req: IncomingMessage, res: ServerResponse) => void,
): Promise<{ server: Server; url: string }> {
  const server = createServer(respond);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/health` };
}

async function stopServer(server: Server): Promise<void> {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

/** Answers the given statuses in turn, repeating the last one. */
function statuses(...codes: number[]) {
  const seen: string[] = [];
  const respond = (req: IncomingMessage, res: ServerResponse) => {
    seen.push(`${req.method} ${req.url}`);
    res.writeHead(codes[Math.min(seen.length - 1, codes.length - 1)]!).end('body');
  };
  return { respond, seen };
}

function hookFor(url: string, overrides: Partial<HookConfig> = {}): HookConfig {
  return {
    name: 'health',
    type: 'http',
    url,
    method: 'GET',
    expectStatus: 200,
    timeoutSeconds: 2,
    retries: 3,
    intervalSeconds: 5,
    ...overrides,
  };
}

const servers: Server[] = [];
async function serve(respond: (req: IncomingMessage, res: ServerResponse) => void): Promise<string> {
  const { server, url } = await startServer(respond);
  servers.push(server);
  return url;
}
afterEach(async () => {
  await Promise.all(servers.splice(0).map(stopServer));
});

describe('runHook', () => {
  let sleeps: number[];
  const sleep = async (ms: number) => {
    sleeps.push(ms);
  };
  beforeEach(() => {
    sleeps = [];
  });

  test('succeeds on the first attempt when the URL answers the expected status', async () => {
    const { respond, seen } = statuses(200);
    const url = await serve(respond);

    const result = await runHook(hookFor(url), { fetch, sleep });

    expect(result).toEqual({ name: 'health', status: 200, attempts: 1, durationMs: expect.any(Number) });
    expect(seen).toEqual(['GET /health']);
    expect(sleeps).toEqual([]);
  });

  test('retries a wrong status after the interval, then succeeds', async () => {
    const { respond, seen } = statuses(503, 502, 204);
    const url = await serve(respond);

    const result = await runHook(hookFor(url, { expectStatus: 204, method: 'HEAD' }), { fetch, sleep });

    expect(result).toMatchObject({ status: 204, attempts: 3 });
    expect(seen).toEqual(['HEAD /health', 'HEAD /health', 'HEAD /health']);
    expect(sleeps).toEqual([5000, 5000]);
  });

  test('does not follow a redirect: its status is what is compared', async () => {
    const url = await serve((_req, res) => res.writeHead(302, { location: '/login' }).end());

    const result = await runHook(hookFor(url, { expectStatus: 302, retries: 0 }), { fetch, sleep });

    expect(result).toMatchObject({ status: 302, attempts: 1 });
  });

  test('fails with HookFailedError naming the hook, URL, expected and last status and attempts', async () => {
    const { respond, seen } = statuses(500, 503);
    const url = await serve(respond);

    const run = runHook(hookFor(url, { retries: 2, intervalSeconds: 1 }), { fetch, sleep });

    await expect(run).rejects.toThrow(HookFailedError);
    await expect(run).rejects.toMatchObject({
      name: 'HookFailedError',
      message: `hook "health" (GET ${url}) failed after 3 attempt(s): expected status 200, last attempt got 503`,
    });
    expect(seen).toHaveLength(3);
    expect(sleeps).toEqual([1000, 1000]);
  });

  test('fails with a timeout within the bound when the server never answers', async () => {
    const seen: number[] = [];
    const url = await serve(() => seen.push(Date.now()));
    const started = Date.now();

    const run = runHook(hookFor(url, { timeoutSeconds: 1, retries: 1 }), { fetch, sleep });

    await expect(run).rejects.toMatchObject({
      name: 'HookFailedError',
      message: `hook "health" (GET ${url}) failed after 2 attempt(s): expected status 200, last attempt timed out after 1s`,
    });
    const elapsed = Date.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(1900);
    // Two 1 s attempts; a third would show in `seen`. The upper bound only catches a hang, with slack for a loaded machine.
    expect(elapsed).toBeLessThan(15_000);
    expect(seen).toHaveLength(2);
  });

  test('retries a network error and names it', async () => {
    const url = await serve(() => undefined);
    await stopServer(servers.pop()!);

    const run = runHook(hookFor(url, { retries: 1 }), { fetch, sleep });

    await expect(run).rejects.toMatchObject({
      name: 'HookFailedError',
      message: expect.stringMatching(
        /failed after 2 attempt\(s\): expected status 200, last attempt network error: connect ECONNREFUSED 127\.0\.0\.1:\d+$/,
      ),
    });
    expect(sleeps).toEqual([5000]);
  });

  test('measures the duration with the clock it is given', async () => {
    let time = 1000;
    const url = await serve((_req, res) => {
      time = 1250;
      res.writeHead(200).end();
    });

    const result = await runHook(hookFor(url), { fetch, sleep, now: () => time });

    expect(result.durationMs).toBe(250);
  });

  test('gives up as HookFailedError when its time budget is spent, cutting the last attempt short', async () => {
    const url = await serve(() => undefined);
    const started = Date.now();

    const run = runHook(hookFor(url, { timeoutSeconds: 1, retries: 20, intervalSeconds: 0 }), {
      fetch,
      sleep,
      budgetMs: 2500,
    });

    await expect(run).rejects.toMatchObject({
      name: 'HookFailedError',
      message: expect.stringMatching(
        new RegExp(
          `^hook "health" \\(GET ${url.replace(/[.]/g, '\\.')}\\) gave up after 3 of 21 attempt\\(s\\), its time budget of 2\\.5s spent: expected status 200, last attempt timed out after 0\\.\\d+s$`,
        ),
      ),
    });
    expect(Date.now() - started).toBeLessThan(4000);
  });

  test('does not start a wait that would end past its budget (840 s by default)', async () => {
    const { respond, seen } = statuses(500);
    const url = await serve(respond);
    let time = 0;
    const clockSleep = async (ms: number) => {
      sleeps.push(ms);
      time += ms;
    };

    const run = runHook(hookFor(url, { retries: 3, intervalSeconds: 300 }), {
      fetch,
      sleep: clockSleep,
      now: () => time,
    });

    await expect(run).rejects.toMatchObject({
      name: 'HookFailedError',
      message: `hook "health" (GET ${url}) gave up after 3 of 4 attempt(s), its time budget of 840s spent: expected status 200, last attempt got 500`,
    });
    expect(sleeps).toEqual([300_000, 300_000]);
    expect(seen).toHaveLength(3);
  });
});

describe('the time budget of a hook', () => {
  test('fits in the RunHook Task (and so the Lambda, which infra sizes from it) with a margin', () => {
    const definition = JSON.parse(readFileSync(DEFINITION_PATH, 'utf8')) as StateMachineDefinition;
    const runHookState = allStates(definition).find(({ name }) => name === 'RunHook')!.state;

    expect(runHookState.TimeoutSeconds! - HOOK_TIME_BUDGET_SECONDS).toBeGreaterThanOrEqual(60);
  });
});

describe('handler', () => {
  test('runs the hook of the event the PostDeployHooks map sends', async () => {
    const { respond } = statuses(200);
    const url = await serve(respond);

    const result = await handler({ hook: hookFor(url), environment: 'acceptance', execution: 'e' });

    expect(result).toMatchObject({ name: 'health', status: 200, attempts: 1 });
  });

  test('gives up before the Lambda times out when the Lambda has less time left than the budget', async () => {
    const url = await serve(() => undefined);
    const started = Date.now();

    const run = handler(
      { hook: hookFor(url, { timeoutSeconds: 5, retries: 3 }), environment: 'acceptance', execution: 'e' },
      { getRemainingTimeInMillis: () => 11_500 },
    );

    await expect(run).rejects.toMatchObject({
      name: 'HookFailedError',
      message: expect.stringContaining('gave up after 1 of 4 attempt(s), its time budget of 1.5s spent'),
    });
    expect(Date.now() - started).toBeLessThan(3000);
  });

  test('fails with InvalidEventError for a hook the config schema would reject', async () => {
    const event = {
      hook: { ...hookFor('file:///etc/passwd'), retries: -1 },
      environment: 'acceptance',
      execution: 'e',
    };

    await expect(handler(event)).rejects.toMatchObject({
      name: 'InvalidEventError',
      message: expect.stringMatching(/hook\.url: must be an http\(s\) URL[\s\S]*hook\.retries:/),
    });
  });
});
