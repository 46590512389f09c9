import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { ExitCode } from '../../cli/exit-codes';
import { capture, type Captured } from '../helpers/io';
import { endpointFile } from '../../cli/endpoint-file';
import { runCli } from '../../cli/main';
import { startExampleRuntime, type TestRuntime } from '../helpers/local-runtime';

/**
 * End to end: the CLI against the real local runtime on the bundled example (real git, real bash
 * builds, real S3 protocol), through its endpoint, with the same SDK clients it uses on AWS.
 */

let rt: TestRuntime;
let configPath: string;

async function cli(
  args: string[],
  io: Captured = capture(),
  target: string[] = ['--endpoint-url', rt.runtime.endpoint],
): Promise<{ code: ExitCode; io: Captured }> {
  const code = await runCli(['node', 'stepdeploy', '--config', configPath, ...target, ...args], io);
  return { code, io };
}

beforeAll(async () => {
  // Notifications would print to the test output; the CLI view is what is under test.
  rt = await startExampleRuntime(undefined, { notify: async () => undefined });
  configPath = join(rt.dir, 'stepdeploy.config.yml');
});

afterAll(async () => {
  await rt.close();
});

it('start --wait deploys acceptance from develop and shows the graph', async () => {
  const { code, io } = await cli([
    'start',
    '--env',
    'acceptance',
    '--branch',
    'app=develop',
    '--name',
    'cli-ok',
    '--wait',
    '--interval',
    '0.1',
  ]);

  expect(io.stderr()).toBe('');
  expect(code).toBe(ExitCode.Ok);
  const out = io.stdout();
  expect(out).toContain('arn:aws:states:us-east-1:000000000000:execution:stepdeploy-example:cli-ok');
  expect(out).toContain('execution cli-ok  SUCCEEDED');
  for (const state of [
    'ValidateInput',
    'FetchSources',
    'CombineConfigAndCode',
    'BuildTemplates',
    'Deploy',
    'PostDeployHooks',
    'RecordDeployment',
  ]) {
    expect(out).toMatch(new RegExp(`✓ ${state}\\s+succeeded`));
  }
  expect(out).toMatch(/✓ app @ develop\s+succeeded/);
  expect(out).toMatch(/✓ config @ main\s+succeeded/);
});

it('start fails before any execution when the branch policy forbids the branch', async () => {
  const before = rt.runtime.machine.list().length;

  const { code, io } = await cli(['start', '--env', 'production', '--branch', 'app=feature/x']);

  expect(code).toBe(ExitCode.Usage);
  expect(io.stderr()).toContain('branches.app: "feature/x" is not allowed in production; allowed: main');
  expect(rt.runtime.machine.list()).toHaveLength(before);
});

it('executions --json lists the execution', async () => {
  const { code, io } = await cli(['executions', '--json']);

  expect(code).toBe(ExitCode.Ok);
  expect(JSON.parse(io.stdout())).toContainEqual(
    expect.objectContaining({
      name: 'cli-ok',
      status: 'SUCCEEDED',
      environment: 'acceptance',
      branches: { app: 'develop', config: 'main' },
    }),
  );
});

it('status shows the commits deployed to acceptance', async () => {
  const { code, io } = await cli(['status']);

  expect(code).toBe(ExitCode.Ok);
  const lines = io.stdout().split('\n');
  expect(lines[0]).toMatch(/^acceptance\s+deployed .* by execution cli-ok/);
  expect(lines[1]).toMatch(/^ {2}app\s+develop\s+[0-9a-f]{40}$/);
  expect(lines[2]).toMatch(/^ {2}config\s+main\s+[0-9a-f]{40}$/);
  expect(io.stdout()).toMatch(/production\s+nothing deployed yet/);
});

