import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { promisify } from 'node:util';

/**
 * An AWS command loads none of the local runtime: the CLI runs in a child process (Node's own
 * module cache, which jest replaces in process) against a mocked AWS, then the child prints every
 * module it loaded; then it loads the runtime itself, so the check is shown able to see it.
 */

const ROOT = resolve(__dirname, '..', '..');
const MACHINE = 'arn:aws:states:eu-west-1:111111111111:stateMachine:shop';

const CHILD = `
require('tsx/cjs');
const { mockClient } = require('aws-sdk-client-mock');
const sfn = require('@aws-sdk/client-sfn');
const mock = mockClient(sfn.SFNClient);
mock.on(sfn.ListExecutionsCommand).resolves({ executions: [{ executionArn: '${MACHINE.replace('stateMachine', 'execution')}:run-1', stateMachineArn: '${MACHINE}', name: 'run-1', status: 'SUCCEEDED', startDate: new Date(0) }] });
mock.on(sfn.DescribeExecutionCommand).resolves({ input: '{"environment":"acceptance"}' });
mock.on(sfn.GetExecutionHistoryCommand).resolves({ events: [] });
const { runCli } = require('./cli/main');
let out = '';
const io = { out: (t) => (out += t), err: (t) => process.stderr.write(t), isTTY: false };
const loaded = () => Object.keys(require.cache).map((m) => m.replace(${JSON.stringify(`${ROOT}/`)}, ''));
runCli(['node', 'stepdeploy', '--config', 'stepdeploy.config.yml', ...process.argv.slice(1)], io).then((code) => {
  const afterCommand = loaded();
  require('./local/runtime');
  console.log(JSON.stringify({ code, out, afterCommand, afterRuntime: loaded() }));
});
`;

/** s3rver, koa (its HTTP server), winston (its logger), the engine, and every file of local/. */
const LOCAL_RUNTIME = /(^|\/)node_modules\/(s3rver|koa|winston|aws-local-stepfunctions)\/|^local\//;

async function run(...args: string[]) {
  const { stdout } = await promisify(execFile)(process.execPath, ['-e', CHILD, '--', ...args], {
    cwd: ROOT,
    env: { ...process.env, AWS_REGION: 'eu-west-1', AWS_ACCESS_KEY_ID: 'test', AWS_SECRET_ACCESS_KEY: 'test' },
    maxBuffer: 16 * 1024 * 1024,
  });
  return JSON.parse(stdout) as { code: number; out: string; afterCommand: string[]; afterRuntime: string[] };
}

it('stepdeploy executions on AWS loads no module of the local runtime', async () => {
  const result = await run('--state-machine-arn', MACHINE, 'executions', '--json');

  expect(result.code).toBe(0);
  expect(JSON.parse(result.out)).toEqual([expect.objectContaining({ name: 'run-1', environment: 'acceptance' })]);
  expect(result.afterCommand.filter((m) => LOCAL_RUNTIME.test(m))).toEqual([]);
  // The same check sees the runtime once it is loaded.
  const runtime = result.afterRuntime.filter((m) => LOCAL_RUNTIME.test(m));
  for (const part of ['s3rver', 'koa', 'winston', 'aws-local-stepfunctions'])
    expect(runtime.some((m) => m.includes(`node_modules/${part}/`))).toBe(true);
  expect(runtime).toContain('local/runtime.ts');
}, 60_000);

it('stepdeploy --help loads no module of the local runtime', async () => {
  const result = await run('--help');

  expect(result.code).toBe(0);
  expect(result.out).toContain('Usage: stepdeploy');
  expect(result.afterCommand.filter((m) => LOCAL_RUNTIME.test(m))).toEqual([]);
}, 60_000);
