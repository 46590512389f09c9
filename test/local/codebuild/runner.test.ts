import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  BuildFailedError,
  BuildRegistry,
  makeStartBuildSyncHandler,
  runBuild,
  startBuild,
  toCodeBuildApiBuild,
  type Build,
} from '../../../local/codebuild';
import { depsFor, outputLines, phaseStatuses, removeDir, request, settle, tempDir } from './helpers';

// Every test here runs real bash through the runner: these are the buildspec v0.2 semantics
// CodeBuild documents, checked end to end.

let root: string;
beforeEach(() => {
  root = tempDir('runner');
});
afterEach(() => removeDir(root));

const spec = (phases: string, env = ''): string => `version: 0.2\nenv:\n  shell: bash\n${env}phases:\n${phases}`;

describe('one shell session per build', () => {
  test('an exported variable persists across commands and phases', async () => {
    const deps = depsFor(root);
    const text = spec(
      `  install:\n    commands:\n      - export GREETING=hello\n` +
        `  build:\n    commands:\n      - export GREETING="$GREETING world"\n      - echo "got $GREETING"\n`,
    );

    await runBuild(request(text), deps);

    expect(outputLines(deps.lines)).toEqual(['got hello world']);
  });

  test('cd persists across commands and phases', async () => {
    const deps = depsFor(root);
    const text = spec(
      `  pre_build:\n    commands:\n      - mkdir -p a/b\n      - cd a\n` +
        `  build:\n    commands:\n      - cd b\n      - pwd\n`,
    );

    const { Build } = await runBuild(request(text), deps);

    const src = join(new BuildRegistry(root).buildDir(Build.Id), 'src');
    expect(outputLines(deps.lines)).toEqual([join(src, 'a/b')]);
  });

  test('an unset variable stays unset, and a command that reads stdin cannot eat the next command', async () => {
    const deps = depsFor(root);
    const text = spec(
      `  build:\n    commands:\n      - export GONE=1\n      - unset GONE\n      - cat\n      - echo "gone=\${GONE-unset}"\n`,
    );

    await runBuild(request(text), deps);

    expect(outputLines(deps.lines)).toEqual(['gone=unset']);
  });

  test('a read-only exported variable does not cost the next commands their environment', async () => {
    const deps = depsFor(root);
    // zzzz_ sorts last among the exported names (byte order and locales alike): from the second
    // command on, when the session holds the read-only variable, its unset is the last one tried, and fails.
    const text = spec(
      `  build:\n    commands:\n      - export zzzz_version=1 GREETING=hello && readonly zzzz_version\n      - 'true'\n` +
        `      - echo "path=\${PATH:+set} greeting=\${GREETING-unset} version=$zzzz_version"\n`,
    );

    await runBuild(request(text), deps);

    expect(outputLines(deps.lines)).toEqual(['path=set greeting=hello version=1']);
  });

  test('env.shell /bin/sh runs the commands with sh, still in one session', async () => {
    const deps = depsFor(root);
    const text =
      'version: 0.2\nenv:\n  shell: /bin/sh\nphases:\n  build:\n    commands:\n' +
      '      - export X=1 && mkdir d && cd d\n      - echo "x=$X dir=$(basename "$PWD")"\n';

    await runBuild(request(text), deps);

    expect(outputLines(deps.lines)).toEqual(['x=1 dir=d']);
  });
});

