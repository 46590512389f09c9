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
