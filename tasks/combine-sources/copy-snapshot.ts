import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { inflateRawSync } from 'node:zlib';
import * as yauzl from 'yauzl';
import type { Manifest } from '../../shared/contracts';
import type { WrittenArtifact } from './artifact-writer';
import type { SnapshotHeads } from './combine-cache';
import { copyRange, DEFAULT_COPY_PART_SIZE, MIN_PART_SIZE, planParts, writeZipEnds, type ZipEnds } from './range-copy';
import { MANIFEST_NAME } from './manifest';
import { PathRegistry } from './path-registry';
import { withLimit } from '../shared/with-limit';
import {
  DEFLATED,
  getRange,
  LOCAL_HEADER_BYTES,
  LOCAL_HEADER_SIGNATURE,
  openZipInS3,
  type PlacedEntry,
  type RawZipWriter,
} from '../shared/zip';
import {
  appendSnapshotEntries,
  copyableEntry,
  isSymlink,
  linkTargetOutside,
  linkTargetTooLong,
  MAX_LINK_TARGET,
  type SnapshotSource,
} from './snapshot';
import { SymlinkTable } from './symlinks';

const MiB = 1024 * 1024;
/** The other snapshots are held in memory (and their entries in the last part): beyond this, combine in full. */
export const MAX_OTHER_SNAPSHOTS_BYTES = 64 * MiB;

export interface SnapshotCopyDeps {
  readonly s3: S3Client;
  readonly bucket: string;
  /** @default DEFAULT_COPY_PART_SIZE (64 MiB) */
  readonly copyPartSize?: number;
  /** @default DEFAULT_COPY_CONCURRENCY (8) */
  readonly copyConcurrency?: number;
  /** @default console.log */
  readonly log?: (line: string) => void;
  /** Where the new zip's ends are written (writeZipEnds). @default os.tmpdir() */
  readonly tmpDir?: string;
  /** A registry to clear and reuse (see PathRegistry.clear); a new one when absent. */
  readonly registry?: PathRegistry;
}

/**
 * The first combine of a set of snapshots, with the source at path "." copied inside S3: its
 * entry names do not change in the artifact, so its local headers and data are the artifact's
 * bytes as they are (extra fields and data descriptors included). Only its central directory
 * is read, as it streams in (openZipInS3), never its data. The new source.zip is a multipart upload
 * (range-copy.ts copyRange):
 * - part 1: the manifest entry, then the range's first 5 MiB (a ranged GET);
 * - UploadPartCopy of the rest of the snapshot's entries;
 * - last part: the other sources' entries, written as the full combine writes them (they are
 *   small: config; at most MAX_OTHER_SNAPSHOTS_BYTES in all, held in memory), then the central
 *   directory, whose records for the copied entries repeat their local headers' flags.
 *
 * Only when the artifact holds what the full combine would write: "." is the first source (the
 * full combine writes and claims sources in order), and every entry of its snapshot passes
 * copyableEntry and the PathRegistry as it would in the full combine (no conflict, no folder
 * merged away), the entries tile the range from the first local header to the directory in the
 * directory's order, and
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
  log(
    `combine-sources: copied ${range.length} bytes of ${written.copiedEntries} entries from snapshot ${root.snapshotKey}`,
  );
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
  const [rootHead, ...otherHeads] = heads as [{ size: number; etag: string }, ...Array<{ size: number; etag: string }>];
  // Most snapshots are small: they are combined in full without a word.
  if (rootHead.size < 2 * MIN_PART_SIZE) return { why: 'small', quiet: true };
  const otherBytes = otherHeads.reduce((sum, h) => sum + h.size, 0);
  if (otherBytes > MAX_OTHER_SNAPSHOTS_BYTES)
    return { why: `the other snapshots take ${otherBytes} bytes, more than ${MAX_OTHER_SNAPSHOTS_BYTES}` };

  const directory = await openZipInS3(deps.s3, {
    bucket: deps.bucket,
    key: root.snapshotKey,
    size: rootHead.size,
    etag: rootHead.etag,
  });
  try {
    const entries = directory.entries();
    const first = await entries.next();
    if (first.done === true) return { why: 'it has no entries' };
    const start = first.value.relativeOffsetOfLocalHeader;
    const length = directory.offset - start;
    const plan = planParts(length, deps.copyPartSize ?? DEFAULT_COPY_PART_SIZE);
    if (plan === undefined || plan.copies.length === 0)
      return { why: `its entries take ${length} bytes, too few to copy a part` };
    const registry = deps.registry ?? new PathRegistry();
    registry.clear();
    registry.claimFile(MANIFEST_NAME, 'the stepdeploy manifest');
    const owner = `source "${root.name}"`;
    // Claimed in the directory's order, as appendSnapshot claims them; placed as they stream in.
    // Symlinks are checked once the directory is read: each target (a few at a time), then all
    // the artifact's links through each other, the other sources' included (checkLinks).
    const links: Array<{ readonly entry: yauzl.Entry; readonly name: string }> = [];
    const table = new SymlinkTable();
    async function* copied(): AsyncGenerator<PlacedEntry> {
      for (let next = first; next.done !== true; next = await entries.next()) {
        const raw = copyableEntry(next.value);
        if ('why' in raw) throw new UnfitSnapshot(raw.why);
        if (isSymlink(next.value)) {
          if (links.length === MAX_COPIED_LINKS)
            throw new UnfitSnapshot(
              `it holds more than ${MAX_COPIED_LINKS} symlinks, whose targets would each be read`,
            );
          links.push({ entry: next.value, name: raw.name });
        }
        if (raw.name.endsWith('/')) {
          if (!registry.claimFolder(raw.name.slice(0, -1), owner))
            throw new UnfitSnapshot(`folder "${raw.name}" is listed twice`);
        } else {
          registry.claimFile(raw.name, owner);
        }
        yield { entry: raw, offset: next.value.relativeOffsetOfLocalHeader - start };
      }
    }
    const prepared = await writeEnds(
      deps,
      manifest,
      { root, rootHead, others, otherHeads, registry, links: table },
      { start, length, entries: copied() },
    );
    try {
      await checkLinks(deps, { key: root.snapshotKey, etag: rootHead.etag, end: directory.offset }, links, {
        table,
        owner,
      });
    } catch (err) {
      await prepared.ends.dispose();
      throw err;
    }
    return prepared;
  } catch (err) {
    if (err instanceof UnfitSnapshot) return { why: err.message };
    throw err;
  } finally {
    directory.close();
  }
}

/** An entry the copy cannot take as it is: the full combine decides what to do with it. */
class UnfitSnapshot extends Error {}