describe('failures and phase transitions', () => {
  test('fails the phase on a failing command, skips the rest of it, and finally still runs', async () => {
    const deps = depsFor(root);
    const text = spec(
      `  build:\n    commands:\n      - echo one\n      - exit 3\n      - echo skipped\n    finally:\n      - echo cleanup\n`,
    );

    const build = await settle(request(text), deps);

    expect(build.BuildStatus).toBe('FAILED');
    expect(outputLines(deps.lines)).toEqual(['one', 'cleanup']);
    const phase = build.Phases.find((p) => p.PhaseType === 'BUILD');
    expect(phase?.PhaseStatus).toBe('FAILED');
    expect(phase?.Contexts).toEqual([
      {
        StatusCode: 'COMMAND_EXECUTION_ERROR',
        Message: 'Error while executing command: exit 3. Reason: exit status 3',
      },
    ]);
  });

  test('post_build runs after a failed build with CODEBUILD_BUILD_SUCCEEDING=0, and artifacts upload is attempted', async () => {
    const deps = depsFor(root);
    const text = spec(
      `  build:\n    commands:\n      - echo "during build $CODEBUILD_BUILD_SUCCEEDING"\n      - false\n` +
        `  post_build:\n    commands:\n      - echo "post_build $CODEBUILD_BUILD_SUCCEEDING"\n`,
    );

    const build = await settle(request(text), deps);

    expect(outputLines(deps.lines)).toEqual(['during build 1', 'post_build 0']);
    expect(phaseStatuses(build)).toEqual([
      'SUBMITTED:SUCCEEDED',
      'QUEUED:SUCCEEDED',
      'PROVISIONING:SUCCEEDED',
      'DOWNLOAD_SOURCE:SUCCEEDED',
      'INSTALL:SUCCEEDED',
      'PRE_BUILD:SUCCEEDED',
      'BUILD:FAILED',
      'POST_BUILD:SUCCEEDED',
      'UPLOAD_ARTIFACTS:SUCCEEDED',
      'FINALIZING:SUCCEEDED',
      'COMPLETED:-',
    ]);
    expect(build.BuildStatus).toBe('FAILED');
  });

  test('a pre_build failure skips build and post_build (straight to FINALIZING, as the phase transitions show)', async () => {
    const deps = depsFor(root);
    const text = spec(
      `  pre_build:\n    commands:\n      - exit 1\n    finally:\n      - echo pre_build finally\n` +
        `  build:\n    commands:\n      - echo build\n` +
        `  post_build:\n    commands:\n      - echo post_build\n`,
    );

    const build = await settle(request(text), deps);

    expect(outputLines(deps.lines)).toEqual(['pre_build finally']);
    expect(phaseStatuses(build)).toEqual([
      'SUBMITTED:SUCCEEDED',
      'QUEUED:SUCCEEDED',
      'PROVISIONING:SUCCEEDED',
      'DOWNLOAD_SOURCE:SUCCEEDED',
      'INSTALL:SUCCEEDED',
      'PRE_BUILD:FAILED',
      'FINALIZING:SUCCEEDED',
      'COMPLETED:-',
    ]);
  });

  test('an install failure runs none of the later phases', async () => {
    const deps = depsFor(root);
    const text = spec(
      `  install:\n    commands:\n      - exit 1\n  post_build:\n    commands:\n      - echo post_build\n`,
    );

    const build = await settle(request(text), deps);

    expect(outputLines(deps.lines)).toEqual([]);
    expect(build.Phases.map((p) => p.PhaseType)).not.toContain('POST_BUILD');
  });

  test('on-failure: CONTINUE goes on to the next phase, and the build still fails', async () => {
    const deps = depsFor(root);
    const text = spec(
      `  pre_build:\n    on-failure: CONTINUE\n    commands:\n      - exit 1\n` +
        `  build:\n    commands:\n      - echo "build runs, succeeding=$CODEBUILD_BUILD_SUCCEEDING"\n`,
    );

    const build = await settle(request(text), deps);

    expect(outputLines(deps.lines)).toEqual(['build runs, succeeding=0']);
    expect(build.BuildStatus).toBe('FAILED');
  });

  test('on-failure: ABORT in build skips post_build', async () => {
    const deps = depsFor(root);
    const text = spec(
      `  build:\n    on-failure: ABORT\n    commands:\n      - exit 1\n  post_build:\n    commands:\n      - echo post_build\n`,
    );

    const build = await settle(request(text), deps);

    expect(outputLines(deps.lines)).toEqual([]);
    expect(build.Phases.map((p) => p.PhaseType)).not.toContain('POST_BUILD');
  });

  test('a failed build rejects with States.TaskFailed carrying the Build JSON as the cause', async () => {
    const deps = depsFor(root);

    const error = await runBuild(request(spec(`  build:\n    commands:\n      - exit 7\n`)), deps).catch(
      (e: unknown) => e,
    );

    expect(error).toBeInstanceOf(BuildFailedError);
    expect((error as Error).name).toBe('States.TaskFailed');
    expect((error as Error).message).toContain('exit status 7');
    const cause = JSON.parse((error as Error).cause as string) as { Build: Build };
    expect(cause.Build.BuildStatus).toBe('FAILED');
    expect(cause.Build.Id).toBe((error as BuildFailedError).build.Id);
  });

  test('fails the build in DOWNLOAD_SOURCE with YAML_FILE_ERROR on an unsupported buildspec key, running nothing', async () => {
    const deps = depsFor(root);
    const text = spec(`  build:\n    commands:\n      - echo hi\n`, `  secrets-manager:\n    TOKEN: my-secret\n`);

    const build = await settle(request(text), deps);

    const phase = build.Phases.find((p) => p.PhaseType === 'DOWNLOAD_SOURCE');
    expect(phase?.PhaseStatus).toBe('FAILED');
    expect(phase?.Contexts?.[0]?.StatusCode).toBe('YAML_FILE_ERROR');
    expect(phase?.Contexts?.[0]?.Message).toContain('env.secrets-manager');
    expect(outputLines(deps.lines)).toEqual([]);
  });
});

