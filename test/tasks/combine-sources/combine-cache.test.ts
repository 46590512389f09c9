import { createHash, randomBytes } from 'node:crypto';
import {
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  PutObjectCommand,
  UploadPartCommand,
  UploadPartCopyCommand,
} from '@aws-sdk/client-s3';
import * as yauzl from 'yauzl';
import { conflictsOnConditionalWrites } from '../../../local/faults';
import { combineSources } from '../../../tasks/combine-sources/combine-sources';
import {
  COMBINE_FORMAT_VERSION,
  combinedIndexKey,
  type SnapshotVersion,
} from '../../../tasks/combine-sources/combined-index';
import { SymlinkTable } from '../../../tasks/combine-sources/symlinks';
import { createManifest } from '../../../tasks/combine-sources/manifest';
import type { FetchedSource } from '../../../shared/contracts';
import { zipEntries } from '../../../tasks/shared/zip';
import {
  CombineS3,
  CREATED_AT,
  entriesOf,
  eventFor,
  keyOf,
  manifestOf,
  MiB,
  type Combined,
} from '../../helpers/combine-s3';
import { makeZip } from '../../helpers/zip';

const BUCKET = 'stepdeploy-reuse-artifacts';

let fx: CombineS3;
let appSnapshot: Buffer;
let bigAppSnapshot: Buffer;

function appZip(blobSize: number): Promise<Buffer> {
  return makeZip([
    { name: 'bin/', mode: 0o40755 },
    { name: 'bin/build', content: '#!/bin/sh\nmake\n', mode: 0o100755 },
    { name: 'assets/blob.bin', content: randomBytes(blobSize) },
    { name: 'README.md', content: '# app\n'.repeat(500) },
    { name: 'lib/link.yml', content: '../config/settings.yml', mode: 0o120777 },
    // A name the full combine normalizes (to notes.txt): the snapshot copy does not take it.
    { name: './notes.txt', content: 'notes\n' },
  ]);
}

beforeAll(async () => {
  fx = await CombineS3.start(BUCKET);
  // Random bytes do not compress: a range of ~6 MiB goes in part 1 alone; one of ~12 MiB takes
  // 5 MiB in part 1 and the rest in a copied part.
  appSnapshot = await appZip(6 * MiB);
  bigAppSnapshot = await appZip(12 * MiB);
});

afterEach(() => fx.reset());

afterAll(() => fx.stop());

async function combine(execution: string, sources: ReadonlyArray<FetchedSource>): Promise<Combined> {
  const combined = await fx.combine(execution, sources);
  // First combines here do not copy the app snapshot (./notes.txt): the copy-snapshot tests check that line.
  return {
    ...combined,
    lines: combined.lines.filter((line) => !line.startsWith('combine-sources: cannot copy snapshot')),
  };
}

interface IndexJson {
  readonly artifactKey: string;
  readonly rangeStart: number;
  readonly rangeLength: number;
}

async function readJson(key: string): Promise<unknown> {
  return JSON.parse((await fx.download(key)).toString('utf8'));
}

async function indexKeyOf(sources: ReadonlyArray<FetchedSource>): Promise<string> {
  const versions: SnapshotVersion[] = [];
  for (const s of sources) {
    const head = await fx.s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: s.snapshotKey }));
    versions.push({ name: s.name, commit: s.commit, snapshotKey: s.snapshotKey, path: s.path, etag: head.ETag! });
  }
  return combinedIndexKey(versions);
}

/** `combined` holds the sources exactly as a full combine does, behind its own manifest. */
async function expectSameSources(
  combined: Buffer,
  full: Buffer,
  execution: string,
  sources: ReadonlyArray<FetchedSource>,
): Promise<void> {
  const [mine, reference] = [await entriesOf(combined), await entriesOf(full)];
  expect(mine[0]!.name).toBe('stepdeploy-manifest.json');
  expect(mine.slice(1)).toEqual(reference.slice(1));
  expect(await manifestOf(combined)).toEqual(createManifest(eventFor(execution, sources), CREATED_AT));
  // Info-ZIP checks every CRC-32 and the directory against the local headers.
  expect(fx.checkZip(combined)).toContain('No errors detected');
}

