import { createHash } from 'node:crypto';
import { GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { z } from 'zod';
import { isNotFound } from '../shared/s3';
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
 * same snapshots (entry order, modes, names, header fields...), the index changes shape, or an
 * artifact combined before would now be refused (a copy of it is not checked again), so no index
 * of the old layout is used again. Past raises: README.md in this folder.
 */
export const COMBINE_FORMAT_VERSION = 4;

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
  /**
   * Bytes at the range's start whose local headers were copied from a snapshot (their length is
   * only known to be at least header + name + data); the entries after them are checked exactly.
   */
  readonly foreignLength: number;
  /** The artifact's size: its central directory (after the range) lists the range's entries. */
  readonly size: number;
  /** How many entries the range holds (all but the manifest). */
  readonly entryCount: number;
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

const indexSchema = z.object({
  formatVersion: z.literal(COMBINE_FORMAT_VERSION),
  sources: z.array(
    z.object({ name: z.string(), commit: z.string(), snapshotKey: z.string(), etag: z.string(), path: z.string() }),
  ),
  // Only ever a combined artifact: an index must not make combine copy any other object of the bucket.
  artifactKey: z
    .string()
    .regex(/^artifacts\/[^/]+\/[^/]+\/source\.zip$/, 'must be artifacts/<environment>/<execution>/source.zip'),
  etag: z.string().min(1),
  rangeStart: uint,
  rangeLength: uint,
  foreignLength: uint,
  size: uint,
  entryCount: uint,
});

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
    return {
      unusable: `${key} is not a format ${COMBINE_FORMAT_VERSION} index: ${z.prettifyError(parsed.error).slice(0, 200)}`,
    };
  }
  return { index: parsed.data };
}

/** Writes an index (plain PUT: any writer's index is as good as another's). */
export async function writeCombinedIndex(
  s3: S3Client,
  bucket: string,
  key: string,
  index: CombinedIndex,
): Promise<void> {
  const body = { ...index, formatVersion: COMBINE_FORMAT_VERSION };
  await s3.send(
    new PutObjectCommand({ Bucket: bucket, Key: key, Body: JSON.stringify(body), ContentType: 'application/json' }),
  );
}