/** Symlinks whose targets the copy reads (a ranged GET or two each); a snapshot with more is combined in full. */
export const MAX_COPIED_LINKS = 200;
/** Targets read at once. */
const LINK_READS = 8;

/**
 * Throws UnfitSnapshot for the first of `links` found unfit to copy as it is (linkProblem), or
 * when one of all the artifact's links (`table`: the other sources' are in it already) leads
 * outside it through the others: the full combine then refuses it, naming it.
 */
async function checkLinks(
  deps: SnapshotCopyDeps,
  snapshot: { readonly key: string; readonly etag: string; readonly end: number },
  links: ReadonlyArray<{ readonly entry: yauzl.Entry; readonly name: string }>,
  { table, owner }: { readonly table: SymlinkTable; readonly owner: string },
): Promise<void> {
  await withLimit(links, LINK_READS, async ({ entry, name }) => {
    const checked = await linkProblem(deps, snapshot, entry, name);
    if ('why' in checked) throw new UnfitSnapshot(`symlink "${name}" ${checked.why}`);
    table.add(name, checked.target, owner);
  });
  const escaping = table.escaping();
  if (escaping !== undefined) throw new UnfitSnapshot(`symlink "${escaping.path}" ${escaping.why}`);
}

/** Read past a local header's name at once: the extra fields a zip writer puts there (Info-ZIP's UT and ux take 24). */
const LOCAL_EXTRA_GUESS = 256;

/**
 * Why a symlink of the snapshot cannot be copied as it is, or its target: read from
 * the snapshot in S3 (its local header, then its data; pinned to the snapshot's ETag), is checked
 * as the full combine checks it (appendEntry). A local header or data that is not where the
 * directory says, a target that does not inflate to its size, or one that leads outside the
 * artifact: the full combine then reads the entry itself and refuses what it refuses.
 */
