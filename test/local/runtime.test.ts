import { existsSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { startExampleRuntime, type TestRuntime } from '../helpers/local-runtime';
import { localBuilds, pushCommit, variableOf } from '../helpers/reliability';
import { projectTimeouts } from '../../infra/definition-timeouts';
import type { HistoryEvent } from '../../local/history';
import { FETCH_ITERATION_STATES, PATH_WITHOUT_APPROVAL } from '../../workflows/definition';
import type { EventBridgeEvent } from '../../local/events';

let t: TestRuntime;
const events: EventBridgeEvent[] = [];

beforeAll(async () => {
  t = await startExampleRuntime(undefined, { notify: async (event) => events.push(event) });
});
afterAll(async () => {
  await t.close();
});

function enteredStates(events: ReadonlyArray<HistoryEvent>): string[] {
  return events
    .filter((e) => e.type.endsWith('StateEntered'))
    .map((e) => (e.stateEnteredEventDetails as { name: string }).name);
}

/** Every local build leaves a folder under .stepdeploy/builds/. */
function buildCount(): number {
  const dir = join(t.runtime.home, 'builds');
  return existsSync(dir) ? readdirSync(dir, { withFileTypes: true }).filter((d) => d.isDirectory()).length : 0;
}

async function readJson(key: string): Promise<any> {
  const out = await t.runtime.s3Client.send(new GetObjectCommand({ Bucket: t.runtime.bucket, Key: key }));
  return JSON.parse(await out.Body!.transformToString());
}

describe('local runtime: the deploy state machine on the example', () => {
  test('deploys acceptance from app=develop end to end and records what was deployed', async () => {
    const record = await t.run('acceptance-e2e-1', {
      environment: 'acceptance',
      branches: { app: 'develop' },
      requestedBy: 'test',
    });

    expect(record.status).toBe('SUCCEEDED');
    const output = JSON.parse(record.output!);
    expect(output.fetched.map((s: any) => [s.name, s.branch])).toEqual([
      ['app', 'develop'],
      ['config', 'main'],
    ]);
    const current = await readJson('deployments/acceptance/current.json');
    expect(current).toMatchObject({ environment: 'acceptance', execution: 'acceptance-e2e-1' });
    expect(current.sources).toEqual(
      output.fetched.map((s: any) => ({ name: s.name, branch: s.branch, commit: s.commit })),
    );
    expect(existsSync(join(t.runtime.home, 'targets', 'acceptance', 'service.json'))).toBe(true);
    const states = enteredStates(t.runtime.machine.history(record.executionArn));
    expect(states.filter((s) => !([...FETCH_ITERATION_STATES, 'RunHook'] as string[]).includes(s))).toEqual([
      ...PATH_WITHOUT_APPROVAL,
    ]);
    // While a build runs, history already names it (TaskSubmitted), as on AWS.
    const submitted = t.runtime.machine
      .history(record.executionArn)
      .filter((e) => e.type === 'TaskSubmitted')
      .map((e) => JSON.parse((e.taskSubmittedEventDetails as { output: string }).output));
    expect(submitted.filter((o) => o.Build?.ProjectName === 'stepdeploy-example-fetch')).toHaveLength(2);
    expect(submitted.filter((o) => o.Build?.ProjectName === 'stepdeploy-example-build')).toHaveLength(1);
    expect(
      submitted.filter(
        (o) => typeof o.Payload?.buildId === 'string' && o.Payload.buildId.startsWith('stepdeploy-example-deploy:'),
      ),
    ).toHaveLength(1);
    // TaskSucceeded shows the task's own result, before ResultSelector: the Build, the Lambda response.
    const succeeded = t.runtime.machine
      .history(record.executionArn)
      .filter((e) => e.type === 'TaskSucceeded')
      .map((e) => JSON.parse((e.taskSucceededEventDetails as { output: string }).output));
    expect(succeeded.find((o) => o.Build?.ProjectName === 'stepdeploy-example-build')?.Build.BuildStatus).toBe(
      'SUCCEEDED',
    );
    expect(succeeded.find((o) => o.Payload?.environment === 'acceptance')).toMatchObject({
      StatusCode: 200,
      Payload: { execution: 'acceptance-e2e-1' },
    });
  });

  test("its builds carry the stack's build and queued timeouts, from the one definition", () => {
    const limits = projectTimeouts();
    const shown = (project: string) =>
      localBuilds(t.runtime.home)
        .filter((b) => b.ProjectName === project && variableOf(b, 'STEPDEPLOY_EXECUTION') === 'acceptance-e2e-1')
        .map((b) => ({ timeoutInMinutes: b.TimeoutInMinutes, queuedTimeoutInMinutes: b.QueuedTimeoutInMinutes }));

    expect(shown('stepdeploy-example-fetch')).toEqual([limits.fetch, limits.fetch]);
    expect(shown('stepdeploy-example-build')).toEqual([limits.build]);
    expect(shown('stepdeploy-example-deploy')).toEqual([limits.deploy]);
  });

  test('the same commits again reuse the stored snapshots without a fetch build; a new commit is fetched at that commit', async () => {
    const first = await t.run('acceptance-reuse-1', {
      environment: 'acceptance',
      branches: { app: 'feature/cloudformationchange' },
    });
    expect(first.status).toBe('SUCCEEDED');
    const buildsBefore = buildCount();

    const again = await t.run('acceptance-reuse-2', {
      environment: 'acceptance',
      branches: { app: 'feature/cloudformationchange' },
    });
    expect(again.status).toBe('SUCCEEDED');
    const history = t.runtime.machine.history(again.executionArn);
    const entered = enteredStates(history);
    expect(entered.filter((s) => s === 'ReuseSnapshot')).toHaveLength(2);
    expect(entered).not.toContain('FetchSource');
    // Only BuildTemplates and Deploy built: no fetch build ran.
    expect(buildCount() - buildsBefore).toBe(2);
    const fetched = (record: typeof first) => JSON.parse(record.output!).fetched;
    expect(fetched(again).map((s: any) => [s.name, s.commit, s.snapshotKey, s.fetchBuildId])).toEqual(
      fetched(first).map((s: any) => [s.name, s.commit, s.snapshotKey, null]),
    );

    // The branch moves: ResolveSource sees the new commit, and FetchSource is pinned to it.
    const appRepo = join(t.runtime.home, 'example-repos', 'app.git');
    const moved = pushCommit(appRepo, 'feature/cloudformationchange', 'NOTES.md', 'a new commit\n');
    const third = await t.run('acceptance-reuse-3', {
      environment: 'acceptance',
      branches: { app: 'feature/cloudformationchange' },
    });
    expect(third.status).toBe('SUCCEEDED');
    const thirdStates = enteredStates(t.runtime.machine.history(third.executionArn));
    expect(thirdStates.filter((s) => s === 'FetchSource')).toHaveLength(1);
    expect(thirdStates.filter((s) => s === 'ReuseSnapshot')).toHaveLength(1);
    const fetchBuild = t.runtime.machine
      .history(third.executionArn)
      .filter((e) => e.type === 'TaskSucceeded')
      .map((e) => JSON.parse((e.taskSucceededEventDetails as { output: string }).output))
      .find((o) => o.Build?.ProjectName === 'stepdeploy-example-fetch')?.Build;
    expect(fetchBuild).toMatchObject({ SourceVersion: moved, ResolvedSourceVersion: moved });
    expect(fetched(third).find((s: any) => s.name === 'app')).toMatchObject({
      commit: moved,
      snapshotKey: `sources/app/${moved}.zip`,
    });
  });

  test('fails at BuildTemplates while the build is broken; redrive completes it without fetching or combining again', async () => {
    const marker = join(t.runtime.home, 'fail-build');
    writeFileSync(marker, 'break the example build\n');
    const failed = await t.run('acceptance-e2e-2', { environment: 'acceptance' });
    expect(failed).toMatchObject({ status: 'FAILED', error: 'States.TaskFailed' });
    expect(failed.lastTopLevelState?.name).toBe('BuildTemplates');
    const before = t.runtime.machine.history(failed.executionArn).length;

    rmSync(marker);
    t.runtime.machine.redrive(failed.executionArn);
    const done = await t.runtime.machine.wait(failed.executionArn);

    expect(done.status).toBe('SUCCEEDED');
    expect(done.redriveCount).toBe(1);
    const statuses = events
      .filter(
        (e) => e['detail-type'] === 'Step Functions Execution Status Change' && e.detail.name === 'acceptance-e2e-2',
      )
      .map((e) => [e.detail.status, e.detail.redriveCount]);
    expect(statuses).toEqual([
      ['RUNNING', 0],
      ['FAILED', 0],
      ['RUNNING', 1],
      ['SUCCEEDED', 1],
    ]);
    const failedBuild = events.find(
      (e) => e['detail-type'] === 'CodeBuild Build State Change' && e.detail['build-status'] === 'FAILED',
    );
    expect(failedBuild?.detail['project-name']).toBe('stepdeploy-example-build');
    const afterRedrive = t.runtime.machine.history(failed.executionArn).slice(before);
    expect(afterRedrive[0]!.type).toBe('ExecutionRedriven');
    expect(enteredStates(afterRedrive)).toEqual([
      'BuildTemplates',
      'ApprovalRequired',
      'Deploy',
      'PostDeployHooks',
      'RecordDeployment',
    ]);
  });

  test('rejects a hostile branch at ValidateInput before any build starts', async () => {
    const canary = join(t.dir, 'pwned');
    const buildsBefore = buildCount();
    expect(buildsBefore).toBeGreaterThan(0);
    const failed = await t.run('acceptance-e2e-3', {
      environment: 'acceptance',
      branches: { app: `x$(touch ${canary})` },
    });

    expect(failed).toMatchObject({ status: 'FAILED', error: 'InvalidInputError' });
    expect(JSON.parse(failed.cause!).errorMessage).toContain('branches.app');
    expect(failed.lastTopLevelState?.name).toBe('ValidateInput');
    expect(existsSync(canary)).toBe(false);
    expect(buildCount()).toBe(buildsBefore);
  });

  test('rejects production from a feature branch, naming the branch policy', async () => {
    const failed = await t.run('production-e2e-4', { environment: 'production', branches: { app: 'feature/x' } });
    expect(failed.status).toBe('FAILED');
    expect(JSON.parse(failed.cause!).errorMessage).toMatch(/branches\.app.*"feature\/x".*production.*main/);
  });
});
