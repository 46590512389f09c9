import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { buffer, text } from 'node:stream/consumers';
import { GetObjectCommand, PutObjectCommand, UploadPartCopyCommand, type S3Client } from '@aws-sdk/client-s3';
import * as yauzl from 'yauzl';
import * as yazl from 'yazl';
import { localS3Client, startLocalS3, type LocalS3 } from '../../local/s3';
import { writeArtifact } from '../../tasks/combine-sources/artifact-writer';
import { combineSources, type CombineSourcesDeps } from '../../tasks/combine-sources/combine-sources';
import { PathCollisionError, UnsafeEntryError } from '../../tasks/combine-sources/errors';
import { createManifest } from '../../tasks/combine-sources/manifest';
import type { CombineSourcesEvent, FetchedSource } from '../../tasks/shared/contracts';
import { zipEntries } from '../../tasks/shared/zip';
import { makeZip } from '../helpers/zip';

const BUCKET = 'stepdeploy-copy-snapshot';
const MiB = 1024 * 1024;
const CREATED_AT = new Date('2025-01-01T12:00:05.000Z');

let dir: string;
let server: LocalS3;
let fault: ((method: string, key: string, query: URLSearchParams) => number | undefined) | undefined;
let s3: S3Client;
let configSnapshot: Buffer;
let blob: Buffer;

/** A snapshot as yazl streams it: addReadStream and addFile entries have data descriptors (flag bit 3). */
async function yazlDescriptorZip(extra: ReadonlyArray<{ name: string; content: string; mode?: number }> = []): Promise<Buffer> {
  const file = join(dir, `file-${randomBytes(4).toString('hex')}.txt`);
  writeFileSync(file, 'from a file\n'.repeat(1000));
  const zip = new yazl.ZipFile();
  zip.addEmptyDirectory('bin/', { mode: 0o40755 });
  zip.addBuffer(Buffer.from('#!/bin/sh\nmake\n'), 'bin/build', { mode: 0o100755 });
  zip.addReadStream(Readable.from([blob]), 'assets/blob.bin', { compress: false });
  zip.addReadStream(Readable.from([Buffer.from('# app\n'.repeat(5000))]), 'README.md');
  zip.addFile(file, 'docs/file.txt');
  zip.addBuffer(Buffer.from('ünïcödé\n'), 'docs/ünïcödé.txt');
  for (const e of extra) zip.addBuffer(Buffer.from(e.content), e.name, e.mode === undefined ? {} : { mode: e.mode });
  zip.end();
  const out = await buffer(zip.outputStream);
  rmSync(file);
  return out;
}

/** A snapshot made by Info-ZIP zip: extra fields (UT, ux) in the local headers, no data descriptors. */
function infoZip(): Buffer {
  const tree = mkdtempSync(join(dir, 'tree-'));
  mkdirSync(join(tree, 'bin'));
  mkdirSync(join(tree, 'assets'));
  writeFileSync(join(tree, 'bin', 'build'), '#!/bin/sh\nmake\n');
  chmodSync(join(tree, 'bin', 'build'), 0o755);
  writeFileSync(join(tree, 'assets', 'blob.bin'), blob);
  writeFileSync(join(tree, 'README.md'), '# app\n'.repeat(5000));
  const out = join(dir, `info-${randomBytes(4).toString('hex')}.zip`);
  execFileSync('zip', ['-q', '-r', out, 'bin', 'assets', 'README.md'], { cwd: tree });
  const bytes = readFileSync(out);
  rmSync(out);
  rmSync(tree, { recursive: true, force: true });
  return bytes;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'stepdeploy-copy-snapshot-'));
  server = await startLocalS3({ directory: dir, buckets: [BUCKET], fault: (method, _bucket, key, query) => fault?.(method, key, query) });
  s3 = localS3Client(server.endpoint);
  // Random bytes do not compress: ~12 MiB of entries take 5 MiB in part 1 and a copied part.
  blob = randomBytes(12 * MiB);
  configSnapshot = await makeZip([{ name: 'settings.yml', content: 'replicas: 2\n', mode: 0o100644 }]);
});

afterEach(() => {
  fault = undefined;
  jest.restoreAllMocks();
});

afterAll(async () => {
  s3.destroy();
  await server.close();
  rmSync(dir, { recursive: true, force: true });
});

async function snapshots(app: Buffer): Promise<FetchedSource[]> {
  const [appCommit, configCommit] = [randomBytes(20).toString('hex'), randomBytes(20).toString('hex')];
  const sources: FetchedSource[] = [
    { name: 'app', branch: 'main', path: '.', commit: appCommit, fetchBuildId: 'f:1', snapshotKey: `sources/app/${appCommit}.zip` },
    { name: 'config', branch: 'develop', path: 'config/', commit: configCommit, fetchBuildId: 'f:2', snapshotKey: `sources/config/${configCommit}.zip` },
  ];
  await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: sources[0]!.snapshotKey, Body: app }));
  await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: sources[1]!.snapshotKey, Body: configSnapshot }));
  return sources;
}

