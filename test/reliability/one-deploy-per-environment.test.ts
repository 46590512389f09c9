import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ExecutionRecord } from '../../local/executions';
import { compareExecutions } from '../../tasks/shared/deployment-order';
import { startExampleRuntime, type TestRuntime } from '../helpers/local-runtime';
import {
  buildspecWith,
  listKeys,
  localBuilds,
  maxInFlight,
  readBytes,
  readJson,
  taskFailures,
  variableOf,
  waitFor,
  within,
} from '../helpers/reliability';
import { readZip } from '../helpers/zip';

/**
 * Promise: at most one deploy per environment at a time, environments in parallel, and an older
 * execution never deploys over a newer one (mode "superseded": it fails DeploySupersededError).
 * The guard is the S3 lease taken inside Deploy (tasks/deploy), released when the deploy build ends
 * (tasks/deploy-complete), also when the execution is stopped.
 */

let t: TestRuntime;
const DEPLOY_PROJECT = 'stepdeploy-example-deploy';
/** Each deploy lasts at least this long, so overlaps would show. */
const DEPLOY_SECONDS = 0.5;

let specs: string;

beforeAll(async () => {
  specs = mkdtempSync(join(tmpdir(), 'stepdeploy-buildspecs-'));
  t = await startExampleRuntime(
    (config) => {
      config.buildspecs.deploy = buildspecWith('deploy', specs, [
        `sleep ${DEPLOY_SECONDS}`,
        // Holds the deploy while the test wants it running (every deploy, or one environment's).
        'while [ -e "$STEPDEPLOY_LOCAL_HOME/hold-deploy" ] || [ -e "$STEPDEPLOY_LOCAL_HOME/hold-deploy-$ENVIRONMENT" ]; do sleep 0.05; done',
      ]);
    },
    // DeployLeaseBusyError is retried up to 60 times: 60 × 250 ms is the local waiting budget.
    {
      retryIntervalMs: 250,
      notify: async () => undefined,
      faults: { s3: (method, _bucket, key) => s3Fault?.(method, key) },
    },
  );
});

/** The S3 fault a test injects (undefined: none). */
let s3Fault: ((method: string, key: string) => number | undefined) | undefined;

afterEach(() => {
  s3Fault = undefined;
  // A failed test must not leave the next one's deploys held.
  rmSync(join(t.runtime.home, 'hold-deploy'), { force: true });
});

afterAll(async () => {
  await t.close();
  rmSync(specs, { recursive: true, force: true });
});

function deployBuildsOf(environment: string) {
  return localBuilds(t.runtime.home)
    .filter((b) => b.ProjectName === DEPLOY_PROJECT && variableOf(b, 'ENVIRONMENT') === environment)
    .sort((a, b) => a.StartTime - b.StartTime);
}

const ordered = (r: ExecutionRecord) => ({ execution: r.name, startedAt: new Date(r.startDate).toISOString() });

