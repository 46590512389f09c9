import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { runBuild, type ArtifactsSettings, type BuildRequest } from '../../../local/codebuild';
import { startS3rver, type LocalS3 } from '../../helpers/s3rver';
import { makeZip, readZip } from '../../helpers/zip';
import { depsFor, git, makeRepo, outputLines, removeDir, settle, tempDir, writeFile } from './helpers';

const repoFile = (path: string): string => readFileSync(join(__dirname, '../../../', path), 'utf8');
const BUCKET = 'stepdeploy-local-artifacts';

/** The FetchSource state's ArtifactsOverride, as the ASL sends it for source `name`. */
function fetchArtifactsOverride(name: string): ArtifactsSettings {
  const asl = JSON.parse(repoFile('workflows/deploy-pipeline.asl.json')) as {
    States: {
      FetchSources: {
        ItemProcessor: { States: { FetchSource: { Parameters: { ArtifactsOverride: Record<string, unknown> } } } };
      };
    };
  };
  const { 'Path.$': pathExpression, ...fixed } =
    asl.States.FetchSources.ItemProcessor.States.FetchSource.Parameters.ArtifactsOverride;
  expect(pathExpression).toBe("States.Format('sources/{}', $.source.name)");
  return { ...fixed, Location: BUCKET, Path: `sources/${name}` } as unknown as ArtifactsSettings;
}

let s3: LocalS3;
let root: string;
beforeAll(async () => {
  s3 = await startS3rver({ buckets: [BUCKET] });
});
afterAll(async () => s3.stop());
beforeEach(() => {
  root = tempDir('fetch');
});
afterEach(() => removeDir(root));

/** The fetch buildspec on branch develop of `repo`, with these environment variables. */
function fetchDevelopRequest(repo: string, variables: BuildRequest['EnvironmentVariablesOverride']): BuildRequest {
  return {
    ProjectName: 'stepdeploy-fetch',
    project: { name: 'stepdeploy-fetch', buildspec: repoFile('buildspecs/fetch-source.yml') },
    SourceTypeOverride: 'LOCAL_GIT',
    SourceLocationOverride: repo,
    SourceVersion: 'develop',
    ArtifactsOverride: fetchArtifactsOverride('app'),
    EnvironmentVariablesOverride: variables,
  };
}

