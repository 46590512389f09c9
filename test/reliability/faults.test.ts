import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { EventBridgeEvent } from '../../local/events';
import { awsError } from '../../local/faults';
import { notify, type NotifyResult } from '../../tasks/notify/notify';
import { SLACK_TIMEOUT_MS } from '../../tasks/notify/slack';
import { notifyEventSchema } from '../../tasks/shared/eventbridge-events';
import { startExampleRuntime, type TestRuntime } from '../helpers/local-runtime';
import {
  buildspecWith,
  controlledEndpoint,
  etagOf,
  localBuilds,
  pushCommit,
  readBytes,
  taskAttempts,
  taskFailures,
  variableOf,
  waitFor,
  within,
  type ControlledEndpoint,
} from '../helpers/reliability';
import { readZip } from '../helpers/zip';

/**
 * Promise: transient faults (CodeBuild throttling, Lambda service errors) are retried and then
 * succeed; a real build failure is not retried; Slack failing or hanging neither fails nor delays a
 * deployment; S3 failing in the middle of combine fails that state cleanly and redrive completes
 * it; a killed build process ends its state FAILED, never hung.
 */

let t: TestRuntime;
let specs: string;
let slack: ControlledEndpoint;
/** Fails Task attempts (the local runtime's fault plan), per test. */
let taskFault: ((state: string, attempt: number) => Error | undefined) | undefined;
let s3Fault: ((method: string, key: string, query: URLSearchParams) => number | undefined) | undefined;
/** Where execution and build events go, per test. */
let deliver: (event: EventBridgeEvent) => Promise<unknown> = async () => undefined;

beforeAll(async () => {
  specs = mkdtempSync(join(tmpdir(), 'stepdeploy-buildspecs-'));
  slack = await controlledEndpoint(200);
  t = await startExampleRuntime(
    (config) => {
      config.buildspecs.build = buildspecWith('build', specs, [
        // While hold-build exists the build records its shell's pid and waits: the test kills that shell.
        'if [ -e "$STEPDEPLOY_LOCAL_HOME/hold-build" ]; then echo $$ > "$STEPDEPLOY_LOCAL_HOME/build.pid"; while [ -e "$STEPDEPLOY_LOCAL_HOME/hold-build" ]; do sleep 0.05; done; fi',
      ]);
    },
    {
      faults: {
        task: (state, attempt) => taskFault?.(state, attempt),
        s3: (method, _bucket, key, query) => s3Fault?.(method, key, query),
      },
      notify: (event) => deliver(event),
    },
  );
});

afterEach(() => {
  taskFault = undefined;
  s3Fault = undefined;
  deliver = async () => undefined;
});

afterAll(async () => {
  await t.close();
  await slack.close();
  rmSync(specs, { recursive: true, force: true });
});

