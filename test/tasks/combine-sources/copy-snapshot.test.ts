import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand, UploadPartCopyCommand } from '@aws-sdk/client-s3';
import * as yauzl from 'yauzl';
import * as yazl from 'yazl';
import { writeArtifact } from '../../../tasks/combine-sources/artifact-writer';
import { combineSources } from '../../../tasks/combine-sources/combine-sources';
import { MAX_COPIED_LINKS } from '../../../tasks/combine-sources/copy-snapshot';
import { PathCollisionError, UnsafeEntryError } from '../../../tasks/combine-sources/errors';
import { createManifest } from '../../../tasks/combine-sources/manifest';
import type { FetchedSource } from '../../../shared/contracts';
import { zipEntries } from '../../../tasks/shared/zip';
import { CombineS3, CREATED_AT, entriesOf, eventFor, manifestOf, MiB } from '../../helpers/combine-s3';
import { makeZip, zipTool } from '../../helpers/zip';

const BUCKET = 'stepdeploy-copy-snapshot';

let fx: CombineS3;
let blob: Buffer;

/** A snapshot as yazl streams it: addReadStream and addFile entries have data descriptors (flag bit 3). */
async function yazlDescriptorZip(
  extra: ReadonlyArray<{ name: string; content: string; mode?: number; compress?: boolean }> = [],
): Promise<Buffer> {
  const file = join(fx.dir, `file-${randomBytes(4).toString('hex')}.txt`);
  writeFileSync(file, 'from a file\n'.repeat(1000));
  const zip = new yazl.ZipFile();
  zip.addEmptyDirectory('bin/', { mode: 0o40755 });
  zip.addBuffer(Buffer.from('#!/bin/sh\nmake\n'), 'bin/build', { mode: 0o100755 });
  zip.addReadStream(Readable.from([blob]), 'assets/blob.bin', { compress: false });
  zip.addReadStream(Readable.from([Buffer.from('# app\n'.repeat(5000))]), 'README.md');
  zip.addFile(file, 'docs/file.txt');
  zip.addBuffer(Buffer.from('ünïcödé\n'), 'docs/ünïcödé.txt');
  for (const e of extra)
    zip.addBuffer(Buffer.from(e.content), e.name, {
      ...(e.mode === undefined ? {} : { mode: e.mode }),
      ...(e.compress === undefined ? {} : { compress: e.compress }),
    });
  zip.end();
  const out = await buffer(zip.outputStream);
  rmSync(file);
  return out;
}

/** A snapshot made by Info-ZIP zip: extra fields (UT, ux) in the local headers, no data descriptors. */
function infoZip(): Buffer {
  const tree = mkdtempSync(join(fx.dir, 'tree-'));
  mkdirSync(join(tree, 'bin'));
  mkdirSync(join(tree, 'assets'));
  writeFileSync(join(tree, 'bin', 'build'), '#!/bin/sh\nmake\n');
  chmodSync(join(tree, 'bin', 'build'), 0o755);
  writeFileSync(join(tree, 'assets', 'blob.bin'), blob);
  writeFileSync(join(tree, 'README.md'), '# app\n'.repeat(5000));
  const out = join(fx.dir, `info-${randomBytes(4).toString('hex')}.zip`);
  zipTool('zip', ['-q', '-r', out, 'bin', 'assets', 'README.md'], { cwd: tree });
  const bytes = readFileSync(out);
  rmSync(out);
  rmSync(tree, { recursive: true, force: true });
  return bytes;
}

beforeAll(async () => {
  fx = await CombineS3.start(BUCKET);
  // Random bytes do not compress: ~12 MiB of entries take 5 MiB in part 1 and a copied part.
  blob = randomBytes(12 * MiB);
});

afterEach(() => fx.reset());

afterAll(() => fx.stop());