/** Part numbers 1…n, every part but the last at least 5 MiB, every copy pinned to the source's ETag. */
function expectPartsS3Accepts(sent: ReadonlyArray<unknown>): void {
  const sizes = new Map<number, number>();
  for (const command of sent) {
    if (command instanceof UploadPartCommand)
      sizes.set(command.input.PartNumber!, command.input.ContentLength ?? (command.input.Body as Buffer).length);
    if (command instanceof UploadPartCopyCommand) {
      const [from, to] = command.input.CopySourceRange!.replace('bytes=', '').split('-').map(Number);
      sizes.set(command.input.PartNumber!, to! - from! + 1);
      expect(command.input.CopySourceIfMatch).toMatch(/^"[0-9a-f]+(-\d+)?"$/);
    }
  }
  const numbers = [...sizes.keys()].sort((x, y) => x - y);
  expect(numbers).toEqual(numbers.map((_, i) => i + 1));
  for (const n of numbers.slice(0, -1)) expect(sizes.get(n)).toBeGreaterThanOrEqual(5 * MiB);
}

describe('combineSources reusing an earlier combine of the same snapshots', () => {
  it('copies the earlier artifact inside S3: same entries, its own manifest first, and a valid zip', async () => {
    const sources = await fx.snapshots(bigAppSnapshot);
    const first = await combine('first-run', sources);
    const indexKey = await indexKeyOf(sources);
    const indexBefore = await readJson(indexKey);

    const second = await combine('second-run', sources);

    expect(first.commands).not.toContain(UploadPartCopyCommand.name);
    expect(second.commands).toContain(UploadPartCopyCommand.name);
    // The snapshots are looked at (HEAD, for their ETags), never downloaded: the GETs are the
    // index, the earlier artifact's directory (one window), and part 1's first 5 MiB of the range.
    expect(second.commands.filter((c) => c === GetObjectCommand.name)).toHaveLength(3);
    expect(second.lines).toEqual([
      expect.stringMatching(
        /^combine-sources: copied \d+ bytes of 7 entries from artifacts\/acceptance\/first-run\/source\.zip$/,
      ),
    ]);
    await expectSameSources(second.zip, first.zip, 'second-run', sources);
    // Byte for byte, the range the index names in each artifact is the same.
    const [a, b] = [indexBefore as IndexJson, (await readJson(indexKey)) as IndexJson];
    expect([a.artifactKey, b.artifactKey]).toEqual([keyOf('first-run'), keyOf('second-run')]);
    expect(b.rangeLength).toBe(a.rangeLength);
    const rangeOf = (zip: Buffer, index: IndexJson): Buffer =>
      zip.subarray(index.rangeStart, index.rangeStart + index.rangeLength);
    expect(rangeOf(second.zip, b).equals(rangeOf(first.zip, a))).toBe(true);
    expect(a.rangeStart).toBe(await secondEntryOffset(first.zip));
    expect(b.rangeStart).toBe(await secondEntryOffset(second.zip));
    expectPartsS3Accepts(second.sent);
    expect(fx.leftoverUploads()).toEqual([]);
  });

  it('points the index at the newest artifact, so that it outlives the first one', async () => {
    const sources = await fx.snapshots(appSnapshot);
    await combine('newest-1', sources);
    await combine('newest-2', sources);
    await fx.s3.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: keyOf('newest-1') }));

    const third = await combine('newest-3', sources);

    expect(third.lines).toEqual([expect.stringContaining('from artifacts/acceptance/newest-2/source.zip')]);
  });

  it('answers the same on a redrive of a reused execution and does not rewrite its artifact', async () => {
    const sources = await fx.snapshots(appSnapshot);
    await combine('redrive-1', sources);
    const first = await combineSources(eventFor('redrive-2', sources), {
      s3: fx.s3,
      bucket: BUCKET,
      now: () => CREATED_AT,
      log: () => undefined,
    });
    const before = await fx.s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: keyOf('redrive-2') }));

    const again = await combineSources(eventFor('redrive-2', sources), {
      s3: fx.s3,
      bucket: BUCKET,
      now: () => new Date(),
      log: () => undefined,
    });

    expect(again).toEqual(first);
    expect((await fx.s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: keyOf('redrive-2') }))).ETag).toBe(
      before.ETag,
    );
  });

  it('writes no index for a range too small to copy as a part', async () => {
    const sources = await fx.snapshots(await makeZip([{ name: 'small.txt', content: 'x' }]));

    await combine('small', sources);

    const index = await fx.s3
      .send(new HeadObjectCommand({ Bucket: BUCKET, Key: await indexKeyOf(sources) }))
      .catch((err: Error) => err);
    expect(index).toMatchObject({ name: 'NotFound' });
  });
});

