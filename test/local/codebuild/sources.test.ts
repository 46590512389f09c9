import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { BuildRegistry, runBuild, type BuildRequest } from '../../../local/codebuild';
import { extractZip } from '../../../local/codebuild/sources';
import { startS3rver, type LocalS3 } from '../../helpers/s3rver';
import { makeZip, renameEntry } from '../../helpers/zip';
import { depsFor, makeRepo, outputLines, removeDir, settle, tempDir } from './helpers';

const SHOW = `version: 0.2
env:
  shell: bash
phases:
  build:
    commands:
      - 'echo "resolved=$CODEBUILD_RESOLVED_SOURCE_VERSION version=$CODEBUILD_SOURCE_VERSION"'
      - 'ls'
`;

let root: string;
beforeEach(() => {
  root = tempDir('sources');
});
afterEach(() => removeDir(root));

const gitRequest = (
  repo: string,
  version?: string,
  type: BuildRequest['SourceTypeOverride'] = 'LOCAL_GIT',
): BuildRequest => ({
  ProjectName: 'fetch',
  project: { name: 'fetch', buildspec: SHOW },
  SourceTypeOverride: type,
  SourceLocationOverride: repo,
  ...(version !== undefined ? { SourceVersion: version } : {}),
});

/** `<repo>.git`, a bare clone of the repository. */
function bareClone(repo: string): string {
  execFileSync('git', ['clone', '-q', '--bare', repo, `${repo}.git`]);
  return `${repo}.git`;
}