describe('transient faults are retried, real failures are not', () => {
  test('CodeBuild.AccountLimitExceededException on BuildTemplates twice, then success: SUCCEEDED, both retries in the history', async () => {
    taskFault = (state, attempt) =>
      state === 'BuildTemplates' && attempt <= 2
        ? awsError('CodeBuild.AccountLimitExceededException', 'Cannot have more than 1 builds in queue for the account')
        : undefined;

    const record = await t.run('acceptance-fault-throttled', { environment: 'acceptance' });

    expect(record.status).toBe('SUCCEEDED');
    const history = t.runtime.machine.history(record.executionArn);
    expect(taskFailures(history, 'BuildTemplates')).toEqual([
      'CodeBuild.AccountLimitExceededException',
      'CodeBuild.AccountLimitExceededException',
    ]);
    expect(taskAttempts(history, 'BuildTemplates')).toBe(3);
  });

  test('Lambda.ServiceException on CombineConfigAndCode, then success: SUCCEEDED after one retry', async () => {
    taskFault = (state, attempt) =>
      state === 'CombineConfigAndCode' && attempt === 1
        ? awsError('Lambda.ServiceException', 'Lambda is unavailable')
        : undefined;

    const record = await t.run('acceptance-fault-lambda', { environment: 'acceptance' });

    expect(record.status).toBe('SUCCEEDED');
    const history = t.runtime.machine.history(record.executionArn);
    expect(taskFailures(history, 'CombineConfigAndCode')).toEqual(['Lambda.ServiceException']);
    expect(taskAttempts(history, 'CombineConfigAndCode')).toBe(2);
  });

  test('a real build failure is not retried: one attempt, one build, FAILED at BuildTemplates', async () => {
    const marker = join(t.runtime.home, 'fail-build');
    writeFileSync(marker, 'broken\n');
    try {
      const record = await t.run('acceptance-fault-real-failure', { environment: 'acceptance' });

      expect(record).toMatchObject({
        status: 'FAILED',
        error: 'States.TaskFailed',
        lastTopLevelState: { name: 'BuildTemplates' },
      });
      const history = t.runtime.machine.history(record.executionArn);
      expect(taskAttempts(history, 'BuildTemplates')).toBe(1);
      const builds = localBuilds(t.runtime.home).filter(
        (b) =>
          b.ProjectName === 'stepdeploy-example-build' &&
          variableOf(b, 'STEPDEPLOY_EXECUTION') === 'acceptance-fault-real-failure',
      );
      expect(builds.map((b) => b.BuildStatus)).toEqual(['FAILED']);
    } finally {
      rmSync(marker, { force: true });
    }
  });
});

describe('Slack never fails or delays a deployment', () => {
  /** Sends every event to the real notifier, with the local endpoint as the Slack webhook. */
  function viaSlack(
    results: NotifyResult[],
    timeoutMs = SLACK_TIMEOUT_MS,
  ): (event: EventBridgeEvent) => Promise<unknown> {
    return async (event) => {
      results.push(
        await notify(notifyEventSchema.parse(event), {
          webhookUrl: async () => `${slack.url}/services/T000/B000/XXXX`,
          timeoutMs,
        }),
      );
    };
  }

  test('Slack answering 500: the deployment SUCCEEDS, and each message is reported undelivered', async () => {
    const error = jest.spyOn(console, 'error').mockImplementation(() => undefined);
    const failing: NotifyResult[] = [];
    slack.answer = 500;
    deliver = viaSlack(failing);

    const record = await t.run('acceptance-slack-500', { environment: 'acceptance' });

    expect(record.status).toBe('SUCCEEDED');
    await waitFor('the 500 deliveries', () => failing.length >= 2 && failing);
    expect(failing.filter((r) => !r.delivered).map((r) => (r as { reason: string }).reason)).toContain(
      'Slack answered HTTP 500',
    );
    error.mockRestore();
  });

  test('Slack never answering: the deployment SUCCEEDS while every message to Slack still hangs', async () => {
    const error = jest.spyOn(console, 'error').mockImplementation(() => undefined);
    const results: NotifyResult[] = [];
    const sentToSlack = () => results.filter((r) => r.delivered || !r.reason.endsWith(' is not notified'));
    slack.answer = 'hang';
    const requestsBefore = slack.requests.length;
    // A timeout far longer than the test: a deployment that waited for any message would never end
    // while Slack hangs. No clock is compared, so a loaded machine cannot fail this.
    deliver = viaSlack(results, 10 * 60_000);
    let hung = 0;
    try {
      const record = await t.run('acceptance-slack-hang', { environment: 'acceptance' });

      expect(record.status).toBe('SUCCEEDED');
      expect(slack.requests.length - requestsBefore).toBeGreaterThan(0);
      expect(sentToSlack()).toEqual([]);
    } finally {
      // Slack hangs up: every message ends undelivered (the 5 s timeout itself is tested in test/tasks/notify.test.ts).
      hung = slack.requests.length - requestsBefore;
      slack.answer = 500;
      slack.hangUp();
    }
    await waitFor('every hung delivery to end', () => sentToSlack().length >= hung);
    expect(sentToSlack().filter((r) => r.delivered)).toEqual([]);
    error.mockRestore();
  });
});

