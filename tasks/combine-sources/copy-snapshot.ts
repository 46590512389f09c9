import { PassThrough, type Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import * as yauzl from 'yauzl';
import type { Manifest } from '../shared/contracts';
import { zipEntries } from '../shared/zip';
import { addManifestEntry, type WrittenArtifact } from './artifact-writer';
import type { SnapshotHeads } from './combine-cache';
import { copyRange, DEFAULT_COPY_PART_SIZE, MIN_PART_SIZE, planParts, type ZipEnds } from './copy-combined';
import { MANIFEST_NAME } from './manifest';
import { PathRegistry } from './path-registry';
import { RawZipWriter, type PlacedEntry, type RawEntry } from './raw-zip-writer';
import { appendSnapshotEntries, copyableEntry, type SnapshotSource } from './snapshot';

const MiB = 1024 * 1024;
/** The other snapshots are held in memory (and their entries in the last part): beyond this, combine in full. */
export const MAX_OTHER_SNAPSHOTS_BYTES = 64 * MiB;
/** The "." snapshot's central directory is held in memory: beyond this, combine in full. */
const MAX_DIRECTORY_BYTES = 64 * MiB;
const DATA_DESCRIPTOR = 0x0008;

export interface SnapshotCopyDeps {
  readonly s3: S3Client;
  readonly bucket: string;
  /** @default DEFAULT_COPY_PART_SIZE (64 MiB) */
  readonly copyPartSize?: number;
  /** @default DEFAULT_COPY_CONCURRENCY (8) */
  readonly copyConcurrency?: number;
  /** @default console.log */
  readonly log?: (line: string) => void;
}

/**
 * The first combine of a set of snapshots, with the source at path "." copied inside S3: its
 * entry names do not change in the artifact, so its local headers and data are the artifact's
 * bytes as they are (extra fields and data descriptors included). Only its central directory
 * is read (ranged GETs of its tail), never its data. The new source.zip is a multipart upload
 * (copy-combined.ts copyRange):
 * - part 1: the manifest entry, then the range's first 5 MiB (a ranged GET);
 * - UploadPartCopy of the rest of the snapshot's entries;
 * - last part: the other sources' entries, written as the full combine writes them (they are
 *   small: config; at most MAX_OTHER_SNAPSHOTS_BYTES in all, held in memory), then the central
 *   directory, whose records for the copied entries repeat their local headers' flags.
 *
 * Only when the artifact holds what the full combine would write: "." is the first source (the
 * full combine writes and claims sources in order), and every entry of its snapshot passes
 * copyableEntry and the PathRegistry as it would in the full combine (no conflict, no folder
 * merged away), the entries tile the range from the first local header to the directory, and
 * the range fills a copied part. Otherwise, or when anything fails (the upload aborted),
 * answers undefined, having written nothing: combine in full. Throws only the 412 of a key
 * that exists, as a full combine would. Answers what rememberCombined records for re-runs.
 */
export async function writeFromSnapshot(
  deps: SnapshotCopyDeps,
  key: string,
  manifest: Manifest,
  sources: ReadonlyArray<SnapshotSource>,
  heads: SnapshotHeads,
): Promise<WrittenArtifact | undefined> {
  const root = sources[0];
  if (root === undefined || root.path !== '.') return undefined;
  const log = deps.log ?? console.log;
  const fallBack = (why: string): undefined => {
    log(`combine-sources: cannot copy snapshot ${root.snapshotKey} (${why}); combining in full`);
    return undefined;
  };
  let prepared: Prepared | Unfit;
  try {
    prepared = await prepare(deps, manifest, sources, heads);
  } catch (err) {
    return fallBack(`${(err as Error).name}: ${(err as Error).message}`);
  }
  if ('why' in prepared) return prepared.quiet === true ? undefined : fallBack(prepared.why);
  const { range, ends, written } = prepared;
  const outcome = await copyRange({ ...deps, key, range, ends });
  if ('unavailable' in outcome) return fallBack(outcome.unavailable);
  log(`combine-sources: copied ${range.length} bytes of ${written.copiedEntries} entries from snapshot ${root.snapshotKey}`);
  return { ...written.artifact, etag: outcome.etag };
}

/** Why the snapshot is not copied; quiet when that is the usual case (a small snapshot). */
interface Unfit {
  readonly why: string;
  readonly quiet?: boolean;
}

interface Prepared {
  readonly range: { readonly key: string; readonly etag: string; readonly start: number; readonly length: number };
  readonly ends: ZipEnds;
  readonly written: { readonly copiedEntries: number; readonly artifact: Omit<WrittenArtifact, 'etag'> };
}

async function prepare(
  deps: SnapshotCopyDeps,
  manifest: Manifest,
  sources: ReadonlyArray<SnapshotSource>,
  heads: SnapshotHeads,
): Promise<Prepared | Unfit> {
  const [root, ...others] = sources as [SnapshotSource, ...SnapshotSource[]];
  if (heads instanceof Error) throw heads;
  if (heads.some((h) => h?.etag === undefined)) return { why: 'a snapshot is missing or has no ETag' };
  const [rootHead, ...otherHeads] = heads as Array<{ size: number; etag: string }>;
  // Most snapshots are small: they are combined in full without a word.
  if (rootHead.size < 2 * MIN_PART_SIZE) return { why: 'small', quiet: true };
  const otherBytes = otherHeads.reduce((sum, h) => sum + h.size, 0);
  if (otherBytes > MAX_OTHER_SNAPSHOTS_BYTES) return { why: `the other snapshots take ${otherBytes} bytes, more than ${MAX_OTHER_SNAPSHOTS_BYTES}` };

  const directory = await readDirectory(deps.s3, deps.bucket, root.snapshotKey, rootHead.size, rootHead.etag);
  const registry = new PathRegistry();
  registry.claimFile(MANIFEST_NAME, 'the stepdeploy manifest');
  const owner = `source "${root.name}"`;
  const copied: Array<{ entry: RawEntry; offset: number }> = [];
  // Claimed in the directory's order, as appendSnapshot claims them.
  for (const { raw, offset } of directory.entries) {
    if ('why' in raw) return raw;
    if (raw.name.endsWith('/')) {
      if (!registry.claimFolder(raw.name.slice(0, -1), owner)) return { why: `folder "${raw.name}" is listed twice` };
    } else {
      registry.claimFile(raw.name, owner);
    }
    copied.push({ entry: raw, offset });
  }
  if (copied.length === 0) return { why: 'it has no entries' };
  copied.sort((a, b) => a.offset - b.offset);
  const start = copied[0]!.offset;
  for (let i = 0; i < copied.length; i++) {
    const { entry, offset } = copied[i]!;
    const end = i + 1 < copied.length ? copied[i + 1]!.offset : directory.offset;
    if (end - offset < minLocalLength(entry)) {
      return { why: `entry "${entry.name}" at ${offset} does not fit before ${end} (entries must tile the snapshot up to its directory)` };
    }
  }
  const length = directory.offset - start;
  const plan = planParts(length, deps.copyPartSize ?? DEFAULT_COPY_PART_SIZE);
  if (plan === undefined || plan.copies.length === 0) return { why: `its entries take ${length} bytes, too few to copy a part` };

  const zip = new RawZipWriter();
  const bytes = buffer(zip.output);
  try {
    await addManifestEntry(zip, manifest);
    const rangeStart = zip.position;
    zip.addCopiedEntries(
      copied.map(({ entry, offset }): PlacedEntry => ({ entry, offset: offset - start })),
      length,
    );
    const snapshots = [{ ...pick(root), etag: rootHead.etag }];
    for (const [i, source] of others.entries()) {
      const etag = otherHeads[i]!.etag;
      await appendFromMemory(deps, source, etag, zip, registry);
      snapshots.push({ ...pick(source), etag });
    }
    const rangeLength = zip.position - rangeStart;
    const entries = zip.entries.slice(1).map(({ entry, offset }) => ({ entry, offset: offset - rangeStart }));
    await zip.end();
    const all = await bytes;
    return {
      range: { key: root.snapshotKey, etag: rootHead.etag, start, length },
      ends: { head: all.subarray(0, rangeStart), tail: all.subarray(rangeStart) },
      written: { copiedEntries: copied.length, artifact: { snapshots, rangeStart, rangeLength, entries } },
    };
  } catch (err) {
    zip.output.destroy(err as Error);
    await bytes.catch(() => undefined);
    throw err;
  }
}

function pick({ name, commit, snapshotKey, path }: SnapshotSource): SnapshotSource {
  return { name, commit, snapshotKey, path };
}

/** The fewest bytes a local header (no extra field), its data and its data descriptor can take. */
function minLocalLength(entry: RawEntry): number {
  const descriptor = ((entry.foreignFlags ?? 0) & DATA_DESCRIPTOR) !== 0 ? 12 : 0;
  return 30 + Buffer.byteLength(entry.name, 'utf8') + entry.compressedSize + descriptor;
}

/** A small snapshot (config), read into memory and appended as appendSnapshot would. */
async function appendFromMemory(
  { s3, bucket }: SnapshotCopyDeps,
  source: SnapshotSource,
  etag: string,
  zip: RawZipWriter,
  registry: PathRegistry,
): Promise<void> {
  const out = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: source.snapshotKey, IfMatch: etag }));
  const bytes = Buffer.from(await out.Body!.transformToByteArray());
  const zipfile = await yauzl.fromBufferPromise(bytes, { lazyEntries: true, autoClose: false, decodeStrings: false });
  try {
    await appendSnapshotEntries({ source, zip, registry }, zipfile);
  } finally {
    zipfile.close();
  }
}

