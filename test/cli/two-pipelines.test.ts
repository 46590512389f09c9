import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import {
  DescribeExecutionCommand,
  ExecutionDoesNotExist,
  GetExecutionHistoryCommand,
  ListExecutionsCommand,
  RedriveExecutionCommand,
  SFNClient,
  StateMachineDoesNotExist,
} from '@aws-sdk/client-sfn';
import { parse, stringify } from 'yaml';
import { ExitCode } from '../../cli/exit-codes';
import { capture, type Captured } from '../helpers/io';
import { runCli } from '../../cli/main';
import { ensureExampleRepositories } from '../../local/examples';
import { LOCAL_S3_CREDENTIALS } from '../../local/s3-client';

/**
 * Two pipelines' configs side by side in one folder (`shop.config.yml`, `billing.config.yml`),
 * sharing `.stepdeploy/`: each `local serve` is a real process, as a user runs them. Each
 * pipeline's executions are its own, as on AWS where each has its own state machine: listing,
 * describing, redriving, and a runtime's start and stop never see or touch the other's.
 */

const ROOT = resolve(__dirname, '..', '..');
const BIN = join(ROOT, 'cli', 'bin.js');
const ARN = (pipeline: string): string => `arn:aws:states:us-east-1:000000000000:stateMachine:${pipeline}`;
const EXECUTION = (pipeline: string, name: string): string =>
  `arn:aws:states:us-east-1:000000000000:execution:${pipeline}:${name}`;

let dir: string;
const serves: ChildProcessWithoutNullStreams[] = [];

async function cli(config: string, args: string[]): Promise<{ code: ExitCode; io: Captured }> {
  const io = capture();
  const code = await runCli(['node', 'stepdeploy', '--config', join(dir, config), '--local', ...args], io);
  return { code, io };
}

/** `stepdeploy local serve` in its own process; resolves with its endpoint once it listens. */
async function serve(
  config: string,
): Promise<{ child: ChildProcessWithoutNullStreams; endpoint: string; output: () => string }> {
  const child = spawn(process.execPath, [BIN, '--config', join(dir, config), 'local', 'serve', '--port', '0'], {
    cwd: dir,
    env: { ...process.env },
  });
  serves.push(child);
  let output = '';
  child.stderr.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  const endpoint = await new Promise<string>((done, fail) => {
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      const found = /stepdeploy local runtime on (http:\/\/127\.0\.0\.1:\d+)/.exec(output);
      if (found) done(found[1]!);
    });
    child.once('exit', (code) => fail(new Error(`local serve --config ${config} exited ${code}: ${output}`)));
  });
  return { child, endpoint, output: () => output };
}

async function stopServe(child: ChildProcessWithoutNullStreams): Promise<number | null> {
  const exited = new Promise<number | null>((done) => child.once('exit', (code) => done(code)));
  child.kill('SIGINT');
  return exited;
}

function sfnAt(endpoint: string): SFNClient {
  return new SFNClient({ endpoint, region: 'us-east-1', credentials: LOCAL_S3_CREDENTIALS, maxAttempts: 1 });
}

async function statusOf(sfn: SFNClient, executionArn: string): Promise<string | undefined> {
  return (await sfn.send(new DescribeExecutionCommand({ executionArn }))).status;
}

async function until(what: string, check: () => Promise<boolean>, ms = 60_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'stepdeploy-two-pipelines-'));
  ensureExampleRepositories(join(dir, '.stepdeploy', 'example-repos'));
  const example = parse(readFileSync(join(ROOT, 'stepdeploy.config.yml'), 'utf8'));
  // shop's template build waits for a file, so that one of its executions is RUNNING while billing's runtime starts and stops.
  writeFileSync(
    join(dir, 'gated-build.yml'),
    stringify({
      version: 0.2,
      env: { shell: 'bash' },
      phases: {
        build: {
          commands: [
            'while [ ! -e "$STEPDEPLOY_LOCAL_HOME/release-shop" ]; do sleep 0.1; done',
            './stepdeploy/build "$ENVIRONMENT"',
          ],
        },
      },
      artifacts: { files: ['**/*'] },
    }),
  );
  const deploy = join(ROOT, example.buildspecs.deploy);
  writeFileSync(
    join(dir, 'shop.config.yml'),
    stringify({ ...example, pipeline: 'shop', buildspecs: { build: 'gated-build.yml', deploy } }),
  );
  writeFileSync(
    join(dir, 'billing.config.yml'),
    stringify({ ...example, pipeline: 'billing', buildspecs: { build: join(ROOT, example.buildspecs.build), deploy } }),
  );
});