describe('S3 and build process failures end their state FAILED, cleanly', () => {
  test('S3 failing in the middle of the multipart upload of source.zip fails CombineConfigAndCode with no partial object; redrive completes it', async () => {
    // 9 MiB that does not compress: source.zip goes up as a multipart upload of two parts (8 MiB each at most); part 2 fails.
    const appRepo = join(t.dir, '.stepdeploy', 'example-repos', 'app.git');
    const blob = randomBytes(9 * 1024 * 1024);
    pushCommit(appRepo, 'feature/big-assets', 'blob.bin', blob);
    const name = 'acceptance-fault-s3-combine';
    const key = `artifacts/acceptance/${name}/source.zip`;
    const seen: string[] = [];
    s3Fault = (method, k, query) => {
      if (k !== key) return undefined;
      seen.push(
        `${method}${query.has('partNumber') ? ` part ${query.get('partNumber')}` : query.has('uploads') ? ' create' : query.has('uploadId') ? ' upload' : ''}`,
      );
      return method === 'PUT' && query.get('partNumber') === '2' ? 500 : undefined;
    };

    const failed = await t.run(name, { environment: 'acceptance', branches: { app: 'feature/big-assets' } });

    expect(failed).toMatchObject({ status: 'FAILED', lastTopLevelState: { name: 'CombineConfigAndCode' } });
    expect(seen).toContain('POST create');
    expect(seen).toContain('PUT part 2');
    // The multipart upload was aborted: nothing is visible at the key.
    expect(seen).toContain('DELETE upload');
    expect(await etagOf(t.runtime, key)).toBeUndefined();

    s3Fault = undefined;
    t.runtime.machine.redrive(failed.executionArn);
    const done = await t.runtime.machine.wait(failed.executionArn);

    expect(done.status).toBe('SUCCEEDED');
    const entries = await readZip(await readBytes(t.runtime, key));
    expect(JSON.parse(entries.find((e) => e.name === 'stepdeploy-manifest.json')!.content)).toMatchObject({
      execution: name,
    });
    expect(entries.map((e) => e.name)).toContain('blob.bin');
  }, 60_000);

  test('a killed build shell ends BuildTemplates FAILED within a bound, never hung', async () => {
    const hold = join(t.runtime.home, 'hold-build');
    const pidFile = join(t.runtime.home, 'build.pid');
    rmSync(pidFile, { force: true });
    writeFileSync(hold, '');
    const { executionArn } = t.runtime.machine.start('acceptance-fault-killed-build', { environment: 'acceptance' });
    const pid = await waitFor(
      'the build shell pid',
      () => {
        // Only a whole line: the shell may be writing it.
        const line = existsSync(pidFile) ? /^(\d+)\n$/.exec(readFileSync(pidFile, 'utf8')) : null;
        return line !== null && Number(line[1]) > 1 ? Number(line[1]) : undefined;
      },
      30_000,
    );

    const killedAt = Date.now();
    process.kill(pid, 'SIGKILL');
    rmSync(hold); // lets the orphaned loop of the killed shell end
    const record = await within(
      20_000,
      'the execution after its build shell was killed',
      t.runtime.machine.wait(executionArn),
    );

    expect(record).toMatchObject({
      status: 'FAILED',
      error: 'States.TaskFailed',
      lastTopLevelState: { name: 'BuildTemplates' },
    });
    const build = localBuilds(t.runtime.home).find(
      (b) =>
        b.ProjectName === 'stepdeploy-example-build' &&
        variableOf(b, 'STEPDEPLOY_EXECUTION') === 'acceptance-fault-killed-build',
    )!;
    expect(build.BuildStatus).toBe('FAILED');
    expect(JSON.stringify(build.Phases)).toMatch(/signal SIGKILL/);
    process.stdout.write(`killed build: FAILED ${record.stopDate! - killedAt} ms after the kill\n`);
  }, 60_000);
});
