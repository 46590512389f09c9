import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SFNClient } from '@aws-sdk/client-sfn';
import type { EventBridgeEvent } from '../../local/events';
import { historyLookup } from '../../tasks/notify/history';
import { notify } from '../../tasks/notify/notify';
import { notifyEventSchema } from '../../tasks/shared/eventbridge-events';
import { PATH_WITHOUT_APPROVAL } from '../../workflows/definition';
import { startExampleRuntime, type TestRuntime } from '../helpers/local-runtime';
import {
  afterLastRedrive,
  controlledEndpoint,
  etagOf,
  executionStatuses,
  pushCommit,
  readJson,
  topLevelStatesEntered,
  waitFor,
  type ControlledEndpoint,
} from '../helpers/reliability';

/**
 * Promise: whatever step fails, the execution ends FAILED at that state, the failure reaches
 * notify through the execution-status event, and redrive restarts that state only and completes.
 * Every failure here has a real cause, removed before the redrive.
 */

let t: TestRuntime;
let hook: ControlledEndpoint;
let sfn: SFNClient | undefined;
const events: EventBridgeEvent[] = [];
/** What tasks/notify printed for each event (it prints when no webhook is configured). */
const lines: string[] = [];
/** S3 requests to fail (a real S3 outage, seen by the task code through the SDK). */
let s3Outage: ((method: string, key: string) => boolean) | undefined;

const ORDER = PATH_WITHOUT_APPROVAL;

beforeAll(async () => {
  hook = await controlledEndpoint(200);
  t = await startExampleRuntime(
    (config) => {
      config.environments.acceptance.hooks = [
        { name: 'health', url: `${hook.url}/health`, retries: 0, intervalSeconds: 0, timeoutSeconds: 2 },
      ];
    },
    {
      notify: async (event) => {
        events.push(event);
        sfn ??= new SFNClient({ endpoint: t.runtime.endpoint, region: 'us-east-1' });
        return notify(notifyEventSchema.parse(event), {
          history: historyLookup(sfn),
          print: (line) => lines.push(line),
        });
      },
      faults: { s3: (method, _bucket, key) => (s3Outage?.(method, key) ? 500 : undefined) },
    },
  );
});

afterAll(async () => {
  await t.close();
  sfn?.destroy();
  await hook.close();
});

/**
 * Runs an execution that must fail at `state`, checks what a person sees, removes the cause,
 * redrives and checks that only `state` and what follows ran again.
 */
async function failThenRedrive(
  name: string,
  input: unknown,
  state: string,
  expectedError: string | RegExp,
  removeCause: () => void,
): Promise<void> {
  const failed = await t.run(name, input);

  expect(failed.status).toBe('FAILED');
  expect(failed.error).toMatch(expectedError);
  expect(failed.lastTopLevelState?.name).toBe(state);
  expect(topLevelStatesEntered(t.runtime.machine.history(failed.executionArn)).at(-1)).toBe(state);
  await waitFor('the FAILED execution-status event to reach notify', () =>
    executionStatuses(events, name).some(([s]) => s === 'FAILED'),
  );
  await waitFor('notify to print the failure', () =>
    lines.find((l) => l.includes(`execution ${name}`) && l.includes('acceptance: FAILED at')),
  );

  removeCause();
  t.runtime.machine.redrive(failed.executionArn);
  const done = await t.runtime.machine.wait(failed.executionArn);

  expect(done).toMatchObject({ status: 'SUCCEEDED', redriveCount: 1 });
  const redriven = afterLastRedrive(t.runtime.machine.history(failed.executionArn));
  expect(redriven[0]!.type).toBe('ExecutionRedriven');
  expect(topLevelStatesEntered(redriven)).toEqual(ORDER.slice(ORDER.indexOf(state)));
  await waitFor('the SUCCEEDED event after the redrive', () => executionStatuses(events, name).length === 4);
  expect(executionStatuses(events, name)).toEqual([
    ['RUNNING', 0],
    ['FAILED', 0],
    ['RUNNING', 1],
    ['SUCCEEDED', 1],
  ]);
  expect(await readJson(t.runtime, 'deployments/acceptance/current.json')).toMatchObject({ execution: name });
}