async function linkProblem(
  { s3, bucket }: SnapshotCopyDeps,
  snapshot: { readonly key: string; readonly etag: string; readonly end: number },
  entry: yauzl.Entry,
  name: string,
): Promise<{ readonly why: string } | { readonly target: string }> {
  const tooLong = linkTargetTooLong(entry);
  if (tooLong !== undefined) return { why: tooLong };
  const read = async (start: number, end: number): Promise<Buffer> => {
    if (end > snapshot.end)
      throw new UnfitSnapshot(`symlink "${name}": its data would end at ${end}, past the entries (${snapshot.end})`);
    const bytes = await getRange(s3, { bucket, key: snapshot.key, etag: snapshot.etag }, start, end);
    if (bytes.length !== end - start)
      throw new Error(
        `asked for ${end - start} bytes at ${start} of s3://${bucket}/${snapshot.key}, got ${bytes.length}`,
      );
    return bytes;
  };
  const offset = entry.relativeOffsetOfLocalHeader;
  const guess = Math.min(
    snapshot.end,
    offset + LOCAL_HEADER_BYTES + entry.fileNameLength + LOCAL_EXTRA_GUESS + entry.compressedSize,
  );
  if (guess < offset + LOCAL_HEADER_BYTES) return { why: `has no local header at ${offset}` };
  const head = await read(offset, guess);
  if (head.readUInt32LE(0) !== LOCAL_HEADER_SIGNATURE) return { why: `has no local header at ${offset}` };
  const dataStart = LOCAL_HEADER_BYTES + head.readUInt16LE(26) + head.readUInt16LE(28);
  const data =
    dataStart + entry.compressedSize <= head.length
      ? head.subarray(dataStart, dataStart + entry.compressedSize)
      : await read(offset + dataStart, offset + dataStart + entry.compressedSize);
  let target: Buffer;
  try {
    target =
      entry.compressionMethod === DEFLATED ? inflateRawSync(data, { maxOutputLength: MAX_LINK_TARGET + 1 }) : data;
  } catch (err) {
    return { why: `does not inflate: ${(err as Error).message}` };
  }
  if (target.length !== entry.uncompressedSize)
    return { why: `holds ${target.length} bytes, its directory record says ${entry.uncompressedSize}` };
  const outside = linkTargetOutside(name, target);
  return outside !== undefined ? { why: outside } : { target: target.toString('utf8') };
}

/**
 * The new artifact's ends around the copied range: the manifest entry; the "." snapshot's
 * entries (`copied.entries`, in the order of their offsets: a directory in another order, or
 * entries that do not tile the range, throw) accounted for, not written; the other sources;
 * the central directory.
 */
async function writeEnds(
  deps: SnapshotCopyDeps,
  manifest: Manifest,
  {
    root,
    rootHead,
    others,
    otherHeads,
    registry,
    links,
  }: {
    root: SnapshotSource;
    rootHead: { etag: string };
    others: SnapshotSource[];
    otherHeads: Array<{ etag: string }>;
    registry: PathRegistry;
    links: SymlinkTable;
  },
  copied: { start: number; length: number; entries: AsyncIterable<PlacedEntry> },
): Promise<Prepared> {
  const { ends, placed, layout } = await writeZipEnds(
    manifest,
    async (zip) => {
      const rangeStart = zip.position;
      await zip.addCopiedEntries(copied.entries, copied.length);
      const copiedEntries = zip.entryCount - 1;
      const snapshots = [{ ...pick(root), etag: rootHead.etag }];
      for (const [i, source] of others.entries()) {
        const etag = otherHeads[i]!.etag;
        await appendFromMemory(deps, source, etag, zip, registry, links);
        snapshots.push({ ...pick(source), etag });
      }
      return { copiedEntries, snapshots, rangeStart, rangeLength: zip.position - rangeStart };
    },
    deps.tmpDir,
  );
  const { copiedEntries, ...artifact } = placed;
  return {
    range: { key: root.snapshotKey, etag: rootHead.etag, start: copied.start, length: copied.length },
    ends,
    written: { copiedEntries, artifact: { ...artifact, foreignLength: copied.length, layout } },
  };
}

function pick({ name, commit, snapshotKey, path }: SnapshotSource): SnapshotSource {
  return { name, commit, snapshotKey, path };
}

/** A small snapshot (config), read into memory and appended as appendSnapshot would. */
async function appendFromMemory(
  { s3, bucket }: SnapshotCopyDeps,
  source: SnapshotSource,
  etag: string,
  zip: RawZipWriter,
  registry: PathRegistry,
  links: SymlinkTable,
): Promise<void> {
  const out = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: source.snapshotKey, IfMatch: etag }));
  const bytes = Buffer.from(await out.Body!.transformToByteArray());
  const zipfile = await yauzl.fromBufferPromise(bytes, { lazyEntries: true, autoClose: false, decodeStrings: false });
  try {
    await appendSnapshotEntries({ source, zip, registry, links }, zipfile, async (start, end) =>
      bytes.subarray(start, end),
    );
  } finally {
    zipfile.close();
  }
}