describe('combineSources never reuses an artifact combined before links were followed through each other', () => {
  it('an index of format 3, whose artifact holds a chain of links leading outside: combined in full, and refused', async () => {
    const withChain = await makeZip([
      { name: 'assets/blob.bin', content: randomBytes(6 * MiB) },
      { name: 'a/b/up0', content: '../..', mode: 0o120777 },
      { name: 'a/b/up1', content: 'up0/..', mode: 0o120777 },
    ]);
    const sources = await fx.snapshots(withChain);
    // What the combine before the fix wrote: the chain passed, its artifact was indexed (format 3).
    jest.spyOn(SymlinkTable.prototype, 'escaping').mockReturnValue(undefined);
    await combine('chain-1', sources);
    jest.restoreAllMocks();
    const written = await indexKeyOf(sources);
    const index = (await readJson(written)) as Record<string, unknown>;
    expect(index.artifactKey).toBe(keyOf('chain-1'));
    await fx.s3.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: written }));
    await fx.s3.send(
      new PutObjectCommand({
        Bucket: BUCKET,
        Key: await formatThreeIndexKey(sources),
        Body: JSON.stringify({ ...index, formatVersion: 3 }),
      }),
    );

    const lines: string[] = [];
    const attempt = combineSources(eventFor('chain-2', sources), {
      s3: fx.s3,
      bucket: BUCKET,
      now: () => CREATED_AT,
      log: (l) => lines.push(l),
    });

    await expect(attempt).rejects.toMatchObject({
      name: 'UnsafeEntryError',
      message: expect.stringContaining(
        'symlink "a/b/up1" (source "app") points outside the artifact through other links',
      ),
    });
    expect(lines.filter((l) => l.includes('chain-1'))).toEqual([]);
  });
});

/** Where the combine of format 3 kept its index: combinedIndexKey as it was then. */
async function formatThreeIndexKey(sources: ReadonlyArray<FetchedSource>): Promise<string> {
  const versions: string[][] = [];
  for (const s of sources) {
    const head = await fx.s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: s.snapshotKey }));
    versions.push([s.name, s.commit, s.snapshotKey, head.ETag!, s.path]);
  }
  return `combined/${createHash('sha256')
    .update(JSON.stringify({ formatVersion: 3, sources: versions }))
    .digest('hex')}.json`;
}

