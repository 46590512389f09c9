import { join } from 'node:path';
import { runBuild, type BuildRequest } from '../../../local/codebuild';
import { depsFor, makeRepo, removeDir, tempDir } from './helpers';

/**
 * StartBuild's SourceAuthOverride, as FetchSourceThroughConnection sends it: CodeBuild takes one of
 * its SourceAuth types, a connection ARN for CODECONNECTIONS, on BitBucket, GitHub, GitLab and GitLab
 * Self Managed sources; BatchGetBuilds reports it under `source.auth`. The local runner clones a
 * local repository whatever the credential, and refuses what StartBuild would not use.
 */

const CONNECTION = 'arn:aws:codeconnections:eu-west-1:999999999999:connection/0a1b2c3d-4e5f-6789-abcd-ef0123456789';
const SHOW = 'version: 0.2\nphases:\n  build:\n    commands:\n      - "true"\n';

let root: string;
beforeEach(() => {
  root = tempDir('source-auth');
});
afterEach(() => removeDir(root));

function fetchRequest(overrides: Partial<BuildRequest>): BuildRequest {
  const repo = join(root, 'repo');
  makeRepo(repo);
  return {
    ProjectName: 'fetch',
    project: { name: 'fetch', buildspec: SHOW },
    SourceTypeOverride: 'GITHUB',
    SourceLocationOverride: repo,
    SourceVersion: 'main',
    ...overrides,
  };
}

test('a GitHub source with a connection of its own: built, and the build reports it', async () => {
  const { Build } = await runBuild(
    fetchRequest({ SourceAuthOverride: { Type: 'CODECONNECTIONS', Resource: CONNECTION } }),
    depsFor(root),
  );

  expect(Build.BuildStatus).toBe('SUCCEEDED');
  expect(Build.Source).toMatchObject({ Type: 'GITHUB', Auth: { Type: 'CODECONNECTIONS', Resource: CONNECTION } });
});

test.each([
  [
    'a LOCAL_GIT source',
    { SourceTypeOverride: 'LOCAL_GIT', SourceAuthOverride: { Type: 'CODECONNECTIONS', Resource: CONNECTION } },
    'SourceAuthOverride applies to GITHUB, GITLAB, GITLAB_SELF_MANAGED, BITBUCKET sources only, not to a LOCAL_GIT source',
  ],
  [
    'an unknown type',
    { SourceAuthOverride: { Type: 'TOKEN', Resource: CONNECTION } },
    'SourceAuthOverride.Type "TOKEN" is not one of OAUTH, CODECONNECTIONS, SECRETS_MANAGER',
  ],
  [
    'a resource that is no connection',
    { SourceAuthOverride: { Type: 'CODECONNECTIONS', Resource: 'arn:aws:iam::999999999999:role/x' } },
    'SourceAuthOverride.Resource "arn:aws:iam::999999999999:role/x" is not a CodeConnections connection ARN',
  ],
] as const)('refuses %s before any build, as CodeBuild.InvalidInputException', async (_what, overrides, message) => {
  const started = runBuild(fetchRequest(overrides as Partial<BuildRequest>), depsFor(root));

  await expect(started).rejects.toMatchObject({ name: 'CodeBuild.InvalidInputException' });
  await expect(started).rejects.toThrow(message);
});
