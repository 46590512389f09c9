import { EventEmitter } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parse, stringify } from 'yaml';
import { ExitCode } from '../../cli/exit-codes';
import { capture, type Captured } from '../helpers/io';
import { endpointFile } from '../../cli/endpoint-file';
import { serveLocal } from '../../cli/local-serve';
import { runCli } from '../../cli/main';

/**
 * `local serve` in this process (test/cli/bin.test.ts runs the binary and sends real signals):
 * a `--local` command finds it and deploys through it, it prints the executions and their build
 * logs, and one signal stops it once, leaving no listener behind.
 */

const ROOT = resolve(__dirname, '..', '..');

let dir: string;
let configPath: string;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'stepdeploy-serve-'));
  const config = parse(readFileSync(join(ROOT, 'stepdeploy.config.yml'), 'utf8'));
  config.buildspecs = { build: join(ROOT, config.buildspecs.build), deploy: join(ROOT, config.buildspecs.deploy) };
  configPath = join(dir, 'stepdeploy.config.yml');
  writeFileSync(configPath, stringify(config));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

async function started(io: Captured): Promise<string> {
  for (let i = 0; !io.stdout().includes('Press Ctrl-C to stop.'); i++) {
    if (i > 600) throw new Error(`local serve did not start:\n${io.stdout()}`);
    await new Promise((tick) => setTimeout(tick, 100));
  }
  return /^stepdeploy local runtime on (http:\/\/127\.0\.0\.1:\d+) /m.exec(io.stdout())![1]!;
}

it('serves a --local deployment, prints its statuses and build logs, and stops on SIGTERM with no listener left', async () => {
  const signals = new EventEmitter();
  const served = capture();
  const serving = serveLocal({ configPath, port: 0, signals }, served);
  const endpoint = await started(served);
  const file = endpointFile(join(dir, '.stepdeploy'), 'stepdeploy-example');
  expect(JSON.parse(readFileSync(file, 'utf8'))).toMatchObject({ endpoint, pid: process.pid });
  expect(served.stdout()).toContain(
    `Slack Approve / Reject buttons (README "Approve from Slack"): ${endpoint}/slack/actions\n`,
  );

  const cli = capture();
  const code = await runCli(
    [
      'node',
      'stepdeploy',
      '--config',
      configPath,
      '--local',
      'start',
      '--env',
      'acceptance',
      '--name',
      'served-1',
      '--wait',
      '--interval',
      '0.1',
    ],
    cli,
  );

  // No "starting the local runtime in this process": the command went to the server.
  expect({ code, stderr: cli.stderr() }).toEqual({ code: ExitCode.Ok, stderr: '' });
  expect(served.stdout()).toContain('execution served-1: RUNNING\n');
  expect(served.stdout()).toContain('execution served-1: SUCCEEDED\n');
  expect(served.stdout()).toMatch(/^\[BuildTemplates\] /m);

  signals.emit('SIGTERM');
  await serving;

  expect(served.stdout()).toMatch(/stopping: running executions are stopped \(redrive them later\)\n$/);
  expect(existsSync(file)).toBe(false);
  expect([signals.listenerCount('SIGINT'), signals.listenerCount('SIGTERM')]).toEqual([0, 0]);
  await expect(fetch(endpoint)).rejects.toMatchObject({ cause: { code: 'ECONNREFUSED' } });
}, 180_000);

it('stops once when SIGINT and SIGTERM come together', async () => {
  const signals = new EventEmitter();
  const served = capture();
  const serving = serveLocal({ configPath, port: 0, signals }, served);
  await started(served);

  signals.emit('SIGINT');
  signals.emit('SIGTERM');
  await serving;

  expect(served.stdout().match(/stopping:/g)).toHaveLength(1);
  expect([signals.listenerCount('SIGINT'), signals.listenerCount('SIGTERM')]).toEqual([0, 0]);
}, 120_000);