/** What the full combine (download, RawZipWriter) writes for the same event. */
async function fullCombine(execution: string, sources: ReadonlyArray<FetchedSource>): Promise<Buffer> {
  const key = `reference/${execution}/source.zip`;
  const tmp = mkdtempSync(join(fx.dir, 'full-'));
  try {
    await writeArtifact({
      s3: fx.s3,
      bucket: BUCKET,
      key,
      manifest: createManifest(eventFor(execution, sources), CREATED_AT),
      sources,
      tmpDir: tmp,
    });
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  return fx.download(key);
}

/** The same entries and contents as the full combine, manifest first, and unzip, Python and yauzl accept it. */
async function expectLikeFullCombine(
  zip: Buffer,
  execution: string,
  sources: ReadonlyArray<FetchedSource>,
): Promise<void> {
  const [mine, reference] = [await entriesOf(zip), await entriesOf(await fullCombine(execution, sources))];
  expect(mine[0]!.name).toBe('stepdeploy-manifest.json');
  expect(mine).toEqual(reference);
  expect(fx.checkZip(zip, { python: true })).toContain('No errors detected');
  expect(await manifestOf(zip)).toEqual(createManifest(eventFor(execution, sources), CREATED_AT));
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

describe('the first combine copies the "." snapshot inside S3', () => {
  it.each([
    ['a yazl zip with data descriptors', 'yazl', () => yazlDescriptorZip()],
    ['an Info-ZIP zip with extra fields', 'infozip', () => Promise.resolve(infoZip())],
  ])("%s: UploadPartCopy, the full combine's entries, a valid zip; a re-run reuses it", async (_, name, make) => {
    const snapshot = await make();
    const flags = await flagsOf(snapshot);
    // What the copied local headers hold: yazl's data descriptors (bit 3), Info-ZIP's extra fields.
    if (name === 'yazl') expect(flags.some((f) => (f & 0x08) !== 0)).toBe(true);
    const sources = await fx.snapshots(snapshot);

    const first = await fx.combine(`${name}-1`, sources);

    expect(first.commands).toContain(UploadPartCopyCommand.name);
    // The snapshot's data is never downloaded: the tail, the directory, part 1's 5 MiB, the config.
    expect(first.commands.filter((c) => c === GetObjectCommand.name).length).toBeLessThanOrEqual(5);
    expect(first.lines).toEqual([
      expect.stringMatching(
        new RegExp(`^combine-sources: copied \\d+ bytes of \\d+ entries from snapshot ${sources[0]!.snapshotKey}$`),
      ),
    ]);
    await expectLikeFullCombine(first.zip, `${name}-1`, sources);
    expect(fx.leftoverUploads()).toEqual([]);

    const second = await fx.combine(`${name}-2`, sources);

    expect(second.lines).toEqual([
      expect.stringMatching(
        new RegExp(
          `^combine-sources: copied \\d+ bytes of \\d+ entries from artifacts/acceptance/${name}-1/source\\.zip$`,
        ),
      ),
    ]);
    expect(second.commands).toContain(UploadPartCopyCommand.name);
    await expectLikeFullCombine(second.zip, `${name}-2`, sources);
  });
});

describe('the first combine copies symlinks that stay inside the artifact', () => {
  it("reads each target with a ranged GET, deflated or stored, and writes the full combine's entries", async () => {
    const sources = await fx.snapshots(
      await yazlDescriptorZip([
        { name: 'lib/link.yml', content: '../README.md', mode: 0o120777 },
        { name: 'lib/stored-link', content: 'link.yml', mode: 0o120777, compress: false },
      ]),
    );

    const first = await fx.combine('links', sources);

    expect(first.commands).toContain(UploadPartCopyCommand.name);
    // As without links (tail, directory, part 1's 5 MiB, config), plus one per link.
    expect(first.commands.filter((c) => c === GetObjectCommand.name).length).toBeLessThanOrEqual(5 + 2);
    expect(first.lines).toEqual([
      expect.stringMatching(/^combine-sources: copied \d+ bytes of \d+ entries from snapshot /),
    ]);
    const links = (await entriesOf(first.zip)).filter((e) => (e.mode & 0o170000) === 0o120000);
    expect(links.map((e) => [e.name, e.method])).toEqual([
      ['lib/link.yml', 8],
      ['lib/stored-link', 0],
    ]);
    await expectLikeFullCombine(first.zip, 'links', sources);
  });

  it('falls back when one leads outside: the full combine refuses it, naming it', async () => {
    const sources = await fx.snapshots(
      await yazlDescriptorZip([{ name: 'lib/escape', content: '../../etc/passwd', mode: 0o120777 }]),
    );

    const lines: string[] = [];

    const attempt = combineSources(eventFor('link-outside', sources), {
      s3: fx.s3,
      bucket: BUCKET,
      now: () => CREATED_AT,
      log: (l) => lines.push(l),
    });

    await expect(attempt).rejects.toThrow(UnsafeEntryError);
    await expect(attempt).rejects.toThrow('symlink "lib/escape" in snapshot');
    expect(lines).toEqual([
      expect.stringContaining(
        'symlink "lib/escape" points outside the artifact (../../etc/passwd)); combining in full',
      ),
    ]);
    expect(fx.leftoverUploads()).toEqual([]);
  });
  it('falls back when links lead outside through one another: the full combine refuses the one that does, naming it', async () => {
    // Each text stays inside; followed, up0 is the root and up1 (= up0/..) is above it.
    const sources = await fx.snapshots(
      await yazlDescriptorZip([
        { name: 'esc/a/up1', content: 'up0/..', mode: 0o120777 },
        { name: 'esc/a/up0', content: '../..', mode: 0o120777 },
      ]),
    );
    const lines: string[] = [];

    const attempt = combineSources(eventFor('link-chain', sources), {
      s3: fx.s3,
      bucket: BUCKET,
      now: () => CREATED_AT,
      log: (l) => lines.push(l),
    });

    await expect(attempt).rejects.toThrow(UnsafeEntryError);
    await expect(attempt).rejects.toThrow(
      'symlink "esc/a/up1" (source "app") points outside the artifact through other links (it resolves to ..)',
    );
    expect(lines).toEqual([
      expect.stringContaining(
        'symlink "esc/a/up1" points outside the artifact through other links (it resolves to ..)); combining in full',
      ),
    ]);
    expect(fx.leftoverUploads()).toEqual([]);
  });

  it('falls back when a link has no local header where the directory says: the full combine refuses the snapshot', async () => {
    const zip = await yazlDescriptorZip([{ name: 'lib/link.yml', content: '../README.md', mode: 0o120777 }]);
    const header = zip.lastIndexOf(Buffer.from('PK\x03\x04', 'latin1'), zip.indexOf(Buffer.from('lib/link.yml')));
    zip.writeUInt32LE(0x12345678, header);
    const sources = await fx.snapshots(zip);
    const lines: string[] = [];

    const attempt = combineSources(eventFor('link-no-header', sources), {
      s3: fx.s3,
      bucket: BUCKET,
      now: () => CREATED_AT,
      log: (l) => lines.push(l),
    });

    await expect(attempt).rejects.toMatchObject({
      name: 'SnapshotError',
      message: expect.stringContaining('invalid local file header signature: 0x12345678'),
    });
    expect(lines).toEqual([expect.stringContaining(`symlink "lib/link.yml" has no local header at ${header}`)]);
  });
});

describe('a re-run of a snapshot-copied artifact', () => {
  it('checks the entries past the snapshot-copied bytes exactly: an index that says none were copied is refused', async () => {
    const sources = await fx.snapshots(await yazlDescriptorZip());
    await fx.combine('foreign-1', sources);
    const listed = await fx.s3.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: 'combined/' }));
    const newest = [...(listed.Contents ?? [])].sort(
      (x, y) => y.LastModified!.getTime() - x.LastModified!.getTime(),
    )[0]!.Key!;
    const index = JSON.parse(
      await (await fx.s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: newest }))).Body!.transformToString(),
    ) as Record<string, unknown>;
    expect(index.artifactKey).toBe('artifacts/acceptance/foreign-1/source.zip');
    expect(index.foreignLength).toBeGreaterThan(0);
    // yazl's local headers (data descriptors) are longer than this writer's: checked exactly, they do not tile.
    await fx.s3.send(
      new PutObjectCommand({ Bucket: BUCKET, Key: newest, Body: JSON.stringify({ ...index, foreignLength: 0 }) }),
    );

    const second = await fx.combine('foreign-2', sources);

    expect(second.lines).toEqual([
      expect.stringMatching(
        /cannot reuse .*the index does not describe its range.*copied entry ".*" is at offset \d+ of the range; the entries before it end at \d+/,
      ),
      // Then the first combine's way: the snapshot copied again.
      expect.stringMatching(/^combine-sources: copied \d+ bytes of \d+ entries from snapshot /),
    ]);
    await expectLikeFullCombine(second.zip, 'foreign-2', sources);
  });
});

