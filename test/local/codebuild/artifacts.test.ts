import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { buffer as streamBuffer } from 'node:stream/consumers';
import { GetObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import * as yauzl from 'yauzl';
import { collectArtifactFiles, compresses, SAMPLED_FILE_BYTES, writeZip } from '../../../local/codebuild/artifacts';
import { extractZip } from '../../../local/codebuild/sources';
import { runBuild, type ArtifactsSettings, type BuildRequest } from '../../../local/codebuild';
import { localS3Client, startLocalS3 } from '../../../local/s3';
import { startS3rver, type LocalS3 } from '../../helpers/s3rver';
import { readZip, unzipTest } from '../../helpers/zip';
import { depsFor, removeDir, settle, tempDir } from './helpers';

const BUCKET = 'stepdeploy-artifacts';

// The build writes this tree, then each test selects from it with its own artifacts section.
const MAKE_TREE = `version: 0.2
env:
  shell: bash
  exported-variables: [VERSION]
phases:
  build:
    commands:
      - mkdir -p out/app/lib out/docs .git/objects node_modules/x
      - printf 'app\\n' > out/app/main.js
      - printf '#!/bin/sh\\n' > out/app/run.sh && chmod 755 out/app/run.sh
      - printf 'lib\\n' > out/app/lib/util.js
      - printf 'doc\\n' > out/docs/readme.md
      - printf 'x\\n' > .git/objects/abc
      - printf 'x\\n' > node_modules/x/index.js
      - printf 'hidden\\n' > out/.env
      - export VERSION=1.2.3
`;

let s3: LocalS3;
let root: string;
beforeAll(async () => {
  s3 = await startS3rver({ buckets: [BUCKET] });
});
afterAll(async () => s3.stop());
beforeEach(() => {
  root = tempDir('artifacts');
});
afterEach(() => removeDir(root));

const withArtifacts = (section: string, artifacts: ArtifactsSettings): BuildRequest => {
  const buildspec = `${MAKE_TREE}artifacts:\n${section}`;
  return { ProjectName: 'arts', project: { name: 'arts', buildspec }, ArtifactsOverride: artifacts };
};

const zipSettings = (extra: Partial<ArtifactsSettings> = {}): ArtifactsSettings => ({
  Type: 'S3',
  Location: BUCKET,
  Path: 'builds/one',
  Name: 'output.zip',
  Packaging: 'ZIP',
  NamespaceType: 'NONE',
  ...extra,
});

async function zipAt(key: string): Promise<Array<{ name: string; mode: number; content: string }>> {
  const object = await s3.client.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
  return readZip(
    Buffer.from(await (object.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray()),
  );
}

describe('artifacts', () => {
  test('files with exclude-paths, zipped to Location/Path/Name with modes kept', async () => {
    const deps = depsFor(root, { s3: s3.client });
    const section = "  files:\n    - '**/*'\n  exclude-paths:\n    - '.git/**/*'\n    - 'node_modules/**/*'\n";

    const { Build } = await runBuild(withArtifacts(section, zipSettings()), deps);

    expect(Build.Artifacts).toEqual({ Location: `arn:aws:s3:::${BUCKET}/builds/one/output.zip` });
    const entries = await zipAt('builds/one/output.zip');
    expect(entries.map((e) => e.name).sort()).toEqual([
      'out/.env',
      'out/app/lib/util.js',
      'out/app/main.js',
      'out/app/run.sh',
      'out/docs/readme.md',
    ]);
    expect(entries.find((e) => e.name === 'out/app/run.sh')?.mode).toBe(0o100755);
  });

  test('base-directory drops the directory itself; files globs are relative to it', async () => {
    const deps = depsFor(root, { s3: s3.client });
    const section = "  base-directory: out\n  files:\n    - 'app/**/*'\n";

    await runBuild(withArtifacts(section, zipSettings()), deps);

    expect((await zipAt('builds/one/output.zip')).map((e) => e.name).sort()).toEqual([
      'app/lib/util.js',
      'app/main.js',
      'app/run.sh',
    ]);
  });

  test('a base-directory glob selects top-level directories; discard-paths flattens', async () => {
    const deps = depsFor(root, { s3: s3.client });
    const section = "  base-directory: 'ou*'\n  discard-paths: yes\n  files:\n    - '**/*.js'\n    - 'docs/*'\n";

    await runBuild(withArtifacts(section, zipSettings()), deps);

    expect((await zipAt('builds/one/output.zip')).map((e) => e.name).sort()).toEqual([
      'main.js',
      'readme.md',
      'util.js',
    ]);
  });

  test('name from the buildspec, expanded from the final environment, when OverrideArtifactName is set', async () => {
    const deps = depsFor(root, { s3: s3.client });
    const section = "  files:\n    - 'out/docs/*'\n  name: release-$VERSION-${CODEBUILD_BUILD_NUMBER}.zip\n";

    const { Build } = await runBuild(withArtifacts(section, zipSettings({ OverrideArtifactName: true })), deps);

    expect(Build.Artifacts?.Location).toBe(`arn:aws:s3:::${BUCKET}/builds/one/release-1.2.3-1.zip`);
    expect((await zipAt('builds/one/release-1.2.3-1.zip')).map((e) => e.content)).toEqual(['doc\n']);
  });

  test('the override Name is used when OverrideArtifactName is not set; NamespaceType BUILD_ID adds the build uuid', async () => {
    const deps = depsFor(root, { s3: s3.client });
    const section = "  files:\n    - 'out/docs/*'\n  name: ignored.zip\n";

    const { Build } = await runBuild(withArtifacts(section, zipSettings({ NamespaceType: 'BUILD_ID' })), deps);

    const uuid = Build.Id.split(':')[1];
    expect(Build.Artifacts?.Location).toBe(`arn:aws:s3:::${BUCKET}/builds/one/${uuid}/output.zip`);
  });

  test.each([
    [1, 'SUCCEEDED'],
    [3, 'FAILED'],
  ])(
    'an artifact PUT that S3 fails %i time(s) with 500 is sent again with a new file stream, up to 3 attempts: %s',
    async (failures, status) => {
      const dir = tempDir('faulty-s3');
      let failed = 0;
      const faulty = await startLocalS3({
        directory: dir,
        buckets: [BUCKET],
        fault: (method, _bucket, key) => {
          if (method !== 'PUT' || key !== 'builds/one/output.zip' || failed >= failures) return undefined;
          failed++;
          return 500;
        },
      });
      const client = localS3Client(faulty.endpoint);
      try {
        const build = await settle(
          withArtifacts("  files:\n    - 'out/docs/*'\n", zipSettings()),
          depsFor(root, { s3: client }),
        );
        expect(failed).toBe(failures);
        expect(build.BuildStatus).toBe(status);
        const upload = build.Phases.find((p) => p.PhaseType === 'UPLOAD_ARTIFACTS');
        if (status === 'SUCCEEDED') {
          const object = await client.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'builds/one/output.zip' }));
          expect((await readZip(Buffer.from(await object.Body!.transformToByteArray()))).map((e) => e.content)).toEqual(
            ['doc\n'],
          );
        } else {
          expect(upload?.PhaseStatus).toBe('FAILED');
        }
      } finally {
        client.destroy();
        await faulty.close();
        removeDir(dir);
      }
    },
  );

  test('Packaging NONE uploads the files one by one under Path/Name', async () => {
    const deps = depsFor(root, { s3: s3.client });
    const section = "  base-directory: out/docs\n  files:\n    - '*'\n";

    await runBuild(withArtifacts(section, zipSettings({ Packaging: 'NONE', Name: 'site' })), deps);

    const listed = await s3.client.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: 'builds/one/site/' }));
    expect(listed.Contents?.map((o) => o.Key)).toEqual(['builds/one/site/readme.md']);
  });

  test('no artifacts are uploaded when the project has none', async () => {
    const deps = depsFor(root, { s3: s3.client });

    const { Build } = await runBuild(withArtifacts("  files:\n    - '**/*'\n", { Type: 'NO_ARTIFACTS' }), deps);

    expect(Build.Artifacts).toBeUndefined();
  });

  test('fails UPLOAD_ARTIFACTS when nothing matches', async () => {
    const build = await settle(
      withArtifacts("  files:\n    - 'nothing/**/*'\n", zipSettings()),
      depsFor(root, { s3: s3.client }),
    );

    expect(build.BuildStatus).toBe('FAILED');
    expect(build.Phases.find((p) => p.PhaseType === 'UPLOAD_ARTIFACTS')?.Contexts?.[0]).toEqual({
      StatusCode: 'CLIENT_ERROR',
      Message: expect.stringContaining('no matching artifact paths found'),
    });
  });

  test('fails on command substitution in the name instead of running it', async () => {
    const section = "  files:\n    - 'out/docs/*'\n  name: x-$(touch canary).zip\n";

    const build = await settle(
      withArtifacts(section, zipSettings({ OverrideArtifactName: true })),
      depsFor(root, { s3: s3.client }),
    );

    expect(build.Phases.find((p) => p.PhaseType === 'UPLOAD_ARTIFACTS')?.Contexts?.[0]?.Message).toContain(
      'command substitution is not run locally',
    );
  });

  test('fails when discard-paths would put two files under one name', async () => {
    const buildspec =
      'version: 0.2\nphases:\n  build:\n    commands:\n      - mkdir a b && touch a/x b/x\n' +
      "artifacts:\n  discard-paths: yes\n  files:\n    - '*/x'\n";
    const req: BuildRequest = {
      ProjectName: 'arts',
      project: { name: 'arts', buildspec },
      ArtifactsOverride: zipSettings(),
    };

    const build = await settle(req, depsFor(root, { s3: s3.client }));

    expect(build.Phases.find((p) => p.PhaseType === 'UPLOAD_ARTIFACTS')?.Contexts?.[0]?.Message).toContain(
      'the same name "x"',
    );
  });
});