interface Directory {
  /** Where the central directory starts: where the last entry must end. */
  readonly offset: number;
  /**
   * Each entry as the copy needs it, converted as it is read: yauzl's Entry objects (names,
   * extra fields, comments) are not kept, which at 20,000 entries was ~50 MB of peak RSS.
   */
  readonly entries: ReadonlyArray<{ readonly raw: ReturnType<typeof copyableEntry>; readonly offset: number }>;
}

/** Reads a zip's central directory in S3 with yauzl: one ranged GET of its tail, one of the directory. */
async function readDirectory(s3: S3Client, bucket: string, key: string, size: number, etag: string): Promise<Directory> {
  const reader = new TailReader(s3, bucket, key, etag, size);
  const zipfile = await yauzl.fromRandomAccessReaderPromise(reader, size, {
    lazyEntries: true,
    autoClose: false,
    decodeStrings: false,
  });
  try {
    // yauzl 3 starts reading entries at the directory's offset, which it keeps here.
    const offset: unknown = (zipfile as unknown as { readEntryCursor?: unknown }).readEntryCursor;
    if (typeof offset !== 'number') throw new Error('yauzl does not tell where the central directory starts');
    const entries: Array<{ raw: ReturnType<typeof copyableEntry>; offset: number }> = [];
    for await (const entry of zipEntries(zipfile)) entries.push({ raw: copyableEntry(entry), offset: entry.relativeOffsetOfLocalHeader });
    return { offset, entries };
  } finally {
    zipfile.close();
  }
}