describe('git sources', () => {
  test.each([
    ['main', 'main'],
    ['develop', 'develop'],
  ] as const)('clones branch %s and resolves its commit', async (branch, tip) => {
    const repo = join(root, 'repo');
    const tips = makeRepo(repo);
    const deps = depsFor(root);

    const { Build } = await runBuild(gitRequest(repo, branch), deps);

    expect(Build.ResolvedSourceVersion).toBe(tips[tip]);
    expect(Build.SourceVersion).toBe(branch);
    const out = outputLines(deps.lines);
    expect(out[0]).toBe(`resolved=${tips[tip]} version=${branch}`);
    expect(out.includes('develop.txt')).toBe(branch === 'develop');
  });

  test('accepts GitHub-type sources located by a file:// URL, and keeps exec bits', async () => {
    const repo = join(root, 'repo');
    const tips = makeRepo(repo);
    const deps = depsFor(root);

    const { Build } = await runBuild(gitRequest(`file://${repo}`, 'main', 'GITHUB'), deps);

    expect(Build.ResolvedSourceVersion).toBe(tips.main);
    const src = join(new BuildRegistry(root).buildDir(Build.Id), 'src');
    expect(statSync(join(src, 'bin/run.sh')).mode & 0o111).not.toBe(0);
  });

  test.each([
    '--upload-pack=touch canary',
    '$(touch canary)',
    '`touch canary`',
    'main;touch canary',
    '-b',
    'a..b',
    'x@{1}',
    'ref.lock',
  ])('fails on the hostile SourceVersion %s without running anything', async (version) => {
    const repo = join(root, 'repo');
    makeRepo(repo);
    const deps = depsFor(root);

    const build = await settle(gitRequest(repo, version), deps);

    expect(build.BuildStatus).toBe('FAILED');
    const phase = build.Phases.find((p) => p.PhaseType === 'DOWNLOAD_SOURCE');
    expect(phase?.Contexts?.[0]).toEqual({
      StatusCode: 'CLIENT_ERROR',
      Message: expect.stringContaining('is not a branch name'),
    });
    expect(existsSync(join(root, 'canary'))).toBe(false);
    expect(existsSync(join(process.cwd(), 'canary'))).toBe(false);
    expect(existsSync(join(repo, 'canary'))).toBe(false);
    expect(outputLines(deps.lines)).toEqual([]);
  });

  test.each([
    ['a work tree', (repo: string): string => repo, (repo: string): string => join(repo, '.git', 'objects')],
    [
      'a bare repository',
      (repo: string): string => bareClone(repo),
      (repo: string): string => join(`${repo}.git`, 'objects'),
    ],
  ] as const)(
    'reads the objects of %s in place (alternates) instead of copying them',
    async (_kind, location, objects) => {
      const repo = join(root, 'repo');
      const tips = makeRepo(repo);
      const deps = depsFor(root);

      const { Build } = await runBuild(gitRequest(location(repo), 'develop'), deps);

      expect(Build.ResolvedSourceVersion).toBe(tips.develop);
      const src = join(new BuildRegistry(root).buildDir(Build.Id), 'src');
      expect(readFileSync(join(src, '.git', 'objects', 'info', 'alternates'), 'utf8')).toBe(`${objects(repo)}\n`);
      // Nothing was copied: no pack, no loose object of the build's own.
      expect(readdirSync(join(src, '.git', 'objects', 'pack'))).toEqual([]);
      expect(readdirSync(join(src, '.git', 'objects')).filter((d) => /^[0-9a-f]{2}$/.test(d))).toEqual([]);
      expect(readFileSync(join(src, 'develop.txt'), 'utf8')).toBe('develop\n');
    },
  );

  test('checks out a commit pinned by its SHA without fetching when it reads the objects in place, shallow as a fetch leaves it', async () => {
    const repo = join(root, 'repo');
    const tips = makeRepo(repo);
    const deps = depsFor(root);

    const { Build } = await runBuild(gitRequest(repo, tips.develop), deps);

    expect(Build.ResolvedSourceVersion).toBe(tips.develop);
    const src = join(new BuildRegistry(root).buildDir(Build.Id), 'src');
    // No fetch ran (it leaves FETCH_HEAD); the checkout is the pinned commit, alone in its history.
    expect(existsSync(join(src, '.git', 'FETCH_HEAD'))).toBe(false);
    expect(readFileSync(join(src, 'develop.txt'), 'utf8')).toBe('develop\n');
    expect(execFileSync('git', ['-C', src, 'log', '--format=%H'], { encoding: 'utf8' }).trim()).toBe(tips.develop);
    expect(outputLines(deps.lines)[0]).toBe(`resolved=${tips.develop} version=${tips.develop}`);
  });

  test('fetches a pinned SHA it does not find in place, and fails naming it when the repository does not have it either', async () => {
    const repo = join(root, 'repo');
    makeRepo(repo);
    const missing = 'f'.repeat(40);

    const build = await settle(gitRequest(repo, missing), depsFor(root));

    expect(build.BuildStatus).toBe('FAILED');
    expect(build.Phases.find((p) => p.PhaseType === 'DOWNLOAD_SOURCE')?.Contexts?.[0]?.Message).toContain(
      `could not fetch "${missing}"`,
    );
  });

  test('copies the objects of a repository whose object store it does not find (a linked work tree)', async () => {
    const repo = join(root, 'repo');
    const tips = makeRepo(repo);
    const linked = join(root, 'linked');
    execFileSync('git', ['-C', repo, 'worktree', 'add', '-q', linked, 'develop']);
    const deps = depsFor(root);

    const { Build } = await runBuild(gitRequest(linked, 'develop'), deps);

    expect(Build.ResolvedSourceVersion).toBe(tips.develop);
    const src = join(new BuildRegistry(root).buildDir(Build.Id), 'src');
    expect(existsSync(join(src, '.git', 'objects', 'info', 'alternates'))).toBe(false);
    // Copied: a small fetch is unpacked into loose objects.
    const own = [
      ...readdirSync(join(src, '.git', 'objects')).filter((d) => /^[0-9a-f]{2}$/.test(d)),
      ...readdirSync(join(src, '.git', 'objects', 'pack')),
    ];
    expect(own.length).toBeGreaterThan(0);
  });

  test('fails with the branch named when it does not exist', async () => {
    const repo = join(root, 'repo');
    makeRepo(repo);

    const build = await settle(gitRequest(repo, 'feature/missing'), depsFor(root));

    expect(build.Phases.find((p) => p.PhaseType === 'DOWNLOAD_SOURCE')?.Contexts?.[0]?.Message).toContain(
      'could not fetch branch "feature/missing"',
    );
  });

  test.each(['https://github.com/org/repo.git', 'git@github.com:org/repo.git', 'ext::sh -c touch% canary'])(
    'fails on the non-local location %s',
    async (location) => {
      const build = await settle(gitRequest(location, 'main', 'GITHUB'), depsFor(root));

      expect(build.Phases.find((p) => p.PhaseType === 'DOWNLOAD_SOURCE')?.Contexts?.[0]?.Message).toContain(
        'clones only local repositories',
      );
    },
  );
});