describe('environment', () => {
  test('precedence: StartBuild override > project > buildspec env.variables', async () => {
    const deps = depsFor(root);
    const text = spec(
      `  build:\n    commands:\n      - echo "A=$A B=$B C=$C"\n`,
      `  variables:\n    A: spec\n    B: spec\n    C: spec\n`,
    );
    const project = {
      name: 'env-project',
      buildspec: text,
      environmentVariables: [
        { Name: 'B', Value: 'project' },
        { Name: 'C', Value: 'project' },
      ],
    };

    await runBuild(
      request(text, { project, EnvironmentVariablesOverride: [{ Name: 'C', Type: 'PLAINTEXT', Value: 'override' }] }),
      deps,
    );

    expect(outputLines(deps.lines)).toEqual(['A=spec B=project C=override']);
  });

  test("the parent's AWS credentials and other variables are not visible; HOME and TMPDIR are per build", async () => {
    process.env.AWS_SECRET_ACCESS_KEY = 'parent-secret';
    process.env.STEPDEPLOY_TEST_PARENT_ONLY = 'leak';
    const deps = depsFor(root);
    const text = spec(
      `  build:\n    commands:\n      - echo "secret=\${AWS_SECRET_ACCESS_KEY-none} other=\${STEPDEPLOY_TEST_PARENT_ONLY-none}"\n` +
        `      - echo "home=$HOME"\n      - echo "tmp=$TMPDIR"\n      - env | grep -c parent-secret || true\n`,
    );

    const { Build } = await runBuild(request(text), deps);

    const dir = new BuildRegistry(root).buildDir(Build.Id);
    expect(outputLines(deps.lines)).toEqual([
      'secret=none other=none',
      `home=${join(dir, 'home')}`,
      `tmp=${join(dir, 'tmp')}`,
      '0',
    ]);
    delete process.env.STEPDEPLOY_TEST_PARENT_ONLY;
  });

  test('CODEBUILD_ variables describe the build', async () => {
    const deps = depsFor(root, { region: 'eu-west-1', initiator: 'tester' });
    const names = [
      'CODEBUILD_BUILD_ID',
      'CODEBUILD_BUILD_ARN',
      'CODEBUILD_BUILD_NUMBER',
      'CODEBUILD_SRC_DIR',
      'CODEBUILD_INITIATOR',
      'CODEBUILD_START_TIME',
      'AWS_REGION',
      'AWS_DEFAULT_REGION',
    ];
    const text = spec(`  build:\n    commands:\n${names.map((n) => `      - echo "${n}=$${n}"\n`).join('')}`);

    const { Build } = await runBuild(request(text), deps);

    const src = join(new BuildRegistry(root).buildDir(Build.Id), 'src');
    expect(outputLines(deps.lines)).toEqual([
      `CODEBUILD_BUILD_ID=${Build.Id}`,
      `CODEBUILD_BUILD_ARN=arn:aws:codebuild:eu-west-1:000000000000:build/${Build.Id}`,
      'CODEBUILD_BUILD_NUMBER=1',
      `CODEBUILD_SRC_DIR=${src}`,
      'CODEBUILD_INITIATOR=tester',
      `CODEBUILD_START_TIME=${Build.StartTime}`,
      'AWS_REGION=eu-west-1',
      'AWS_DEFAULT_REGION=eu-west-1',
    ]);
    expect(Build.Id).toMatch(/^test-project:[0-9a-f-]{36}$/);
  });

  test('exported-variables are captured from the end of the build', async () => {
    const deps = depsFor(root);
    const text = spec(
      `  build:\n    commands:\n      - export RESULT=first\n  post_build:\n    commands:\n      - export RESULT="$RESULT-final"\n`,
      `  exported-variables:\n    - RESULT\n    - NEVER_SET\n`,
    );

    const { Build } = await runBuild(request(text), deps);

    expect(Build.ExportedEnvironmentVariables).toEqual([{ Name: 'RESULT', Value: 'first-final' }]);
  });

  test('fails before any build when an override is not PLAINTEXT or uses the CODEBUILD_ prefix', () => {
    const deps = depsFor(root);
    const text = spec(`  build:\n    commands:\n      - true\n`);

    expect(() =>
      startBuild(
        request(text, {
          EnvironmentVariablesOverride: [
            { Name: 'CODEBUILD_X', Value: '1' },
            { Name: 'S', Type: 'SECRETS_MANAGER', Value: 'id' },
          ],
        }),
        deps,
      ),
    ).toThrow(
      expect.objectContaining({
        name: 'CodeBuild.InvalidInputException',
        message: expect.stringMatching(/CODEBUILD_ prefix.*SECRETS_MANAGER/s),
      }),
    );
  });
});