describe('combineSources falls back to a full combine when the earlier one cannot be reused', () => {
  /** A first combine, then `spoil`, then a second: it must be a full, correct combine. */
  async function afterSpoiling(
    name: string,
    spoil: (indexKey: string, firstKey: string) => Promise<void>,
    app = appSnapshot,
  ): Promise<Combined> {
    const sources = await fx.snapshots(app);
    const first = await combine(`${name}-1`, sources);
    const indexKey = await indexKeyOf(sources);
    await spoil(indexKey, keyOf(`${name}-1`));

    const second = await combine(`${name}-2`, sources);

    await expectSameSources(second.zip, first.zip, `${name}-2`, sources);
    expect(fx.leftoverUploads()).toEqual([]);
    // The full combine wrote the index again, for the next execution.
    expect(((await readJson(indexKey)) as { artifactKey: string }).artifactKey).toBe(keyOf(`${name}-2`));
    return second;
  }

  async function putJson(key: string, value: unknown): Promise<void> {
    await fx.s3.send(
      new PutObjectCommand({
        Bucket: BUCKET,
        Key: key,
        Body: typeof value === 'string' ? value : JSON.stringify(value),
      }),
    );
  }

  it('the index is not JSON', async () => {
    const second = await afterSpoiling('corrupt', (indexKey) => putJson(indexKey, '{"formatVersion": 1, "entr'));
    expect(second.lines).toEqual([expect.stringContaining('is not JSON')]);
  });

  it('the index is of another format version', async () => {
    const second = await afterSpoiling('old-format', async (indexKey) =>
      putJson(indexKey, { ...((await readJson(indexKey)) as object), formatVersion: 0 }),
    );
    expect(second.lines).toEqual([expect.stringContaining(`is not a format ${COMBINE_FORMAT_VERSION} index`)]);
  });

  it('the earlier artifact is gone (expired)', async () => {
    const second = await afterSpoiling('expired', (_, firstKey) =>
      fx.s3.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: firstKey })).then(() => undefined),
    );
    expect(second.lines).toEqual([expect.stringMatching(/cannot reuse .*NoSuchKey/)]);
  });

  it('the earlier artifact is not the one the index describes (ETag)', async () => {
    const second = await afterSpoiling('etag', async (indexKey) =>
      putJson(indexKey, { ...((await readJson(indexKey)) as object), etag: '"0123456789abcdef0123456789abcdef"' }),
    );
    expect(second.lines).toEqual([expect.stringMatching(/cannot reuse .*PreconditionFailed/)]);
    expect(second.commands).not.toContain(UploadPartCopyCommand.name);
  });

  it.each([
    ['the range ends before the directory', { rangeLength: -1 }, 'its directory starts at'],
    ['the range starts inside the manifest', { rangeStart: -1, rangeLength: 1 }, 'is at offset'],
    ['the directory lists another number of entries', { entryCount: 1 }, 'entries after the manifest, the index'],
  ])('%s', async (_what, shift, why) => {
    const second = await afterSpoiling(`spoiled-${why.length}`, async (indexKey) => {
      const index = (await readJson(indexKey)) as Record<string, number>;
      for (const [field, by] of Object.entries(shift)) index[field] = index[field]! + by;
      await putJson(indexKey, index);
    });
    expect(second.lines).toEqual([expect.stringMatching(new RegExp(`the index does not describe its range.*${why}`))]);
    expect(second.commands).not.toContain(UploadPartCopyCommand.name);
  });

  it('a copy keeps failing (UploadPartCopy answers 500 to every attempt): the upload is aborted', async () => {
    const second = await afterSpoiling(
      'copy-fails',
      async () => {
        let attempts = 0;
        // As many times as the SDK tries (3), then no more: the full combine that follows uploads a part 2 too.
        fx.fault = (method, key, query) => {
          if (
            attempts === 3 ||
            method !== 'PUT' ||
            !key.endsWith('copy-fails-2/source.zip') ||
            query.get('partNumber') !== '2'
          )
            return undefined;
          attempts += 1;
          return 500;
        };
      },
      bigAppSnapshot,
    );
    expect(second.lines).toEqual([expect.stringMatching(/cannot reuse .*copying .* failed/)]);
  });
});

