import { BuildRegistry, type Build } from '../../../local/codebuild';
import { removeDir, tempDir } from './helpers';

/**
 * The local CodeBuild's ListBuildsForProject and StartBuild idempotency token, as the CodeBuild API
 * reference documents them: ids newest first by build number, 100 a page with a nextToken, a
 * sortOrder refused on a project with more than 100 builds; a token answers the build it started
 * for 5 minutes, and the same token with other parameters is a "parameter mismatch" error.
 */

let root: string;
beforeEach(() => {
  root = tempDir('registry');
});
afterEach(() => removeDir(root));

function build(project: string, number: number): Build {
  return {
    Id: `${project}:${String(number).padStart(4, '0')}`,
    Arn: `arn:aws:codebuild:us-east-1:000000000000:build/${project}:${number}`,
    BuildNumber: number,
    StartTime: number,
    CurrentPhase: 'COMPLETED',
    BuildStatus: 'SUCCEEDED',
    BuildComplete: true,
    ProjectName: project,
    Initiator: 'test',
    Source: { Type: 'NO_SOURCE' },
    Phases: [],
    Environment: {
      Type: 'LINUX_CONTAINER',
      Image: 'x',
      ComputeType: 'BUILD_GENERAL1_SMALL',
      PrivilegedMode: false,
      EnvironmentVariables: [],
    },
    Logs: { GroupName: 'g', StreamName: 's', DeepLink: 'file:///x' },
    TimeoutInMinutes: 60,
    QueuedTimeoutInMinutes: 480,
  };
}

describe('ListBuildsForProject', () => {
  test("lists one project's builds, newest first, 100 a page, also those saved before a restart", () => {
    const registry = new BuildRegistry(root);
    for (let n = 1; n <= 130; n++) registry.save(build('app-deploy', n));
    registry.save(build('app-deploy-other', 1));
    const restarted = new BuildRegistry(root);

    const first = restarted.listBuildsForProject('app-deploy');
    const second = restarted.listBuildsForProject('app-deploy', { nextToken: first.nextToken! });

    expect(first.ids).toHaveLength(100);
    expect(first.ids[0]).toBe('app-deploy:0130');
    expect(second).toEqual({
      ids: Array.from({ length: 30 }, (_, i) => `app-deploy:${String(30 - i).padStart(4, '0')}`),
    });
  });

  test('sortOrder ASCENDING orders by build number; on a project with more than 100 builds it is an error, as CodeBuild documents', () => {
    const registry = new BuildRegistry(root);
    for (let n = 1; n <= 3; n++) registry.save(build('small', n));
    for (let n = 1; n <= 101; n++) registry.save(build('large', n));

    expect(registry.listBuildsForProject('small', { sortOrder: 'ASCENDING' }).ids).toEqual([
      'small:0001',
      'small:0002',
      'small:0003',
    ]);
    expect(() => registry.listBuildsForProject('large', { sortOrder: 'DESCENDING' })).toThrow(
      'project large has more than 100 builds: sortOrder cannot be set',
    );
    expect(() => registry.listBuildsForProject('small', { nextToken: 'garbage' })).toThrow(
      'nextToken is not valid: garbage',
    );
  });
});

describe('StartBuild idempotencyToken', () => {
  test('answers the build the token started, for 5 minutes; other parameters with the same token are a parameter mismatch', () => {
    const registry = new BuildRegistry(root);
    const started = build('app-deploy', 1);
    registry.save(started);
    registry.rememberToken('lease-1', '{"projectName":"app-deploy"}', started.Id, 1_000);

    expect(registry.buildForToken('lease-1', '{"projectName":"app-deploy"}', 1_000 + 299_000)?.Id).toBe(started.Id);
    expect(() => registry.buildForToken('lease-1', '{"projectName":"app-deploy","x":1}', 2_000)).toThrow(
      /parameter mismatch/,
    );
    expect(registry.buildForToken('lease-1', '{"projectName":"app-deploy"}', 1_000 + 301_000)).toBeUndefined();
    expect(registry.buildForToken('lease-2', '{"projectName":"app-deploy"}', 2_000)).toBeUndefined();
  });
});