describe('the first combine falls back to the full combine', () => {
  it(`when the "." snapshot holds more than ${MAX_COPIED_LINKS} symlinks`, async () => {
    const links = Array.from({ length: MAX_COPIED_LINKS + 1 }, (_, i) => ({
      name: `links/l${i}`,
      content: '../README.md',
      mode: 0o120777,
    }));
    const sources = await fx.snapshots(await yazlDescriptorZip(links));

    const first = await fx.combine('many-links', sources);

    expect(first.commands).not.toContain(UploadPartCopyCommand.name);
    expect(first.lines).toEqual([expect.stringContaining(`it holds more than ${MAX_COPIED_LINKS} symlinks`)]);
    await expectLikeFullCombine(first.zip, 'many-links', sources);
  });

  it('when the "." snapshot lists its entries out of their order (the copy takes them as they stream in)', async () => {
    const zip = await yazlDescriptorZip([
      { name: 'docs/first.md', content: 'first\n' },
      { name: 'docs/later.md', content: 'later\n' },
    ]);
    // Swap the two central directory records (same length: same name length, same fields).
    const record = (name: string): number =>
      zip.indexOf(
        Buffer.from(name),
        zip.lastIndexOf(Buffer.from('PK\x01\x02', 'latin1'), zip.lastIndexOf(Buffer.from(name))),
      ) - 46;
    const [a, b] = [record('docs/first.md'), record('docs/later.md')];
    const length = b - a;
    expect(length).toBeGreaterThan(46);
    const swapped = Buffer.concat([
      zip.subarray(0, a),
      zip.subarray(b, b + length),
      zip.subarray(a, b),
      zip.subarray(b + length),
    ]);
    const sources = await fx.snapshots(swapped);

    const first = await fx.combine('unordered', sources);

    expect(first.commands).not.toContain(UploadPartCopyCommand.name);
    expect(first.lines).toEqual([
      expect.stringMatching(
        /cannot copy snapshot .*copied entry "docs\/first\.md" is at offset \d+ of the range; the entries before it end at \d+/,
      ),
    ]);
    await expectLikeFullCombine(first.zip, 'unordered', sources);
  });

  it('when the "." snapshot is small, without a word', async () => {
    const sources = await fx.snapshots(await makeZip([{ name: 'small.txt', content: 'x' }]));

    const first = await fx.combine('small', sources);

    expect(first.commands).not.toContain(UploadPartCopyCommand.name);
    expect(first.lines).toEqual([]);
    await expectLikeFullCombine(first.zip, 'small', sources);
  });

  it('when a copy fails: the upload is aborted and the full combine writes the artifact', async () => {
    const sources = await fx.snapshots(await yazlDescriptorZip());
    let attempts = 0;
    fx.fault = (method, key, query) => {
      if (
        attempts === 3 ||
        method !== 'PUT' ||
        !key.endsWith('copy-fails/source.zip') ||
        query.get('partNumber') !== '2'
      )
        return undefined;
      attempts += 1;
      return 500;
    };

    const first = await fx.combine('copy-fails', sources);

    expect(first.lines).toEqual([expect.stringMatching(/cannot copy snapshot .*copying .* failed/)]);
    await expectLikeFullCombine(first.zip, 'copy-fails', sources);
    expect(fx.leftoverUploads()).toEqual([]);
  });

  it('when an entry name is unsafe: the full combine refuses it as before', async () => {
    const zip = await yazlDescriptorZip([{ name: 'xx/evil.sh', content: 'rm -rf /\n' }]);
    let patched = zip;
    for (let at = patched.indexOf('xx/evil.sh'); at !== -1; at = patched.indexOf('xx/evil.sh', at + 1)) {
      patched = Buffer.concat([patched.subarray(0, at), Buffer.from('..'), patched.subarray(at + 2)]);
    }
    const sources = await fx.snapshots(patched);
    const lines: string[] = [];

    await expect(
      combineSources(eventFor('unsafe', sources), {
        s3: fx.s3,
        bucket: BUCKET,
        now: () => CREATED_AT,
        log: (l) => lines.push(l),
      }),
    ).rejects.toBeInstanceOf(UnsafeEntryError);
    expect(lines).toEqual([expect.stringContaining('has an unsafe name')]);
  });

  it('when a path conflicts: the full combine refuses it as before', async () => {
    const sources = await fx.snapshots(
      await yazlDescriptorZip([{ name: 'config/settings.yml', content: 'replicas: 1\n' }]),
    );
    const lines: string[] = [];

    await expect(
      combineSources(eventFor('conflict', sources), {
        s3: fx.s3,
        bucket: BUCKET,
        now: () => CREATED_AT,
        log: (l) => lines.push(l),
      }),
    ).rejects.toBeInstanceOf(PathCollisionError);
    expect(lines).toEqual([expect.stringContaining('PathCollisionError')]);
  });
});