describe('ending a build from outside', () => {
  test('a timeout kills the whole process group and ends TIMED_OUT within the bound', async () => {
    const deps = depsFor(root);
    const text = spec(`  build:\n    commands:\n      - sleep 30 & echo $! > "$HOME/background.pid"; sleep 30\n`);
    const project = { name: 'slow', buildspec: text, timeoutInMinutes: 1 / 60 };
    const started = Date.now();

    const build = await settle(request(text, { project }), deps);

    // A 1 s timeout against 30 s of sleep: anything well under 30 s shows the kill, with slack for a loaded machine.
    expect(Date.now() - started).toBeLessThan(20_000);
    const background = Number(
      readFileSync(join(new BuildRegistry(root).buildDir(build.Id), 'home/background.pid'), 'utf8'),
    );
    await waitFor(() => !isRunning(background), 3000);
    expect(build.BuildStatus).toBe('TIMED_OUT');
    expect(build.Phases.find((p) => p.PhaseType === 'BUILD')).toMatchObject({
      PhaseStatus: 'TIMED_OUT',
      Contexts: [{ StatusCode: 'BUILD_TIMED_OUT', Message: 'Build has timed out. ' }],
    });
  });

  test('stopBuild ends a running build STOPPED', async () => {
    const registry = new BuildRegistry(root);
    const deps = depsFor(root, { registry });
    const text = spec(`  build:\n    commands:\n      - echo started\n      - sleep 30\n`);
    const { build, completion } = startBuild(request(text), deps);
    const settled = completion.then(
      (r) => r.Build,
      (e: BuildFailedError) => e.build,
    );
    await waitFor(() => deps.lines.includes('started'));

    registry.stopBuild(build.Id);

    expect((await settled).BuildStatus).toBe('STOPPED');
  });

  test('fails the build instead of hanging when the shell is SIGKILLed', async () => {
    const deps = depsFor(root);
    const text = spec(
      `  build:\n    commands:\n      - kill -9 $$; sleep 30\n      - echo never\n  post_build:\n    commands:\n      - echo never\n`,
    );
    const started = Date.now();

    const build = await settle(request(text), deps);

    // A hung build would sleep 30 s.
    expect(Date.now() - started).toBeLessThan(20_000);
    expect(build.BuildStatus).toBe('FAILED');
    expect(build.Phases.find((p) => p.PhaseType === 'BUILD')?.Contexts?.[0]?.Message).toMatch(
      /shell ended \(signal SIGKILL\)/,
    );
    expect(outputLines(deps.lines)).toEqual([]);
  });
});