describe('S3 sources', () => {
  let s3: LocalS3;
  beforeAll(async () => {
    s3 = await startS3rver({ buckets: ['stepdeploy-sources'] });
  });
  afterAll(async () => s3.stop());

  const s3Request = (key: string): BuildRequest => ({
    ProjectName: 'build',
    project: {
      name: 'build',
      buildspec: 'version: 0.2\nphases:\n  build:\n    commands:\n      - ./tool/run.sh\n      - cat data/readme.txt\n',
    },
    SourceTypeOverride: 'S3',
    SourceLocationOverride: `stepdeploy-sources/${key}`,
  });

  test('downloads and extracts the zip, keeping exec bits and symlinks', async () => {
    const zip = await makeZip([
      { name: 'tool/run.sh', content: '#!/bin/sh\necho tool ran\n', mode: 0o100755 },
      { name: 'data/readme.txt', content: 'data\n', mode: 0o100644 },
      { name: 'link.txt', content: 'data/readme.txt', mode: 0o120777 },
    ]);
    await s3.client.send(new PutObjectCommand({ Bucket: 'stepdeploy-sources', Key: 'a/source.zip', Body: zip }));
    const deps = depsFor(root, { s3: s3.client });

    const { Build } = await runBuild(s3Request('a/source.zip'), deps);

    expect(outputLines(deps.lines)).toEqual(['tool ran', 'data']);
    const src = join(new BuildRegistry(root).buildDir(Build.Id), 'src');
    expect(statSync(join(src, 'tool/run.sh')).mode & 0o777).toBe(0o755);
    expect(readFileSync(join(src, 'link.txt'), 'utf8')).toBe('data\n');
    expect(Build.ResolvedSourceVersion).toBeUndefined();
  });

  test.each([
    [
      'a ../ entry',
      async () =>
        renameEntry(await makeZip([{ name: 'ok/xx/xxxevil', content: 'x' }]), 'ok/xx/xxxevil', 'ok/../../evil'),
    ],
    ['a symlink out of the source', async () => makeZip([{ name: 'escape', content: '../../../etc', mode: 0o120777 }])],
  ])('fails on %s (zip-slip)', async (what, makeSlip) => {
    const key = `slip-${what.length}.zip`;
    await s3.client.send(new PutObjectCommand({ Bucket: 'stepdeploy-sources', Key: key, Body: await makeSlip() }));

    const build = await settle(s3Request(key), depsFor(root, { s3: s3.client }));

    expect(build.BuildStatus).toBe('FAILED');
    expect(build.Phases.find((p) => p.PhaseType === 'DOWNLOAD_SOURCE')?.Contexts?.[0]?.Message).toMatch(
      /outside the source directory|invalid relative path/,
    );
    expect(existsSync(join(root, 'builds', 'evil'))).toBe(false);
  });

  test('extracts c:foo.txt, a valid name on Linux, and refuses a name with a backslash instead of making it a folder', async () => {
    const drive = renameEntry(await makeZip([{ name: 'c_foo.txt', content: 'kept\n' }]), 'c_foo.txt', 'c:foo.txt');
    await s3.client.send(new PutObjectCommand({ Bucket: 'stepdeploy-sources', Key: 'drive.zip', Body: drive }));
    const backslash = renameEntry(await makeZip([{ name: 'a_b.txt', content: 'x' }]), 'a_b.txt', 'a\\b.txt');
    await s3.client.send(new PutObjectCommand({ Bucket: 'stepdeploy-sources', Key: 'backslash.zip', Body: backslash }));
    const deps = depsFor(root, { s3: s3.client });
    const request = (key: string): BuildRequest => ({
      ...s3Request(key),
      project: { name: 'build', buildspec: 'version: 0.2\nphases:\n  build:\n    commands:\n      - ls\n' },
    });

    const { Build } = await runBuild(request('drive.zip'), deps);
    const refused = await settle(request('backslash.zip'), depsFor(root, { s3: s3.client }));

    expect(readFileSync(join(new BuildRegistry(root).buildDir(Build.Id), 'src', 'c:foo.txt'), 'utf8')).toBe('kept\n');
    expect(refused.BuildStatus).toBe('FAILED');
    expect(refused.Phases.find((p) => p.PhaseType === 'DOWNLOAD_SOURCE')?.Contexts?.[0]?.Message).toContain(
      'source zip entry "a\\\\b.txt" has a backslash in its name',
    );
  });

  test('fails when the object does not exist', async () => {
    const build = await settle(s3Request('missing.zip'), depsFor(root, { s3: s3.client }));

    expect(build.Phases.find((p) => p.PhaseType === 'DOWNLOAD_SOURCE')?.Contexts?.[0]?.Message).toContain(
      'could not download s3://stepdeploy-sources/missing.zip',
    );
  });
});

