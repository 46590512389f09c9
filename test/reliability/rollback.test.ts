import { DeleteObjectCommand } from '@aws-sdk/client-s3';
import { join } from 'node:path';
import { ExitCode } from '../../cli/exit-codes';
import { runCli } from '../../cli/main';
import { capture } from '../helpers/io';
import { startExampleRuntime, type TestRuntime } from '../helpers/local-runtime';
import { localBuilds, readJson, topLevelStatesEntered } from '../helpers/reliability';

/**
 * Promise: a rollback deploys again the build of an earlier deployment of the environment,
 * without fetching, combining or building, through the same Deploy (lease, supersede), hooks and
 * RecordDeployment, recorded as a rollback; a redeploy of another environment's execution, of
 * one that never deployed, or of a build the lifecycle removed, is refused at ValidateInput.
 */

let t: TestRuntime;

beforeAll(async () => {
  t = await startExampleRuntime();
});

afterAll(async () => {
  await t.close();
});

async function deploy(name: string, environment: string, branches: Record<string, string>) {
  const record = await t.run(name, { environment, branches, requestedBy: 'alice@example.com' });
  expect({ name, status: record.status, error: record.error }).toEqual({ name, status: 'SUCCEEDED', error: undefined });
  return readJson(t.runtime, `deployments/${environment}/current.json`);
}

test('rollback (CLI, default: the deployment before the current one) deploys its build again: no fetch, no combine, no build; status says so', async () => {
  const first = await deploy('acceptance-rb-1', 'acceptance', { app: 'main' });
  const second = await deploy('acceptance-rb-2', 'acceptance', { app: 'develop' });
  expect(second.sources[0].commit).not.toBe(first.sources[0].commit);
  const buildsBefore = localBuilds(t.runtime.home).length;

  const io = capture();
  const code = await runCli(
    [
      ...['node', 'stepdeploy', '--config', join(t.dir, 'stepdeploy.config.yml'), '--endpoint-url', t.runtime.endpoint],
      ...['rollback', '--env', 'acceptance', '--name', 'acceptance-rollback-1', '--wait'],
    ],
    io,
  );

  expect({ code, err: io.stderr() }).toEqual({ code: ExitCode.Ok, err: '' });
  const current = await readJson(t.runtime, 'deployments/acceptance/current.json');
  expect(current).toMatchObject({ execution: 'acceptance-rollback-1', redeployOf: 'acceptance-rb-1' });
  expect(current.sources).toEqual(first.sources);
  expect(current.artifactKey).toBe(first.artifactKey);
  const states = topLevelStatesEntered(
    t.runtime.machine.history(t.runtime.machine.executionArn('acceptance-rollback-1')),
  );
  expect(states).toEqual([
    'ValidateInput',
    'RedeployOrBuild',
    'RedeployEarlierBuild',
    'ApprovalRequired',
    'Deploy',
    'PostDeployHooks',
    'RecordDeployment',
  ]);
  // Only the deploy build ran.
  const builds = localBuilds(t.runtime.home).slice(buildsBefore);
  expect(builds.map((b) => b.ProjectName)).toEqual(['stepdeploy-example-deploy']);

  const status = capture();
  await runCli(
    [
      'node',
      'stepdeploy',
      '--config',
      join(t.dir, 'stepdeploy.config.yml'),
      '--endpoint-url',
      t.runtime.endpoint,
      'status',
      '--env',
      'acceptance',
    ],
    status,
  );
  expect(status.stdout()).toContain('by execution acceptance-rollback-1 (a rollback to the build of acceptance-rb-1)');
  expect(status.stdout()).toContain(first.sources[0].commit);

  // The environment's history: the rollback marked, newest first, above the deployments it follows.
  const history = capture();
  await runCli(
    [
      ...['node', 'stepdeploy', '--config', join(t.dir, 'stepdeploy.config.yml'), '--endpoint-url', t.runtime.endpoint],
      ...['status', '--env', 'acceptance', '--history'],
    ],
    history,
  );
  const entries = history
    .stdout()
    .split('\n')
    .filter((line) => /^ {4}\S/.test(line));
  expect(entries.map((line) => line.trim().split(/\s+/)[1])).toEqual([
    'acceptance-rollback-1',
    'acceptance-rb-2',
    'acceptance-rb-1',
  ]);
  expect(entries[0]).toContain('(a rollback to the build of acceptance-rb-1)');
  expect(entries[0]).toContain(`app=main@${first.sources[0].commit.slice(0, 7)}`);
  expect(entries[1]).not.toContain('rollback');
});

test('refused at ValidateInput before any other state: another environment, never deployed, build removed', async () => {
  await deploy('preproduction-rb-1', 'preproduction', {});
  const cases: Array<[string, string, string]> = [
    ['acceptance-rb-foreign', 'preproduction-rb-1', 'deployed to preproduction, not to acceptance'],
    ['acceptance-rb-never', 'acceptance-never-deployed', 'never deployed to acceptance'],
  ];
  await t.runtime.s3Client.send(
    new DeleteObjectCommand({ Bucket: t.runtime.bucket, Key: 'artifacts/acceptance/acceptance-rb-2/build.zip' }),
  );
  cases.push(['acceptance-rb-expired', 'acceptance-rb-2', "is gone: the bucket's lifecycle removed it"]);
  for (const [name, redeploy, why] of cases) {
    const record = await t.run(name, { environment: 'acceptance', redeploy });
    expect({ name, status: record.status, error: record.error }).toEqual({
      name,
      status: 'FAILED',
      error: 'InvalidInputError',
    });
    expect(record.cause).toContain(why);
    expect(topLevelStatesEntered(t.runtime.machine.history(record.executionArn))).toEqual(['ValidateInput']);
  }
});