/**
 * Serves yauzl's reads from memory: the bytes from the lowest offset asked for to the end of
 * the object, fetched with one ranged GET per extension (pinned to the ETag). yauzl reads the
 * end records first, then the directory record by record: two or three GETs in all, where a
 * plain S3 reader makes one per record.
 */
class TailReader extends yauzl.RandomAccessReader {
  private cache = Buffer.alloc(0);
  private cacheStart: number;
  private pending: Promise<void> = Promise.resolve();

  constructor(
    private readonly s3: S3Client,
    private readonly bucket: string,
    private readonly key: string,
    private readonly etag: string,
    private readonly size: number,
  ) {
    super();
    this.cacheStart = size;
  }

  override _readStreamForRange(start: number, end: number): Readable {
    const out = new PassThrough();
    this.pending = this.pending.then(() => this.extend(start));
    this.pending.then(
      () => out.end(this.cache.subarray(start - this.cacheStart, end - this.cacheStart)),
      (err: unknown) => out.destroy(err as Error),
    );
    return out;
  }

  private async extend(start: number): Promise<void> {
    if (start >= this.cacheStart) return;
    if (this.size - start > MAX_DIRECTORY_BYTES) throw new Error(`its directory takes more than ${MAX_DIRECTORY_BYTES} bytes`);
    const out = await this.s3.send(
      new GetObjectCommand({ Bucket: this.bucket, Key: this.key, Range: `bytes=${start}-${this.cacheStart - 1}`, IfMatch: this.etag }),
    );
    const bytes = Buffer.from(await out.Body!.transformToByteArray());
    if (bytes.length !== this.cacheStart - start) throw new Error(`asked for ${this.cacheStart - start} bytes at ${start}, got ${bytes.length}`);
    this.cache = Buffer.concat([bytes, this.cache]);
    this.cacheStart = start;
  }
}