describe('failure and redrive, per step', () => {
  test('fetch: a branch not pushed yet fails FetchSources (at ResolveSource); once pushed, redrive fetches and completes without validating again', async () => {
    const appRepo = join(t.dir, '.stepdeploy', 'example-repos', 'app.git');
    let pushed = '';

    await failThenRedrive(
      'acceptance-redrive-fetch',
      { environment: 'acceptance', branches: { app: 'hotfix/not-pushed-yet' } },
      'FetchSources',
      /.+/,
      () => {
        pushed = pushCommit(appRepo, 'hotfix/not-pushed-yet', 'HOTFIX.md', 'hotfix\n');
      },
    );

    const current = await readJson(t.runtime, 'deployments/acceptance/current.json');
    expect(current.sources).toContainEqual({ name: 'app', branch: 'hotfix/not-pushed-yet', commit: pushed });
    expect(lines.find((l) => l.includes('execution acceptance-redrive-fetch') && l.includes('FAILED'))).toMatch(
      /FAILED at ResolveSource \| .* SourceBranchNotFoundError: source app: branch "hotfix\/not-pushed-yet" does not exist in /,
    );
  });

  test('fetch: a redrive runs again only the source that failed; the other keeps the commit it was resolved to, though its branch moved', async () => {
    const repos = join(t.dir, '.stepdeploy', 'example-repos');
    const branch = 'feature/redrive-one-source';
    const app = pushCommit(join(repos, 'app.git'), branch, 'ONE.md', 'one source fails\n');
    const configBefore = execFileSync('git', ['rev-parse', 'main'], {
      cwd: join(repos, 'config.git'),
      encoding: 'utf8',
    }).trim();
    const fetchBuilds = (): number => t.runtime.builds.lastBuildNumber('stepdeploy-example-fetch');
    let buildsBeforeRedrive = 0;
    // The app's snapshot cannot be stored: its FetchSource build fails, after the config's iteration ended.
    s3Outage = (method, key) => key.startsWith('sources/app/') && (method === 'PUT' || method === 'POST');
    let configMoved = '';

    await failThenRedrive(
      'acceptance-redrive-one-source',
      { environment: 'acceptance', branches: { app: branch } },
      'FetchSources',
      /.+/,
      () => {
        s3Outage = undefined;
        configMoved = pushCommit(join(repos, 'config.git'), 'main', 'later.json', '{}\n');
        buildsBeforeRedrive = fetchBuilds();
      },
    );

    expect(configMoved).not.toBe(configBefore);
    const current = await readJson(t.runtime, 'deployments/acceptance/current.json');
    expect(current.sources).toEqual([
      { name: 'app', branch, commit: app },
      { name: 'config', branch: 'main', commit: configBefore },
    ]);
    // The redrive started one fetch build, the app's, pinned to the commit resolved before the failure.
    expect(fetchBuilds() - buildsBeforeRedrive).toBe(1);
    const redriven = afterLastRedrive(
      t.runtime.machine.history(t.runtime.machine.executionArn('acceptance-redrive-one-source')),
    );
    const submitted = redriven
      .filter((e) => e.type === 'TaskSubmitted')
      .map((e) => JSON.parse((e.taskSubmittedEventDetails as { output: string }).output).Build)
      .filter((b) => b?.ProjectName === 'stepdeploy-example-fetch');
    expect(submitted.map((b) => b.SourceVersion)).toContain(app);
  });

  test('combine: S3 failing on the source.zip upload fails CombineConfigAndCode; redrive writes it and completes without fetching again', async () => {
    const name = 'acceptance-redrive-combine';
    const key = `artifacts/acceptance/${name}/source.zip`;
    s3Outage = (method, k) => k === key && (method === 'PUT' || method === 'POST');

    await failThenRedrive(name, { environment: 'acceptance' }, 'CombineConfigAndCode', /.+/, () => {
      s3Outage = undefined;
    });

    expect(await etagOf(t.runtime, key)).toBeDefined();
  });

  test('build: a failing template build fails BuildTemplates; redrive builds and completes without combining again', async () => {
    const marker = join(t.runtime.home, 'fail-build');
    writeFileSync(marker, 'broken\n');

    await failThenRedrive(
      'acceptance-redrive-build',
      { environment: 'acceptance' },
      'BuildTemplates',
      'States.TaskFailed',
      () => rmSync(marker),
    );
  });

  test('deploy: a failing deploy build fails Deploy (DeployBuildFailed) and gives the lease back; redrive deploys without building again', async () => {
    // The example deploy writes to <home>/targets/<environment>/: a file in its place breaks it.
    const target = join(t.runtime.home, 'targets', 'acceptance');
    rmSync(target, { recursive: true, force: true });
    mkdirSync(join(t.runtime.home, 'targets'), { recursive: true });
    writeFileSync(target, 'not a folder\n');
    const name = 'acceptance-redrive-deploy';

    await failThenRedrive(name, { environment: 'acceptance' }, 'Deploy', 'DeployBuildFailed', () => {
      rmSync(target);
    });

    const lease = await readJson(t.runtime, 'deployments/acceptance/lease.json');
    expect(lease).toMatchObject({ execution: name, released: true, outcome: 'SUCCEEDED' });
  });

  test('hook: a health check answering 500 fails PostDeployHooks; once healthy, redrive runs the hooks and records without deploying again', async () => {
    hook.answer = 500;
    const before = hook.requests.length;

    await failThenRedrive(
      'acceptance-redrive-hook',
      { environment: 'acceptance' },
      'PostDeployHooks',
      'HookFailedError',
      () => {
        hook.answer = 200;
      },
    );

    // One failing call (retries: 0), then one passing call after the redrive.
    expect(hook.requests.slice(before).map((r) => r.path)).toEqual(['/health', '/health']);
  });
});