it('logs --follow prints the build logs of a running execution as they are written, until it ends', async () => {
  const started = await cli(['start', '--env', 'acceptance', '--name', 'cli-follow']);
  expect(started.code).toBe(ExitCode.Ok);

  const { code, io } = await cli(['logs', 'cli-follow', '--follow', '--interval', '0.1']);

  expect(code).toBe(ExitCode.Ok);
  // Every build's whole log, the deploy build's last line included, then the end.
  expect(rt.runtime.machine.describe(rt.runtime.machine.executionArn('cli-follow')).status).toBe('SUCCEEDED');
  const out = io.stdout();
  expect(out).toMatch(/== BuildTemplates: build stepdeploy-example-build:\S+ (IN_PROGRESS|SUCCEEDED) ==/);
  expect(out).toMatch(/== Deploy: build stepdeploy-example-deploy:\S+ (IN_PROGRESS|SUCCEEDED) ==/);
  expect(out).toMatch(/\[Container\] .* Build stepdeploy-example-deploy:\S+ SUCCEEDED\n$/);
});

it('a failing build ends the execution FAILED; logs shows the build log; redrive completes it', async () => {
  const failBuild = join(rt.runtime.home, 'fail-build');
  writeFileSync(failBuild, '');
  const failed = await cli(['start', '--env', 'acceptance', '--name', 'cli-fail', '--wait', '--interval', '0.1']);
  rmSync(failBuild);

  expect(failed.code).toBe(ExitCode.ExecutionFailed);
  expect(failed.io.stdout()).toMatch(/✗ BuildTemplates\s+failed/);
  expect(failed.io.stderr()).toContain(
    'execution cli-fail FAILED at BuildTemplates: States.TaskFailed: build FAILED in BUILD',
  );
  expect(failed.io.stderr()).toContain('stepdeploy redrive cli-fail');

  const logs = await cli(['logs', 'cli-fail', '--state', 'BuildTemplates']);
  expect(logs.code).toBe(ExitCode.Ok);
  expect(logs.io.stdout()).toMatch(/== BuildTemplates: build stepdeploy-example-build:\S+ FAILED ==/);
  expect(logs.io.stdout()).toContain('the example build fails on purpose');

  const redriven = await cli(['redrive', 'cli-fail', '--wait', '--interval', '0.1']);
  expect(redriven.code).toBe(ExitCode.Ok);
  expect(redriven.io.stdout()).toContain('redriven cli-fail (redrive 1)');
  expect(redriven.io.stdout()).toContain('execution cli-fail  SUCCEEDED');
  expect(rt.runtime.machine.describe(rt.runtime.machine.executionArn('cli-fail'))).toMatchObject({
    status: 'SUCCEEDED',
    redriveCount: 1,
  });
});

it('an unknown execution is one clear line and exit code 3', async () => {
  const { code, io } = await cli(['watch', 'no-such-execution']);

  expect(code).toBe(ExitCode.ServiceError);
  expect(io.stderr()).toBe(
    "stepdeploy: Execution Does Not Exist: 'arn:aws:states:us-east-1:000000000000:execution:stepdeploy-example:no-such-execution': no such execution; list them with `stepdeploy executions`\n",
  );
});

it('--local uses a running runtime found through .stepdeploy/endpoints/<pipeline>.json', async () => {
  const file = endpointFile(rt.runtime.home, rt.runtime.config.pipeline);
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(
    file,
    JSON.stringify({
      endpoint: rt.runtime.endpoint,
      pid: process.pid,
      stateMachineArn: rt.runtime.machine.stateMachineArn,
    }),
  );
  try {
    const { code, io } = await cli(['executions', '--json'], capture(), ['--local']);

    expect(code).toBe(ExitCode.Ok);
    expect(io.stderr()).toBe('');
    expect(JSON.parse(io.stdout()).map((e: { name: string }) => e.name)).toEqual(
      expect.arrayContaining(['cli-ok', 'cli-fail']),
    );
  } finally {
    rmSync(file, { force: true });
  }
  expect(existsSync(file)).toBe(false);
});