describe('combineSources reusing when S3 answers its CompleteMultipartUpload 409 ConditionalRequestConflict', () => {
  it('copies again from a new multipart upload (as S3 says), not a full combine, and leaves no upload behind', async () => {
    const sources = await fx.snapshots(bigAppSnapshot);
    const first = await combine('conflict-run-0', sources);
    const conflicts = conflictsOnConditionalWrites({
      keyPrefix: keyOf('conflict-run'),
      count: 1,
      operation: 'CompleteMultipartUpload',
    });
    fx.conflict = conflicts;

    const second = await combine('conflict-run', sources);

    expect(conflicts.injected).toHaveLength(1);
    expect(second.commands.filter((c) => c === CreateMultipartUploadCommand.name)).toHaveLength(2);
    expect(second.commands.filter((c) => c === CompleteMultipartUploadCommand.name)).toHaveLength(2);
    // Both uploads copied the range inside S3; neither fell back to reading the snapshots.
    const uploads = new Set(
      second.sent
        .filter((c): c is UploadPartCopyCommand => c instanceof UploadPartCopyCommand)
        .map((c) => c.input.UploadId),
    );
    expect(uploads.size).toBe(2);
    expect(second.lines).toEqual([
      expect.stringMatching(
        /^combine-sources: copied \d+ bytes of 7 entries from artifacts\/acceptance\/conflict-run-0\/source\.zip$/,
      ),
    ]);
    await expectSameSources(second.zip, first.zip, 'conflict-run', sources);
    expect(fx.leftoverUploads()).toEqual([]);
  });
});

describe('combineSources reusing when another invocation writes the same key first', () => {
  /** Runs `race` just before the reuse's CompleteMultipartUpload, as a concurrent invocation would. */
  function raceBeforeComplete(race: () => Promise<void>): void {
    const send = fx.s3.send.bind(fx.s3) as (command: unknown) => Promise<unknown>;
    let raced = false;
    jest.spyOn(fx.s3, 'send').mockImplementation((async (command: unknown) => {
      if (command instanceof CompleteMultipartUploadCommand && command.input.Key!.includes('-race') && !raced) {
        raced = true;
        await race();
      }
      return send(command);
    }) as never);
  }

  async function winnerWith(execution: string, sources: ReadonlyArray<FetchedSource>, createdAt: Date): Promise<void> {
    const manifest = createManifest(eventFor(execution, sources), createdAt);
    const zip = await makeZip([{ name: 'stepdeploy-manifest.json', content: JSON.stringify(manifest) }]);
    await fx.s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: keyOf(execution), Body: zip, IfNoneMatch: '*' }));
  }

  it("answers from the winner's manifest when it holds the same commits", async () => {
    const sources = await fx.snapshots(appSnapshot);
    await combine('same-race-0', sources);
    raceBeforeComplete(() => winnerWith('same-race', sources, new Date('2025-01-01T11:00:00Z')));

    const result = await combineSources(eventFor('same-race', sources), {
      s3: fx.s3,
      bucket: BUCKET,
      log: () => undefined,
    });

    expect(result.manifest.createdAt).toBe('2025-01-01T11:00:00.000Z');
    expect(fx.leftoverUploads()).toEqual([]);
  });

  it('fails with ArtifactConflictError when the winner holds other commits', async () => {
    const sources = await fx.snapshots(appSnapshot);
    await combine('other-race-0', sources);
    const other = [{ ...sources[0]!, commit: 'f'.repeat(40) }, sources[1]!];
    raceBeforeComplete(() => winnerWith('other-race', other, CREATED_AT));

    await expect(
      combineSources(eventFor('other-race', sources), { s3: fx.s3, bucket: BUCKET, log: () => undefined }),
    ).rejects.toMatchObject({
      name: 'ArtifactConflictError',
    });
    expect(fx.leftoverUploads()).toEqual([]);
  });
});

/** Where the entry after the manifest starts: the end of the manifest entry. */
async function secondEntryOffset(zip: Buffer): Promise<number> {
  const zipfile = await yauzl.fromBufferPromise(zip, { lazyEntries: true, autoClose: false });
  try {
    const entries = zipEntries(zipfile);
    await entries.next();
    return ((await entries.next()).value as yauzl.Entry).relativeOffsetOfLocalHeader;
  } finally {
    zipfile.close();
  }
}