describe('one deployment per environment at a time', () => {
  test('5 concurrent executions to acceptance and 5 to preproduction: one deploy per environment in flight, environments in parallel, the newest ends deployed', async () => {
    const names = [1, 2, 3, 4, 5].flatMap((i) => [`acceptance-c${i}`, `preproduction-c${i}`]);
    const started = Date.now();
    // Each environment's first deploy is held until another execution of it has met the lease: the
    // test then always has the contention it is about, however the executions happen to be timed.
    const holds = ['acceptance', 'preproduction'].map((environment) =>
      join(t.runtime.home, `hold-deploy-${environment}`),
    );
    for (const hold of holds) writeFileSync(hold, '');
    const arns = names.map(
      (name) =>
        t.runtime.machine.start(name, { environment: name.split('-')[0]!, branches: { app: 'main', config: 'main' } })
          .executionArn,
    );
    const contended = (arn: string): boolean =>
      taskFailures(t.runtime.machine.history(arn), 'Deploy').includes('DeployLeaseBusyError') ||
      t.runtime.machine.describe(arn).error === 'DeploySupersededError';
    await Promise.all(
      ['acceptance', 'preproduction'].map(async (environment, i) => {
        await waitFor(
          `an execution to meet ${environment}'s held deploy`,
          () => arns.some((arn, n) => names[n]!.startsWith(`${environment}-`) && contended(arn)),
          120_000,
          100,
        );
        rmSync(holds[i]!);
      }),
    );

    const records = await within(
      150_000,
      'the 10 executions',
      Promise.all(arns.map((arn) => t.runtime.machine.wait(arn))),
    );
    const totalMs = Date.now() - started;

    // Every execution either deployed or was superseded by a newer one: nothing else.
    for (const r of records) {
      // The cause is part of what is compared, so that a failure shows it.
      expect([r.name, r.status === 'SUCCEEDED' ? 'SUCCEEDED' : `${r.status} ${r.error}: ${r.cause}`]).toEqual([
        r.name,
        expect.stringMatching(/^(SUCCEEDED|FAILED DeploySupersededError: [\s\S]*)$/),
      ]);
    }
    const figures: Record<string, unknown> = { totalMs };
    const windows: Array<{ start: number; end: number }> = [];
    for (const environment of ['acceptance', 'preproduction']) {
      const mine = records.filter((r) => r.name.startsWith(`${environment}-`));
      const builds = deployBuildsOf(environment);
      expect(builds.every((b) => b.BuildComplete && b.EndTime !== undefined)).toBe(true);
      const intervals = builds.map((b) => ({ start: b.StartTime, end: b.EndTime! }));
      expect(maxInFlight(intervals)).toBe(1);
      // In the order they deployed, each execution is newer than the one before: never older over newer.
      const deployedInOrder = builds.map((b) => mine.find((r) => r.name === variableOf(b, 'STEPDEPLOY_EXECUTION'))!);
      for (let i = 1; i < deployedInOrder.length; i++) {
        expect(compareExecutions(ordered(deployedInOrder[i]!), ordered(deployedInOrder[i - 1]!))).toBeGreaterThan(0);
      }
      // Every deploy that started belongs to an execution that succeeded (a superseded one never starts its build).
      expect(deployedInOrder.map((r) => r.status)).toEqual(deployedInOrder.map(() => 'SUCCEEDED'));
      const newest = [...mine].sort((a, b) => compareExecutions(ordered(a), ordered(b))).at(-1)!;
      expect(newest.status).toBe('SUCCEEDED');
      const current = await readJson(t.runtime, `deployments/${environment}/current.json`);
      expect(current).toMatchObject({ execution: newest.name, startedAt: ordered(newest).startedAt });
      const lease = await readJson(t.runtime, `deployments/${environment}/lease.json`);
      expect(lease).toMatchObject({ released: true, outcome: 'SUCCEEDED' });
      windows.push({
        start: Math.min(...intervals.map((i) => i.start)),
        end: Math.max(...intervals.map((i) => i.end)),
      });
      const superseded = mine.filter((r) => r.error === 'DeploySupersededError').map((r) => r.name);
      const waited = mine
        .filter((r) =>
          taskFailures(t.runtime.machine.history(r.executionArn), 'Deploy').includes('DeployLeaseBusyError'),
        )
        .map((r) => r.name);
      // The guard was exercised: some execution waited for the lease or was superseded.
      expect(superseded.length + waited.length).toBeGreaterThan(0);
      figures[environment] = {
        deployed: deployedInOrder.map((r) => r.name),
        superseded,
        waited,
        maxDeploysInFlight: maxInFlight(intervals),
      };
    }
    // The two environments deploy in parallel: their deploy windows overlap.
    expect(maxInFlight(windows)).toBe(2);

    // Every execution wrote its own artifact, each naming its execution in its manifest.
    const sourceZips = (await listKeys(t.runtime, 'artifacts/')).filter((k) => k.endsWith('/source.zip'));
    expect(sourceZips).toEqual(names.map((n) => `artifacts/${n.split('-')[0]}/${n}/source.zip`).sort());
    expect(new Set(sourceZips).size).toBe(names.length);
    for (const key of sourceZips) {
      const manifest = JSON.parse(
        (await readZip(await readBytes(t.runtime, key))).find((e) => e.name === 'stepdeploy-manifest.json')!.content,
      );
      expect(key).toBe(`artifacts/${manifest.environment}/${manifest.execution}/source.zip`);
    }
    process.stdout.write(`one-deploy-per-environment figures: ${JSON.stringify(figures)}\n`);
    // Ten whole pipelines at once: minutes on a loaded 2-core machine. The bound is for a hang.
  }, 180_000);

  test('stopping an execution while its deploy runs stops the deploy build and releases the environment; the next execution deploys', async () => {
    const hold = join(t.runtime.home, 'hold-deploy');
    writeFileSync(hold, '');
    const stopped = t.runtime.machine.start('acceptance-stopped', { environment: 'acceptance' });
    const build = await waitFor(
      'the deploy build of acceptance-stopped to run',
      () =>
        deployBuildsOf('acceptance').find(
          (b) => variableOf(b, 'STEPDEPLOY_EXECUTION') === 'acceptance-stopped' && b.BuildStatus === 'IN_PROGRESS',
        ),
      30_000,
    );
    // Deploy records its build in the lease right after StartBuild.
    await waitFor(
      'the lease to name the running build',
      async () => (await readJson(t.runtime, 'deployments/acceptance/lease.json')).buildId === build.Id,
      10_000,
    );

    t.runtime.machine.stop(stopped.executionArn);
    const aborted = await within(10_000, 'the stopped execution', t.runtime.machine.wait(stopped.executionArn));

    expect(aborted.status).toBe('ABORTED');
    // deploy-complete, on the ABORTED event, gives the lease back and stops the build; a next
    // execution waits until that build has ended (BatchGetBuilds), not only until the lease is free.
    const lease = await waitFor(
      'the lease to be released',
      async () => {
        const value = await readJson(t.runtime, 'deployments/acceptance/lease.json');
        return value.released ? value : undefined;
      },
      10_000,
    );
    expect(lease).toMatchObject({ execution: 'acceptance-stopped', buildId: build.Id, outcome: 'execution ABORTED' });
    await waitFor(
      'the deploy build to be stopped',
      () => deployBuildsOf('acceptance').find((b) => b.Id === build.Id)?.BuildStatus === 'STOPPED',
      10_000,
    );
    rmSync(hold);
    expect(existsSync(hold)).toBe(false);

    const next = await within(
      30_000,
      'the next execution',
      t.run('acceptance-after-stop', { environment: 'acceptance' }),
    );

    expect(next.status).toBe('SUCCEEDED');
    expect(await readJson(t.runtime, 'deployments/acceptance/current.json')).toMatchObject({
      execution: 'acceptance-after-stop',
    });
  }, 120_000);

  test('a redriven older execution never deploys over a newer one: $$.Execution.StartTime stays the start time across a redrive', async () => {
    const marker = join(t.runtime.home, 'fail-build');
    writeFileSync(marker, 'broken\n');
    const older = await t.run('preproduction-older', { environment: 'preproduction' });
    expect(older).toMatchObject({ status: 'FAILED', lastTopLevelState: { name: 'BuildTemplates' } });
    rmSync(marker);
    const newer = await t.run('preproduction-newer', { environment: 'preproduction' });
    expect(newer.status).toBe('SUCCEEDED');

    t.runtime.machine.redrive(older.executionArn);
    const redriven = await t.runtime.machine.wait(older.executionArn);

    expect(redriven).toMatchObject({ status: 'FAILED', error: 'DeploySupersededError', redriveCount: 1 });
    expect(JSON.parse(redriven.cause!).errorMessage).toContain(
      `preproduction-older (started ${new Date(older.startDate).toISOString()})`,
    );
    expect(await readJson(t.runtime, 'deployments/preproduction/current.json')).toMatchObject({
      execution: 'preproduction-newer',
      startedAt: new Date(newer.startDate).toISOString(),
    });
    expect(
      deployBuildsOf('preproduction').filter((b) => variableOf(b, 'STEPDEPLOY_EXECUTION') === 'preproduction-older'),
    ).toEqual([]);
  }, 120_000);

  test('Deploy dying between StartBuild and recording the build id leaves no unguarded build: the build is found by its lease id and stopped, and the next deploy starts only after it ended', async () => {
    const hold = join(t.runtime.home, 'hold-deploy');
    writeFileSync(hold, '');
    // Every write of the acceptance lease after the one that takes it fails (S3 500, through the
    // SDK's retries): Deploy dies after StartBuild, its build running but never recorded.
    let leaseWrites = 0;
    s3Fault = (method, key) =>
      method === 'PUT' && key === 'deployments/acceptance/lease.json' && ++leaseWrites > 1 ? 500 : undefined;
    const crashed = t.runtime.machine.start('acceptance-crashed', { environment: 'acceptance' });
    const orphan = await waitFor(
      'the deploy build of acceptance-crashed to run',
      () =>
        deployBuildsOf('acceptance').find(
          (b) => variableOf(b, 'STEPDEPLOY_EXECUTION') === 'acceptance-crashed' && b.BuildStatus === 'IN_PROGRESS',
        ),
      30_000,
    );
    const failed = await within(20_000, 'the crashed execution', t.runtime.machine.wait(crashed.executionArn));
    expect(failed).toMatchObject({ status: 'FAILED', error: 'InternalError', lastTopLevelState: { name: 'Deploy' } });
    s3Fault = undefined;
    // The fence passed (the lease was its take), and the lease never named the build.
    expect(variableOf(orphan, 'STEPDEPLOY_LEASE_ID')).toBe(
      (await readJson(t.runtime, 'deployments/acceptance/lease.json')).leaseId,
    );

    // A newer execution arrives while the orphan is still held running.
    const next = t.runtime.machine.start('acceptance-after-crash', { environment: 'acceptance' });
    const stopped = await waitFor(
      'the orphan build to be stopped (deploy-complete found it by its lease id)',
      () => deployBuildsOf('acceptance').find((b) => b.Id === orphan.Id && b.BuildComplete),
      20_000,
    );
    rmSync(hold);
    const after = await within(60_000, 'the next execution', t.runtime.machine.wait(next.executionArn));

    expect(stopped.BuildStatus).toBe('STOPPED');
    expect(after.status).toBe('SUCCEEDED');
    const builds = deployBuildsOf('acceptance').filter((b) =>
      ['acceptance-crashed', 'acceptance-after-crash'].includes(variableOf(b, 'STEPDEPLOY_EXECUTION')!),
    );
    // One build each, never two at once: the next one started after the orphan ended.
    expect(builds.map((b) => variableOf(b, 'STEPDEPLOY_EXECUTION'))).toEqual([
      'acceptance-crashed',
      'acceptance-after-crash',
    ]);
    expect(builds[1]!.StartTime).toBeGreaterThanOrEqual(builds[0]!.EndTime!);
    expect(
      taskFailures(t.runtime.machine.history(next.executionArn), 'Deploy').every((e) => e === 'DeployLeaseBusyError'),
    ).toBe(true);
    expect(await readJson(t.runtime, 'deployments/acceptance/current.json')).toMatchObject({
      execution: 'acceptance-after-crash',
    });
  }, 120_000);
});