function eventFor(execution: string, sources: ReadonlyArray<FetchedSource>): CombineSourcesEvent {
  return { environment: 'acceptance', execution, requestedBy: 'jane', deployRoleArn: 'arn:aws:iam::1:role/d', variables: {}, sources };
}

const keyOf = (execution: string): string => `artifacts/acceptance/${execution}/source.zip`;

interface Combined {
  readonly zip: Buffer;
  readonly commands: string[];
  readonly lines: string[];
}

async function combine(execution: string, sources: ReadonlyArray<FetchedSource>, deps: Partial<CombineSourcesDeps> = {}): Promise<Combined> {
  const lines: string[] = [];
  const send = jest.spyOn(s3, 'send');
  let commands: string[];
  try {
    await combineSources(eventFor(execution, sources), { s3, bucket: BUCKET, now: () => CREATED_AT, log: (l) => lines.push(l), ...deps });
  } finally {
    commands = send.mock.calls.map(([command]) => (command as object).constructor.name);
    send.mockRestore();
  }
  return { zip: await download(keyOf(execution)), commands, lines };
}

async function download(key: string): Promise<Buffer> {
  const out = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
  return Buffer.from(await out.Body!.transformToByteArray());
}

/** What the full combine (download, RawZipWriter) writes for the same event. */
async function fullCombine(execution: string, sources: ReadonlyArray<FetchedSource>): Promise<Buffer> {
  const key = `reference/${execution}/source.zip`;
  const tmp = mkdtempSync(join(dir, 'full-'));
  try {
    await writeArtifact({ s3, bucket: BUCKET, key, manifest: createManifest(eventFor(execution, sources), CREATED_AT), sources, tmpDir: tmp });
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  return download(key);
}

const sha256 = (bytes: Buffer): string => createHash('sha256').update(bytes).digest('hex');

/** Every entry as yauzl reads it, sizes validated, contents inflated. */
async function entriesOf(zip: Buffer): Promise<unknown[]> {
  const zipfile = await yauzl.fromBufferPromise(zip, { lazyEntries: true, autoClose: false, validateEntrySizes: true, strictFileNames: true });
  const entries: unknown[] = [];
  try {
    for await (const e of zipEntries(zipfile)) {
      const folder = e.fileName.endsWith('/');
      const content = folder ? Buffer.alloc(0) : await buffer(await zipfile.openReadStreamPromise(e));
      entries.push({
        name: e.fileName,
        mode: e.externalFileAttributes >>> 16,
        method: e.compressionMethod,
        crc32: e.crc32,
        size: e.uncompressedSize,
        mtime: [e.lastModFileDate, e.lastModFileTime],
        content: folder ? '' : sha256(content),
      });
    }
  } finally {
    zipfile.close();
  }
  return entries;
}

function check(tool: string, args: string[], zip: Buffer): string {
  const file = join(dir, `test-${randomBytes(4).toString('hex')}.zip`);
  writeFileSync(file, zip);
  try {
    return execFileSync(tool, [...args, file], { encoding: 'utf8' });
  } finally {
    rmSync(file);
  }
}

/** The same entries and contents as the full combine, manifest first, and unzip, Python and yauzl accept it. */
async function expectLikeFullCombine(zip: Buffer, execution: string, sources: ReadonlyArray<FetchedSource>): Promise<void> {
  const [mine, reference] = [await entriesOf(zip), await entriesOf(await fullCombine(execution, sources))];
  expect((mine[0] as { name: string }).name).toBe('stepdeploy-manifest.json');
  expect(mine).toEqual(reference);
  expect(check('unzip', ['-t'], zip)).toContain('No errors detected');
  check('python3', ['-m', 'zipfile', '-t'], zip);
  const zipfile = await yauzl.fromBufferPromise(zip, { lazyEntries: true, autoClose: false });
  try {
    const first = (await zipEntries(zipfile).next()).value as yauzl.Entry;
    expect(JSON.parse(await text(await zipfile.openReadStreamPromise(first)))).toEqual(createManifest(eventFor(execution, sources), CREATED_AT));
  } finally {
    zipfile.close();
  }
}

async function flagsOf(zip: Buffer): Promise<number[]> {
  const zipfile = await yauzl.fromBufferPromise(zip, { lazyEntries: true, autoClose: false });
  const flags: number[] = [];
  try {
    for await (const e of zipEntries(zipfile)) flags.push(e.generalPurposeBitFlag);
  } finally {
    zipfile.close();
  }
  return flags;
}

function leftoverUploads(): string[] {
  try {
    return readdirSync(join(dir, BUCKET, '._S3rver_uploads'));
  } catch {
    return [];
  }
}

describe('the first combine copies the "." snapshot inside S3', () => {
  it.each([
    ['a yazl zip with data descriptors', 'yazl', () => yazlDescriptorZip()],
    ['an Info-ZIP zip with extra fields', 'infozip', () => Promise.resolve(infoZip())],
  ])('%s: UploadPartCopy, the full combine\'s entries, a valid zip; a re-run reuses it', async (_, name, make) => {
    const snapshot = await make();
    const flags = await flagsOf(snapshot);
    // What the copied local headers hold: yazl's data descriptors (bit 3), Info-ZIP's extra fields.
    if (name === 'yazl') expect(flags.some((f) => (f & 0x08) !== 0)).toBe(true);
    const sources = await snapshots(snapshot);

    const first = await combine(`${name}-1`, sources);

    expect(first.commands).toContain(UploadPartCopyCommand.name);
    // The snapshot's data is never downloaded: the tail, the directory, part 1's 5 MiB, the config.
    expect(first.commands.filter((c) => c === GetObjectCommand.name).length).toBeLessThanOrEqual(5);
    expect(first.lines).toEqual([expect.stringMatching(new RegExp(`^combine-sources: copied \\d+ bytes of \\d+ entries from snapshot ${sources[0]!.snapshotKey}$`))]);
    await expectLikeFullCombine(first.zip, `${name}-1`, sources);
    expect(leftoverUploads()).toEqual([]);

    const second = await combine(`${name}-2`, sources);

    expect(second.lines).toEqual([expect.stringMatching(new RegExp(`^combine-sources: copied \\d+ bytes of \\d+ entries from artifacts/acceptance/${name}-1/source\\.zip$`))]);
    expect(second.commands).toContain(UploadPartCopyCommand.name);
    await expectLikeFullCombine(second.zip, `${name}-2`, sources);
  });
});

describe('the first combine falls back to the full combine', () => {
  it('when the "." snapshot holds a symlink', async () => {
    const sources = await snapshots(await yazlDescriptorZip([{ name: 'lib/link.yml', content: '../config/settings.yml', mode: 0o120777 }]));

    const first = await combine('symlink', sources);

    expect(first.commands).not.toContain(UploadPartCopyCommand.name);
    expect(first.lines).toEqual([expect.stringContaining('entry "lib/link.yml" is a symlink')]);
    await expectLikeFullCombine(first.zip, 'symlink', sources);
  });

  it('when the "." snapshot is small, without a word', async () => {
    const sources = await snapshots(await makeZip([{ name: 'small.txt', content: 'x' }]));

    const first = await combine('small', sources);

    expect(first.commands).not.toContain(UploadPartCopyCommand.name);
    expect(first.lines).toEqual([]);
    await expectLikeFullCombine(first.zip, 'small', sources);
  });

  it('when a copy fails: the upload is aborted and the full combine writes the artifact', async () => {
    const sources = await snapshots(await yazlDescriptorZip());
    let attempts = 0;
    fault = (method, key, query) => {
      if (attempts === 3 || method !== 'PUT' || !key.endsWith('copy-fails/source.zip') || query.get('partNumber') !== '2') return undefined;
      attempts += 1;
      return 500;
    };

    const first = await combine('copy-fails', sources);

    expect(first.lines).toEqual([expect.stringMatching(/cannot copy snapshot .*copying .* failed/)]);
    await expectLikeFullCombine(first.zip, 'copy-fails', sources);
    expect(leftoverUploads()).toEqual([]);
  });

  it('when an entry name is unsafe: the full combine refuses it as before', async () => {
    const zip = await yazlDescriptorZip([{ name: 'xx/evil.sh', content: 'rm -rf /\n' }]);
    let patched = zip;
    for (let at = patched.indexOf('xx/evil.sh'); at !== -1; at = patched.indexOf('xx/evil.sh', at + 1)) {
      patched = Buffer.concat([patched.subarray(0, at), Buffer.from('..'), patched.subarray(at + 2)]);
    }
    const sources = await snapshots(patched);
    const lines: string[] = [];

    await expect(combineSources(eventFor('unsafe', sources), { s3, bucket: BUCKET, now: () => CREATED_AT, log: (l) => lines.push(l) })).rejects.toBeInstanceOf(UnsafeEntryError);
    expect(lines).toEqual([expect.stringContaining('has an unsafe name')]);
  });

  it('when a path conflicts: the full combine refuses it as before', async () => {
    const sources = await snapshots(await yazlDescriptorZip([{ name: 'config/settings.yml', content: 'replicas: 1\n' }]));
    const lines: string[] = [];

    await expect(combineSources(eventFor('conflict', sources), { s3, bucket: BUCKET, now: () => CREATED_AT, log: (l) => lines.push(l) })).rejects.toBeInstanceOf(PathCollisionError);
    expect(lines).toEqual([expect.stringContaining('PathCollisionError')]);
  });
});