test('buildspecs/fetch-source.yml snapshots a branch at sources/<source>/<commit>.zip', async () => {
  const repo = join(root, 'app-repo');
  const tips = makeRepo(repo);
  const deps = depsFor(root, { s3: s3.client });
  const req = fetchDevelopRequest(repo, [
    { Name: 'STEPDEPLOY_SOURCE', Type: 'PLAINTEXT', Value: 'app' },
    { Name: 'STEPDEPLOY_BRANCH', Type: 'PLAINTEXT', Value: 'develop' },
    { Name: 'STEPDEPLOY_EXECUTION', Type: 'PLAINTEXT', Value: 'acceptance-20261129T031500-abc123' },
  ]);

  const { Build } = await runBuild(req, deps);

  // What the state's ResultSelector reads.
  expect(Build.Id).toMatch(/^stepdeploy-fetch:/);
  expect(Build.ResolvedSourceVersion).toBe(tips.develop);
  expect(Build.ExportedEnvironmentVariables).toEqual([{ Name: 'STEPDEPLOY_COMMIT', Value: tips.develop }]);
  expect(outputLines(deps.lines)).toContain(`fetched app at develop: commit ${tips.develop}`);
  const key = `sources/app/${tips.develop}.zip`;
  expect(Build.Artifacts).toEqual({ Location: `arn:aws:s3:::${BUCKET}/${key}`, OverrideArtifactName: true });
  const object = await s3.client.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
  const entries = await readZip(
    Buffer.from(await (object.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray()),
  );
  expect(entries.map((e) => e.name).sort()).toEqual(['README.md', 'bin/run.sh', 'develop.txt']);
  expect(entries.find((e) => e.name === 'bin/run.sh')?.mode).toBe(0o100755);
});

test('buildspecs/fetch-source.yml snapshots the checkout, as CodeBuild does: .gitattributes eol and ident apply, export-ignore does not', async () => {
  const repo = join(root, 'app-repo');
  makeRepo(repo);
  git(repo, 'checkout', '-q', 'develop');
  writeFile(join(repo, '.gitattributes'), 'crlf.txt text eol=crlf\nid.txt ident\nlocal-only.txt export-ignore\n');
  writeFile(join(repo, 'crlf.txt'), 'a\nb\n');
  writeFile(join(repo, 'id.txt'), '$Id$\n');
  writeFile(join(repo, 'local-only.txt'), 'shipped\n');
  git(repo, 'add', '-A');
  git(repo, 'commit', '-q', '-m', 'attributes');
  const commit = git(repo, 'rev-parse', 'HEAD');
  const deps = depsFor(root, { s3: s3.client });

  await runBuild(fetchDevelopRequest(repo, [{ Name: 'STEPDEPLOY_SOURCE', Type: 'PLAINTEXT', Value: 'app' }]), deps);

  const object = await s3.client.send(new GetObjectCommand({ Bucket: BUCKET, Key: `sources/app/${commit}.zip` }));
  const entries = await readZip(
    Buffer.from(await (object.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray()),
  );
  const content = (name: string): string | undefined => entries.find((e) => e.name === name)?.content;
  expect(content('crlf.txt')).toBe('a\r\nb\r\n');
  expect(content('id.txt')).toBe(`$Id: ${git(repo, 'rev-parse', 'HEAD:id.txt')} $\n`);
  expect(content('local-only.txt')).toBe('shipped\n');
});

describe('buildspecs/fetch-source.yml fails, naming the paths, on what a snapshot cannot hold as git has it', () => {
  /** Runs the fetch buildspec on branch develop of `repo`; answers the build and its output. */
  async function fetchDevelop(repo: string): Promise<{ status: string; output: string }> {
    const deps = depsFor(root, { s3: s3.client });
    const build = await settle(
      fetchDevelopRequest(repo, [
        { Name: 'STEPDEPLOY_SOURCE', Type: 'PLAINTEXT', Value: 'app' },
        { Name: 'STEPDEPLOY_BRANCH', Type: 'PLAINTEXT', Value: 'develop' },
      ]),
      deps,
    );
    return { status: build.BuildStatus, output: deps.lines.join('\n') };
  }

  test('a submodule (a gitlink, which would ship as nothing)', async () => {
    const repo = join(root, 'app-repo');
    const tips = makeRepo(repo);
    git(repo, 'checkout', '-q', 'develop');
    git(repo, 'update-index', '--add', '--cacheinfo', `160000,${tips.main},vendor/lib`);
    git(repo, 'commit', '-q', '-m', 'submodule');

    const { status, output } = await fetchDevelop(repo);

    expect(status).toBe('FAILED');
    expect(output).toContain('source app has git submodules, which a deployment does not fetch: vendor/lib');
    expect(output).toContain('vendor their files into the repository, or remove the submodules');
  });

  test('a Git LFS file (which would ship as its pointer text)', async () => {
    const repo = join(root, 'app-repo');
    makeRepo(repo);
    git(repo, 'checkout', '-q', 'develop');
    writeFile(join(repo, '.gitattributes'), '*.bin filter=lfs diff=lfs merge=lfs -text\n');
    writeFile(join(repo, 'assets/logo.bin'), 'version https://git-lfs.github.com/spec/v1\noid sha256:00\nsize 3\n');
    git(repo, 'add', '-A');
    git(repo, 'commit', '-q', '-m', 'lfs');

    const { status, output } = await fetchDevelop(repo);

    expect(status).toBe('FAILED');
    expect(output).toContain('source app has Git LFS files, which would ship as pointer text: assets/logo.bin');
  });

  test('a file name that is not UTF-8 (a zip entry name and S3 key cannot hold it as git has it)', async () => {
    const repo = join(root, 'app-repo');
    makeRepo(repo);
    git(repo, 'checkout', '-q', 'develop');
    mkdirSync(join(repo, 'docs'));
    writeFileSync(
      Buffer.concat([Buffer.from(`${repo}/docs/caf`), Buffer.from([0xe9]), Buffer.from('.txt')]),
      'latin-1\n',
    );
    git(repo, 'add', '-A');
    git(repo, 'commit', '-q', '-m', 'latin-1 name');

    const { status, output } = await fetchDevelop(repo);

    expect(status).toBe('FAILED');
    expect(output).toContain("source app has file names that are not UTF-8: $'docs/caf\\351.txt'");
    expect(output).toContain('rename them (git mv) to UTF-8 names');
  });

  test('a file name with a backslash (zip tools would make it a folder)', async () => {
    const repo = join(root, 'app-repo');
    makeRepo(repo);
    git(repo, 'checkout', '-q', 'develop');
    writeFile(join(repo, 'lib/a\\b.txt'), 'one file\n');
    git(repo, 'add', '-A');
    git(repo, 'commit', '-q', '-m', 'backslash');

    const { status, output } = await fetchDevelop(repo);

    expect(status).toBe('FAILED');
    expect(output).toContain(
      'source app has file names with a backslash, which zip tools read as a folder separator: lib/a\\b.txt',
    );
    expect(output).toContain('rename them without a backslash');
  });

  test('a path too long to check out under the build folder', async () => {
    const repo = join(root, 'app-repo');
    makeRepo(repo);
    git(repo, 'checkout', '-q', 'develop');
    const deep = Array.from({ length: 16 }, (_, i) => `${String(i).padStart(2, '0')}${'d'.repeat(250)}`).join('/');
    writeFileSync(join(root, 'blob'), 'deep\n');
    const long = git(repo, 'hash-object', '-w', join(root, 'blob'));
    git(repo, 'update-index', '--add', '--cacheinfo', `100644,${long},${deep}/f.txt`);
    git(repo, 'commit', '-q', '-m', 'long path');

    const { status, output } = await fetchDevelop(repo);

    expect(status).toBe('FAILED');
    expect(output).toMatch(
      /source app has a path too long for the build machine \(at most \d+ bytes under \S+\): 00d{58}\.\.\. \(4053 bytes\)/,
    );
    expect(output).toContain('shorten those paths');
  });
});

test('buildspecs/build.yml runs the app entry point on an S3 source and uploads build.zip', async () => {
  const source = await makeZip([
    { name: 'stepdeploy-manifest.json', content: '{"environment":"acceptance"}\n' },
    {
      name: 'stepdeploy/build',
      content: '#!/bin/sh\nmkdir -p out && echo "rendered for $1" > out/template.txt\n',
      mode: 0o100755,
    },
  ]);
  await s3.client.send(
    new PutObjectCommand({ Bucket: BUCKET, Key: 'artifacts/acceptance/x/source.zip', Body: source }),
  );
  const deps = depsFor(root, { s3: s3.client });
  const req: BuildRequest = {
    ProjectName: 'stepdeploy-build',
    project: { name: 'stepdeploy-build', buildspec: repoFile('buildspecs/build.yml') },
    SourceTypeOverride: 'S3',
    SourceLocationOverride: `${BUCKET}/artifacts/acceptance/x/source.zip`,
    ArtifactsOverride: {
      Type: 'S3',
      Location: BUCKET,
      Path: 'artifacts/acceptance/x',
      Name: 'build.zip',
      Packaging: 'ZIP',
      NamespaceType: 'NONE',
    },
    EnvironmentVariablesOverride: [{ Name: 'ENVIRONMENT', Type: 'PLAINTEXT', Value: 'acceptance' }],
  };

  const { Build } = await runBuild(req, deps);

  expect(Build.Artifacts?.Location).toBe(`arn:aws:s3:::${BUCKET}/artifacts/acceptance/x/build.zip`);
  const object = await s3.client.send(
    new GetObjectCommand({ Bucket: BUCKET, Key: 'artifacts/acceptance/x/build.zip' }),
  );
  const entries = await readZip(
    Buffer.from(await (object.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray()),
  );
  expect(entries.find((e) => e.name === 'out/template.txt')?.content).toBe('rendered for acceptance\n');
  expect(entries.find((e) => e.name === 'stepdeploy/build')?.mode).toBe(0o100755);
});