describe('records', () => {
  test('the log file, the listener and the Build agree; the registry answers BatchGetBuilds', async () => {
    const registry = new BuildRegistry(root);
    const progress: string[] = [];
    const deps = depsFor(root, { registry, onProgress: (b) => progress.push(b.CurrentPhase) });

    const { Build } = await runBuild(request(spec(`  build:\n    commands:\n      - echo hello\n`)), deps);

    const log = readFileSync(fileURLToPath(Build.Logs.DeepLink), 'utf8').trimEnd().split('\n');
    expect(log).toEqual(deps.lines);
    expect(log).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^\[Container\] \d{4}\/\d\d\/\d\d \d\d:\d\d:\d\d\.\d{3} Entering phase BUILD$/),
        expect.stringMatching(/Running command echo hello$/),
        'hello',
        expect.stringMatching(/Phase complete: BUILD State: SUCCEEDED$/),
      ]),
    );
    expect(progress).toEqual(expect.arrayContaining(['SUBMITTED', 'DOWNLOAD_SOURCE', 'BUILD', 'COMPLETED']));
    expect(Build).toMatchObject({
      BuildStatus: 'SUCCEEDED',
      BuildComplete: true,
      CurrentPhase: 'COMPLETED',
      BuildNumber: 1,
    });
    expect(existsSync(join(registry.buildDir(Build.Id), 'build.json'))).toBe(true);
    expect(new BuildRegistry(root).batchGetBuilds([Build.Arn, 'test-project:nope'])).toEqual({
      builds: [Build],
      buildsNotFound: ['test-project:nope'],
    });
    expect(toCodeBuildApiBuild(Build)).toMatchObject({
      id: Build.Id,
      buildStatus: 'SUCCEEDED',
      startTime: Build.StartTime / 1000,
    });
  });

  test('build numbers count up per project', async () => {
    const deps = depsFor(root);
    const text = spec(`  build:\n    commands:\n      - true\n`);

    const first = await runBuild(request(text), deps);
    const second = await runBuild(request(text), deps);

    expect([first.Build.BuildNumber, second.Build.BuildNumber]).toEqual([1, 2]);
  });
});

/** Alive and not a zombie (a killed child of a dead parent may wait a while to be reaped). */
function isRunning(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

async function waitFor(condition: () => boolean, timeoutMs = 10000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('makeStartBuildSyncHandler', () => {
  test('runs the project named by ProjectName', async () => {
    const deps = depsFor(root);
    const handler = makeStartBuildSyncHandler(
      { fetch: { name: 'fetch', buildspec: spec(`  build:\n    commands:\n      - echo ran\n`) } },
      deps,
    );

    const { Build } = await handler({ ProjectName: 'fetch' });

    expect(Build.ProjectName).toBe('fetch');
    expect(outputLines(deps.lines)).toEqual(['ran']);
  });

  test('fails with CodeBuild.ResourceNotFoundException for an unknown project', async () => {
    const handler = makeStartBuildSyncHandler({}, depsFor(root));

    await expect(handler({ ProjectName: 'nope' })).rejects.toMatchObject({
      name: 'CodeBuild.ResourceNotFoundException',
    });
  });
});