describe('writeZip', () => {
  test('stores a large file that does not compress, deflates the rest, and both read back intact', async () => {
    const dir = tempDir('zip');
    try {
      const random = randomBytes(2 * 1024 * 1024);
      const text = Buffer.from('resource "aws_s3_bucket" "b" {}\n'.repeat(70_000));
      const smallRandom = randomBytes(64 * 1024);
      writeFileSync(join(dir, 'blob.bin'), random);
      writeFileSync(join(dir, 'main.tf'), text);
      writeFileSync(join(dir, 'small.bin'), smallRandom);
      const files = ['blob.bin', 'main.tf', 'small.bin'].map((name) => ({ name, path: join(dir, name) }));

      await writeZip(files, join(dir, 'out.zip'));

      const zipBuffer = readFileSync(join(dir, 'out.zip'));
      const methods = Object.fromEntries((await zipEntries(zipBuffer)).map((e) => [e.fileName, e.compressionMethod]));
      const contents = Object.fromEntries((await readZipBuffers(zipBuffer)).map((e) => [e.name, e.content]));
      // 0 = stored, 8 = deflated. Files under 1 MiB are deflated without sampling (it would cost more
      // than it saves), then stored when deflate did not make them smaller, as random bytes.
      expect(methods).toEqual({ 'blob.bin': 0, 'main.tf': 8, 'small.bin': 0 });
      expect(contents['blob.bin']!.equals(random)).toBe(true);
      expect(contents['main.tf']!.equals(text)).toBe(true);
      expect(contents['small.bin']!.equals(smallRandom)).toBe(true);
      expect(compresses(join(dir, 'main.tf'), text.length)).toBe(true);
      expect(compresses(join(dir, 'blob.bin'), random.length)).toBe(false);
    } finally {
      removeDir(dir);
    }
  });

  test('many files of mixed sizes through a small window: every entry in the order given, byte for byte', async () => {
    const dir = tempDir('zip');
    try {
      // Batches of small files finish long before a large file deflated into a temporary file,
      // and a random large file is checksummed in a pass of its own: they complete out of order.
      const contents = new Map<string, Buffer>();
      for (let i = 0; i < 120; i++) {
        const size = [0, 1, 700, 5_000, 40_000, 150_000][i % 6] as number;
        contents.set(
          `d${String(i % 7)}/f${String(i).padStart(3, '0')}.txt`,
          Buffer.from(randomBytes(size).toString('base64').slice(0, size)),
        );
      }
      contents.set('d3/large-text.txt', Buffer.from('locals { x = 1 }\n'.repeat(200_000)));
      contents.set('d5/large-random.bin', randomBytes(SAMPLED_FILE_BYTES + 12_345));
      contents.set('d0/large-text-2.txt', Buffer.from('output "y" {}\n'.repeat(90_000)));
      for (const [name, content] of contents) {
        mkdirSync(join(dir, 'src', name, '..'), { recursive: true });
        writeFileSync(join(dir, 'src', name), content);
      }
      const files = collectArtifactFiles(join(dir, 'src'), { files: ['**/*'], discardPaths: false, excludePaths: [] });

      await writeZip(files, join(dir, 'out.zip'), { window: 3, windowBytes: 64 * 1024 });

      const zipBuffer = readFileSync(join(dir, 'out.zip'));
      const read = await readZipBuffers(zipBuffer);
      expect(read.map((e) => e.name)).toEqual(files.map((f) => f.name));
      for (const { name, content } of read) expect(content.equals(contents.get(name) as Buffer)).toBe(true);
      const methods = Object.fromEntries((await zipEntries(zipBuffer)).map((e) => [e.fileName, e.compressionMethod]));
      expect([methods['d3/large-text.txt'], methods['d0/large-text-2.txt'], methods['d5/large-random.bin']]).toEqual([
        8, 8, 0,
      ]);
      expect(methods['d0/f000.txt']).toBe(0);
      expect(methods['d4/f004.txt']).toBe(8);
      unzipTest(join(dir, 'out.zip'));
    } finally {
      removeDir(dir);
    }
  });

  test('an empty file, a symlink and exec bits read back as they were, mtimes included, with unzip and extractZip', async () => {
    const dir = tempDir('zip');
    try {
      const src = join(dir, 'src');
      mkdirSync(join(src, 'bin'), { recursive: true });
      writeFileSync(join(src, 'bin', 'deploy.sh'), '#!/bin/sh\necho deploy\n');
      chmodSync(join(src, 'bin', 'deploy.sh'), 0o755);
      writeFileSync(join(src, 'empty'), '');
      writeFileSync(join(src, 'settings.yml'), 'replicas: 2\n');
      symlinkSync('settings.yml', join(src, 'current.yml'));
      const mtime = new Date(2024, 2, 4, 5, 6, 8);
      utimesSync(join(src, 'settings.yml'), mtime, mtime);
      const files = collectArtifactFiles(src, { files: ['**/*'], discardPaths: false, excludePaths: [] });

      await writeZip(files, join(dir, 'out.zip'));

      const entries = await zipEntries(readFileSync(join(dir, 'out.zip')));
      const byName = Object.fromEntries(entries.map((e) => [e.fileName, e]));
      expect(entries.map((e) => e.fileName)).toEqual(['bin/deploy.sh', 'current.yml', 'empty', 'settings.yml']);
      expect(byName['bin/deploy.sh']!.externalFileAttributes >>> 16).toBe(0o100755);
      expect(byName['current.yml']!.externalFileAttributes >>> 16).toBe(0o120777);
      expect(byName['settings.yml']!.externalFileAttributes >>> 16).toBe(0o100644);
      expect(byName.empty!.uncompressedSize).toBe(0);
      expect(byName['settings.yml']!.getLastModDate()).toEqual(mtime);
      unzipTest(join(dir, 'out.zip'));
      const out = join(dir, 'extracted');
      mkdirSync(out);
      await extractZip(join(dir, 'out.zip'), out);
      expect(readlinkSync(join(out, 'current.yml'))).toBe('settings.yml');
      expect(lstatSync(join(out, 'bin', 'deploy.sh')).mode & 0o777).toBe(0o755);
      expect(readFileSync(join(out, 'empty'))).toHaveLength(0);
      expect(readFileSync(join(out, 'current.yml'), 'utf8')).toBe('replicas: 2\n');
    } finally {
      removeDir(dir);
    }
  });

  test.each([
    ['a small file deleted', 10, rmSync],
    ['a large file deleted', SAMPLED_FILE_BYTES + 1, rmSync],
    // Stat'ed fine, then unreadable: the error comes back from the worker that reads it.
    [
      'a small file replaced by a folder',
      10,
      (path: string) => {
        rmSync(path);
        mkdirSync(path);
      },
    ],
  ])('fails naming %s after the files were collected, and leaves no zip behind', async (_what, size, spoil) => {
    const dir = tempDir('zip');
    try {
      const src = join(dir, 'src');
      mkdirSync(src);
      for (let i = 0; i < 200; i++) writeFileSync(join(src, `f${String(i).padStart(3, '0')}.txt`), `file ${i}\n`);
      writeFileSync(join(src, 'f100-spoilt.txt'), Buffer.alloc(size, 'x'));
      const files = collectArtifactFiles(src, { files: ['**/*'], discardPaths: false, excludePaths: [] });
      spoil(join(src, 'f100-spoilt.txt'));

      const zipping = writeZip(files, join(dir, 'out.zip'), { window: 2 });

      await expect(zipping).rejects.toMatchObject({
        name: 'ArtifactsError',
        message: expect.stringContaining('"f100-spoilt.txt"'),
      });
      expect(existsSync(join(dir, 'out.zip'))).toBe(false);
      expect(readdirSync(dir)).toEqual(['src']);
    } finally {
      removeDir(dir);
    }
  });

  test('fails with an ArtifactsError when the zip cannot be written, and leaves what is at its path', async () => {
    const dir = tempDir('zip');
    try {
      writeFileSync(join(dir, 'a.txt'), 'a\n');
      mkdirSync(join(dir, 'out.zip'));

      const zipping = writeZip([{ name: 'a.txt', path: join(dir, 'a.txt') }], join(dir, 'out.zip'));

      await expect(zipping).rejects.toMatchObject({
        name: 'ArtifactsError',
        message: expect.stringContaining('cannot write the artifact zip'),
      });
      expect(lstatSync(join(dir, 'out.zip')).isDirectory()).toBe(true);
      expect(readdirSync(dir).sort()).toEqual(['a.txt', 'out.zip']);
    } finally {
      removeDir(dir);
    }
  });
});

async function zipEntries(buffer: Buffer): Promise<yauzl.Entry[]> {
  const zipfile = await yauzl.fromBufferPromise(buffer, { lazyEntries: true });
  const entries: yauzl.Entry[] = [];
  await new Promise<void>((resolve, reject) => {
    zipfile.on('error', reject).on('end', resolve);
    zipfile.on('entry', (entry: yauzl.Entry) => {
      entries.push(entry);
      zipfile.readEntry();
    });
    zipfile.readEntry();
  });
  return entries;
}

async function readZipBuffers(buffer: Buffer): Promise<Array<{ name: string; content: Buffer }>> {
  const zipfile = await yauzl.fromBufferPromise(buffer, { lazyEntries: true });
  const out: Array<{ name: string; content: Buffer }> = [];
  await new Promise<void>((resolve, reject) => {
    zipfile.on('error', reject).on('end', resolve);
    zipfile.on('entry', (entry: yauzl.Entry) => {
      zipfile
        .openReadStreamPromise(entry)
        .then((stream) => streamBuffer(stream))
        .then((content) => {
          out.push({ name: entry.fileName, content });
          zipfile.readEntry();
        }, reject);
    });
    zipfile.readEntry();
  });
  return out;
}