describe('extractZip', () => {
  /** The header fields a test changes, in the local header and the central directory record of every entry. */
  function patchEntries(
    zip: Buffer,
    patch: { readonly flags?: number; readonly method?: number; readonly uncompressedSize?: number },
  ): Buffer {
    const out = Buffer.from(zip);
    // Offsets of general purpose flags, compression method and uncompressed size in each record.
    const records = [
      { signature: 0x04034b50, flags: 6, method: 8, size: 22 },
      { signature: 0x02014b50, flags: 8, method: 10, size: 24 },
    ];
    for (let at = 0; at + 4 <= out.length; at++) {
      const record = records.find((r) => out.readUInt32LE(at) === r.signature);
      if (record === undefined) continue;
      if (patch.flags !== undefined)
        out.writeUInt16LE(out.readUInt16LE(at + record.flags) | patch.flags, at + record.flags);
      if (patch.method !== undefined) out.writeUInt16LE(patch.method, at + record.method);
      if (patch.uncompressedSize !== undefined) out.writeUInt32LE(patch.uncompressedSize, at + record.size);
    }
    return out;
  }

  async function extract(zip: Buffer): Promise<string> {
    writeFileSync(join(root, 'source.zip'), zip);
    const dest = join(root, 'src');
    mkdirSync(dest);
    await extractZip(join(root, 'source.zip'), dest);
    return dest;
  }

  test('reads the zip in windows and writes small files without streams: a few file operations, not several per file', async () => {
    const entries = Array.from({ length: 2_000 }, (_, i) => ({
      name: `src/d${Math.floor(i / 100)}/f${i}.txt`,
      content: `file ${i}\n`.repeat(100),
      mode: i % 2 === 0 ? 0o100755 : 0o100644,
    }));
    const zip = await makeZip(entries);
    // Every file operation yauzl's reads, write streams and fs/promises handles go through.
    const fsModule = require('node:fs') as Record<string, unknown>;
    const probe = await open(__filename);
    const handleProto = Object.getPrototypeOf(probe) as Record<string, unknown>;
    await probe.close();
    const spies = [
      ...['open', 'read', 'write', 'writev', 'close'].map((fn) => jest.spyOn(fsModule as never, fn as never)),
      jest.spyOn(handleProto as never, 'read' as never),
    ];

    let dest: string;
    let operations: number;
    try {
      dest = await extract(zip);
      operations = spies.reduce((sum, spy) => sum + spy.mock.calls.length, 0);
    } finally {
      for (const spy of spies) spy.mockRestore();
    }

    // yauzl.open and a write stream per file made 6 per entry (12,003 here): reads of the zip in
    // pieces of a few dozen bytes, and open, write and close of each file on the thread pool.
    expect(operations!).toBeLessThanOrEqual(10);
    expect(readFileSync(join(dest!, 'src/d19/f1999.txt'), 'utf8')).toBe('file 1999\n'.repeat(100));
    expect(statSync(join(dest!, 'src/d0/f0.txt')).mode & 0o777).toBe(0o755);
    expect(statSync(join(dest!, 'src/d0/f1.txt')).mode & 0o777).toBe(0o644);
    expect(readdirSync(join(dest!, 'src'), { recursive: true }).filter((p) => String(p).endsWith('.txt'))).toHaveLength(
      2_000,
    );
  });

  test('streams a file larger than a small entry, content and mode kept', async () => {
    const big = Buffer.alloc(3 * 1024 * 1024, 'stepdeploy ');
    const dest = await extract(await makeZip([{ name: 'big.bin', content: big, mode: 0o100750 }]));

    expect(readFileSync(join(dest, 'big.bin')).equals(big)).toBe(true);
    expect(statSync(join(dest, 'big.bin')).mode & 0o777).toBe(0o750);
  });

  test.each([
    [
      'an entry that inflates to more than it declares',
      { uncompressedSize: 10 },
      'source zip entry "a.txt": inflates to more than its declared 10 bytes',
    ],
    [
      'an entry that declares more than it holds',
      { uncompressedSize: 5_000 },
      'source zip entry "a.txt": holds 4000 bytes, not its declared 5000',
    ],
    [
      'an encrypted entry',
      { flags: 0x1 },
      'source zip entry "a.txt": is encrypted, which this runner does not extract',
    ],
    [
      'an entry compressed with another method',
      { method: 12 },
      'source zip entry "a.txt": uses compression method 12; only stored (0) and deflated (8) are read',
    ],
  ])('refuses %s, naming it', async (_, patch, message) => {
    const zip = patchEntries(await makeZip([{ name: 'a.txt', content: 'x'.repeat(4000) }]), patch);

    await expect(extract(zip)).rejects.toThrow(message);
    expect(existsSync(join(root, 'src', 'a.txt'))).toBe(false);
  });
});
