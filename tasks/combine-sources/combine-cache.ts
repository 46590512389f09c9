import type { S3Client } from '@aws-sdk/client-s3';
import type { Manifest } from '../../shared/contracts';
import { headObject, type ObjectInfo } from '../shared/s3';
import type { WrittenArtifact } from './artifact-writer';
import {
  COMBINE_FORMAT_VERSION,
  combinedIndexKey,
  readCombinedIndex,
  writeCombinedIndex,
  type CombinedIndex,
  type SnapshotVersion,
} from './combined-index';
import { copyCombined } from './copy-combined';
import { MIN_PART_SIZE } from './range-copy';
import type { SnapshotSource } from './snapshot';

export interface CombineCacheDeps {
  readonly s3: S3Client;
  readonly bucket: string;
  /** Bytes per UploadPartCopy. @default DEFAULT_COPY_PART_SIZE (64 MiB) */
  readonly copyPartSize?: number;
  /** UploadPartCopy requests at once. @default DEFAULT_COPY_CONCURRENCY (8) */
  readonly copyConcurrency?: number;
  /** One line per combine about the cache (CloudWatch Logs on Lambda). @default console.log */
  readonly log?: (line: string) => void;
  /** Where a copy writes its new zip's ends. @default os.tmpdir() */
  readonly tmpDir?: string;
}

/**
 * When an earlier execution combined the same snapshots, writes `key` from its artifact (see
 * copy-combined.ts) and answers true; answers false when there is nothing to reuse or reusing
 * failed, having written nothing: the caller combines in full. Throws only the 412 of a key
 * that already exists, as a full combine would.
 */
export async function writeFromCombined(
  deps: CombineCacheDeps,
  key: string,
  manifest: Manifest,
  sources: ReadonlyArray<SnapshotSource>,
  heads: SnapshotHeads,
): Promise<boolean> {
  const log = deps.log ?? console.log;
  const versions = snapshotVersions(sources, heads);
  if (versions === undefined) return false;
  const indexKey = combinedIndexKey(versions);
  const lookup = await readCombinedIndex(deps.s3, deps.bucket, indexKey);
  if ('absent' in lookup) return false;
  if ('unusable' in lookup) {
    log(`combine-sources: cannot reuse an earlier combine (${lookup.unusable}); combining in full`);
    return false;
  }
  const { index } = lookup;
  const outcome = await copyCombined({ ...deps, key, manifest, index });
  if ('unavailable' in outcome) {
    log(`combine-sources: cannot reuse ${index.artifactKey} (${outcome.unavailable}); combining in full`);
    return false;
  }
  log(`combine-sources: copied ${index.rangeLength} bytes of ${index.entryCount} entries from ${index.artifactKey}`);
  // The newest artifact outlives the one the index named (artifacts expire): name it instead.
  if (outcome.etag !== undefined) {
    await saveIndex(deps, indexKey, {
      ...index,
      artifactKey: key,
      etag: outcome.etag,
      rangeStart: outcome.rangeStart,
      size: outcome.size,
    });
  }
  return true;
}

/** After a full combine: records its range for the next execution of the same snapshots. */
export async function rememberCombined(deps: CombineCacheDeps, key: string, written: WrittenArtifact): Promise<void> {
  const { etag, snapshots, rangeStart, rangeLength, foreignLength, layout } = written;
  // A smaller range cannot be copied as a part (see range-copy.ts): no index. A re-run
  // finds the range's entries in the directory right after it (copy-combined.ts zipEnds).
  if (etag === undefined || rangeLength < MIN_PART_SIZE || layout.directoryOffset !== rangeStart + rangeLength) return;
  const versions: SnapshotVersion[] = [];
  for (const snapshot of snapshots) {
    if (snapshot.etag === undefined) return;
    versions.push({ ...snapshot, etag: snapshot.etag });
  }
  const index = {
    formatVersion: COMBINE_FORMAT_VERSION,
    sources: versions,
    artifactKey: key,
    etag,
    rangeStart,
    rangeLength,
    foreignLength,
    size: layout.size,
    entryCount: layout.entryCount - 1,
  };
  await saveIndex(deps, combinedIndexKey(versions), index);
}

/** What HEAD answered for each snapshot (undefined: not there), or the error that stopped it. */
export type SnapshotHeads = ReadonlyArray<ObjectInfo | undefined> | Error;

/**
 * One HEAD per snapshot, shared by the reuse and the snapshot-copy paths. An error is answered,
 * not thrown: both paths then step aside and the full combine reports what is wrong.
 */
export async function headSnapshots(
  deps: CombineCacheDeps,
  sources: ReadonlyArray<SnapshotSource>,
): Promise<SnapshotHeads> {
  try {
    return await Promise.all(sources.map((s) => headObject(deps.s3, deps.bucket, s.snapshotKey)));
  } catch (err) {
    return err instanceof Error ? err : new Error(String(err));
  }
}

/** The snapshots' current ETags, or undefined when one cannot be read (the full combine reports why). */
function snapshotVersions(sources: ReadonlyArray<SnapshotSource>, heads: SnapshotHeads): SnapshotVersion[] | undefined {
  if (heads instanceof Error) return undefined;
  const versions = sources.map((s, i) => ({
    name: s.name,
    commit: s.commit,
    snapshotKey: s.snapshotKey,
    path: s.path,
    etag: heads[i]?.etag,
  }));
  return versions.every((v): v is SnapshotVersion => v.etag !== undefined) ? versions : undefined;
}

/** An index is a cache: failing to write one never fails the combine. */
async function saveIndex(deps: CombineCacheDeps, indexKey: string, index: CombinedIndex): Promise<void> {
  try {
    await writeCombinedIndex(deps.s3, deps.bucket, indexKey, index);
  } catch (err) {
    (deps.log ?? console.log)(
      `combine-sources: could not write ${indexKey} (${(err as Error).name}: ${(err as Error).message}); the next combine of these snapshots runs in full`,
    );
  }
}
