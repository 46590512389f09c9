import { createHash } from 'node:crypto';
import { GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { z } from 'zod';
import { isNotFound } from '../shared/s3';
import type { PlacedEntry } from './raw-zip-writer';
import type { SnapshotSource } from './snapshot';

/**
 * The combine cache. Everything of source.zip after the manifest entry (the sources' local
 * headers and data) depends only on which snapshots are combined, in which order, under which
 * paths, and on how combine-sources lays them out. `combined/<hash>.json` records where those
 * bytes already sit in an earlier artifact, so that a later execution of the same snapshots
 * copies them inside S3 instead of combining again (see copy-combined.ts).
 *
 * A cache, not a contract: a missing, unreadable or stale index only costs a full combine,
 * which writes it again. Last writer wins.
 */
export const COMBINED_PREFIX = 'combined/';

/**
 * Part of every index key: raise it whenever combine-sources would write other bytes for the
 * same snapshots (entry order, modes, names, header fields...), so no index of the old layout
 * is used again.
 */
export const COMBINE_FORMAT_VERSION = 1;

/** A snapshot as combined: its ETag pins the exact object, since a key could be written again. */
export interface SnapshotVersion extends SnapshotSource {
  readonly etag: string;
}

export interface CombinedIndex {
  readonly formatVersion: number;
  /** What the range was combined from, for a person reading the index. */
  readonly sources: ReadonlyArray<SnapshotVersion>;
  /** The artifact holding the range, and its ETag: copies are pinned to it. */
  readonly artifactKey: string;
  readonly etag: string;
  readonly rangeStart: number;
  readonly rangeLength: number;
  /** The range's entries, offsets from the range's start. */
  readonly entries: ReadonlyArray<PlacedEntry>;
}

/** Where the index of these snapshots lives: sha256 of the format version and the ordered snapshots. */
export function combinedIndexKey(sources: ReadonlyArray<SnapshotVersion>): string {
  const identity = JSON.stringify({
    formatVersion: COMBINE_FORMAT_VERSION,
    sources: sources.map(({ name, commit, snapshotKey, etag, path }) => [name, commit, snapshotKey, etag, path]),
  });
  return `${COMBINED_PREFIX}${createHash('sha256').update(identity).digest('hex')}.json`;
}

const uint = z.number().int().nonnegative();

/**
 * Entries as tuples: 20,000 of them are ~1.2 MB of JSON instead of ~3 MB with field names:
 * [name, mode, DOS date, DOS time, method, CRC-32, compressed size, uncompressed size, offset],
 * then, only for an entry copied from a snapshot with its own local header (see
 * copy-snapshot.ts), that header's general purpose flags.
 */
type EntryTuple =
  | [string, number, number, number, number, number, number, number, number]
  | [string, number, number, number, number, number, number, number, number, number];

/** Checked by hand: zod takes ~100 ms on 20,000 tuples in a cold Lambda, this loop a few. */
function isEntryTuple(value: unknown): value is EntryTuple {
  if (!Array.isArray(value) || (value.length !== 9 && value.length !== 10) || typeof value[0] !== 'string' || value[0] === '') return false;
  for (let i = 1; i < value.length; i++) {
    const n: unknown = value[i];
    if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) return false;
  }
  return true;
}

const entryTuple = z.custom<EntryTuple>(isEntryTuple, 'must be [name, mode, date, time, method, crc32, compressedSize, uncompressedSize, offset, flags?]');

const indexSchema = z.object({
  formatVersion: z.literal(COMBINE_FORMAT_VERSION),
  sources: z.array(
    z.object({ name: z.string(), commit: z.string(), snapshotKey: z.string(), etag: z.string(), path: z.string() }),
  ),
  // Only ever a combined artifact: an index must not make combine copy any other object of the bucket.
  artifactKey: z.string().regex(/^artifacts\/[^/]+\/[^/]+\/source\.zip$/, 'must be artifacts/<environment>/<execution>/source.zip'),
  etag: z.string().min(1),
  rangeStart: uint,
  rangeLength: uint,
  entries: z.array(entryTuple),
});

function toTuple({ entry, offset }: PlacedEntry): EntryTuple {
  const { name, mode, mtime, compressionMethod, crc32, compressedSize, uncompressedSize, foreignFlags } = entry;
  const tuple: EntryTuple = [name, mode, mtime.date, mtime.time, compressionMethod, crc32 >>> 0, compressedSize, uncompressedSize, offset];
  return foreignFlags === undefined ? tuple : [...tuple, foreignFlags];
}

function fromTuple([name, mode, date, time, compressionMethod, crc32, compressedSize, uncompressedSize, offset, foreignFlags]: EntryTuple): PlacedEntry {
  const entry = { name, mode, mtime: { date, time }, compressionMethod, crc32, compressedSize, uncompressedSize };
  return { entry: foreignFlags === undefined ? entry : { ...entry, foreignFlags }, offset };
}

/** The index; or none yet (the first combine of these snapshots); or one that cannot be used, and why. */
export type IndexLookup = { readonly index: CombinedIndex } | { readonly absent: true } | { readonly unusable: string };

/** Reads an index; any failure is a cache miss. */
export async function readCombinedIndex(s3: S3Client, bucket: string, key: string): Promise<IndexLookup> {
  let json: string;
  try {
    const out = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    json = await out.Body!.transformToString();
  } catch (err) {
    if (isNotFound(err)) return { absent: true };
    return { unusable: `${key} not read (${(err as Error).name}: ${(err as Error).message})` };
  }
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch {
    return { unusable: `${key} is not JSON` };
  }
  const parsed = indexSchema.safeParse(value);
  if (!parsed.success) {
    return { unusable: `${key} is not a format ${COMBINE_FORMAT_VERSION} index: ${z.prettifyError(parsed.error).slice(0, 200)}` };
  }
  return { index: { ...parsed.data, entries: parsed.data.entries.map(fromTuple) } };
}

/** Writes an index (plain PUT: any writer's index is as good as another's). */
export async function writeCombinedIndex(s3: S3Client, bucket: string, key: string, index: CombinedIndex): Promise<void> {
  const body = { ...index, formatVersion: COMBINE_FORMAT_VERSION, entries: index.entries.map(toTuple) };
  await s3.send(
    new PutObjectCommand({ Bucket: bucket, Key: key, Body: JSON.stringify(body), ContentType: 'application/json' }),
  );
}