afterAll(async () => {
  for (const child of serves) if (child.exitCode === null && child.signalCode === null) await stopServe(child);
  rmSync(dir, { recursive: true, force: true });
});

it('each pipeline lists, describes, redrives and stops only its own executions', async () => {
  const shop = await serve('shop.config.yml');
  const started = await cli('shop.config.yml', ['start', '--env', 'acceptance', '--name', 'shop-1']);
  expect(started.io.stderr()).toBe('');
  expect(started.code).toBe(ExitCode.Ok);
  const shopSfn = sfnAt(shop.endpoint);
  const shop1 = EXECUTION('shop', 'shop-1');
  await until('shop-1 to reach BuildTemplates', async () => {
    const { events } = await shopSfn.send(new GetExecutionHistoryCommand({ executionArn: shop1 }));
    return (events ?? []).some((e) => e.stateEnteredEventDetails?.name === 'BuildTemplates');
  });

  // A second pipeline's runtime starting in the same folder must not take shop-1 for its own orphan.
  const billing = await serve('billing.config.yml');
  const billingSfn = sfnAt(billing.endpoint);
  expect(await statusOf(shopSfn, shop1)).toBe('RUNNING');

  const deployed = await cli('billing.config.yml', [
    'start',
    '--env',
    'acceptance',
    '--name',
    'billing-1',
    '--wait',
    '--interval',
    '0.1',
  ]);
  expect(deployed.code).toBe(ExitCode.Ok);

  // The local API, as `aws stepfunctions list-executions --state-machine-arn` calls it.
  const shopList = await shopSfn.send(new ListExecutionsCommand({ stateMachineArn: ARN('shop') }));
  expect(shopList.executions?.map((e) => [e.name, e.status])).toEqual([['shop-1', 'RUNNING']]);
  const billingList = await billingSfn.send(new ListExecutionsCommand({ stateMachineArn: ARN('billing') }));
  expect(billingList.executions?.map((e) => [e.name, e.status])).toEqual([['billing-1', 'SUCCEEDED']]);
  await expect(shopSfn.send(new ListExecutionsCommand({ stateMachineArn: ARN('billing') }))).rejects.toBeInstanceOf(
    StateMachineDoesNotExist,
  );
  await expect(billingSfn.send(new DescribeExecutionCommand({ executionArn: shop1 }))).rejects.toBeInstanceOf(
    ExecutionDoesNotExist,
  );
  await expect(billingSfn.send(new RedriveExecutionCommand({ executionArn: shop1 }))).rejects.toBeInstanceOf(
    ExecutionDoesNotExist,
  );

  // The CLI finds each config's own `local serve`.
  for (const [config, expected] of [
    ['billing.config.yml', [{ name: 'billing-1', status: 'SUCCEEDED' }]],
    ['shop.config.yml', [{ name: 'shop-1', status: 'RUNNING' }]],
  ] as const) {
    const listed = await cli(config, ['executions', '--json']);
    expect(listed.io.stderr()).toBe('');
    expect(listed.code).toBe(ExitCode.Ok);
    expect(
      JSON.parse(listed.io.stdout()).map((e: { name: string; status: string }) => ({ name: e.name, status: e.status })),
    ).toEqual(expected);
  }

  // Stopping billing's runtime stops its running executions only.
  expect(await stopServe(billing.child)).toBe(0);
  expect(await statusOf(shopSfn, shop1)).toBe('RUNNING');

  writeFileSync(join(dir, '.stepdeploy', 'release-shop'), '');
  await until('shop-1 to succeed', async () => (await statusOf(shopSfn, shop1)) === 'SUCCEEDED');
  expect(await stopServe(shop.child)).toBe(0);
  expect(shop.output()).not.toContain('billing-1');
});
