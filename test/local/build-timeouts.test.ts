import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { localBuilds, variableOf } from '../helpers/reliability';
import { startExampleRuntime, type TestRuntime } from '../helpers/local-runtime';

/**
 * A local build that runs out of its project's timeout ends TIMED_OUT, as CodeBuild ends it, long
 * before the Task's TimeoutSeconds (which waits for queue + build + a margin). The projects' own
 * timeouts, the stack's: test/local/runtime.test.ts. One runtime per file: the task handlers, loaded
 * in this process, keep the first runtime's config as a Lambda keeps its cold start's.
 */

const BUILD_PROJECT = 'stepdeploy-example-build';

describe('local build timeouts', () => {
  let t: TestRuntime | undefined;
  afterAll(async () => {
    await t?.close();
  });

  test('a build that runs out of its timeout ends TIMED_OUT, and BuildTemplates fails with it', async () => {
    t = await startExampleRuntime(
      (config, dir) => {
        const slow = join(dir, 'slow-build.yml');
        writeFileSync(slow, 'version: 0.2\nphases:\n  build:\n    commands:\n      - sleep 120\n');
        config.buildspecs.build = slow;
      },
      { projectTimeouts: { build: { timeoutInMinutes: 3 / 60 } } },
    );
    const started = Date.now();

    const record = await t.run('acceptance-build-timeout', { environment: 'acceptance' });

    expect(record).toMatchObject({
      status: 'FAILED',
      error: 'States.TaskFailed',
      lastTopLevelState: { name: 'BuildTemplates' },
    });
    expect(JSON.parse(record.cause!)).toMatchObject({ Build: { BuildStatus: 'TIMED_OUT' } });
    const [build] = localBuilds(t.runtime.home).filter(
      (b) => b.ProjectName === BUILD_PROJECT && variableOf(b, 'STEPDEPLOY_EXECUTION') === 'acceptance-build-timeout',
    );
    expect(build!.BuildStatus).toBe('TIMED_OUT');
    expect(build!.Phases.find((p) => p.PhaseType === 'BUILD')).toMatchObject({
      PhaseStatus: 'TIMED_OUT',
      Contexts: [{ StatusCode: 'BUILD_TIMED_OUT', Message: 'Build has timed out. ' }],
    });
    // Ended by the 3-second build timeout, not by the sleep's 120 s.
    expect(Date.now() - started).toBeLessThan(100_000);
  });
});
