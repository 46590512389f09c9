import type { S3Client } from '@aws-sdk/client-s3';
import type { Manifest } from '../../shared/contracts';
import { openZipInS3, type PlacedEntry } from '../shared/zip';
import type { CombinedIndex } from './combined-index';
import { MANIFEST_NAME, MANIFEST_NAME_BYTES } from './manifest';
import {
  checkedCopyPartSize,
  copyRange,
  type CopyOutcome,
  DEFAULT_COPY_PART_SIZE,
  planParts,
  unavailable,
  writeZipEnds,
  type ZipEnds,
} from './range-copy';
import { directoryEntry } from './snapshot';

export interface CopyCombinedOptions {
  readonly s3: S3Client;
  readonly bucket: string;
  /** The new artifact's key. */
  readonly key: string;
  readonly manifest: Manifest;
  readonly index: CombinedIndex;
  /** Bytes per UploadPartCopy, between 10 MiB and 5 GiB. @default DEFAULT_COPY_PART_SIZE */
  readonly copyPartSize?: number;
  /** @default DEFAULT_COPY_CONCURRENCY */
  readonly copyConcurrency?: number;
  /** Where the new zip's ends are written (writeZipEnds). @default os.tmpdir() */
  readonly tmpDir?: string;
}

/**
 * Writes source.zip from the range of an earlier artifact of the same snapshots, which S3
 * copies itself, so the snapshots are not read at all:
 * - part 1: this execution's manifest entry, then the range's first MIN_PART_SIZE bytes (a
 *   ranged GET; a part other than the last needs 5 MiB, more than a manifest entry holds);
 * - parts 2…n-1: UploadPartCopy of the rest of the range;
 * - part n: the central directory and end records: the earlier artifact's records of the
 *   range's entries, read from its own directory as it streams in (openZipInS3), placed
 *   after the new manifest entry (RawZipWriter writes them, ZIP64 included).
 * Every read of the earlier artifact is pinned to the index's ETag; memory holds part 1 and
 * the new directory's records, never the range.
 *
 * Written once, like a full combine: CompleteMultipartUpload carries If-None-Match: *, and its
 * 412 (the key exists: a concurrent invocation or a redrive) is thrown as it is, as is S3's 409
 * ConditionalRequestConflict (nothing written; combineSources writes again from a new upload).
 * Any other failure aborts the upload and answers `unavailable`, with the reason: combine in full then.
 */
export async function copyCombined(options: CopyCombinedOptions): Promise<CopyOutcome> {
  const { index } = options;
  const plan = planParts(index.rangeLength, checkedCopyPartSize(options.copyPartSize ?? DEFAULT_COPY_PART_SIZE));
  if (plan === undefined) return { unavailable: `the range is ${index.rangeLength} bytes, less than a part` };
  let ends: ZipEnds;
  try {
    ends = await zipEnds(options, index);
  } catch (err) {
    return unavailable('the index does not describe its range', err);
  }
  const range = { key: index.artifactKey, etag: index.etag, start: index.rangeStart, length: index.rangeLength };
  return copyRange({ ...options, range, ends });
}

/**
 * This execution's manifest entry, and the directory of the range's entries after it: the
 * earlier artifact's directory must start where the range ends, list the manifest first (at
 * offset 0) and then exactly `index.entryCount` entries that tile the range (exactly, past the
 * first `index.foreignLength` bytes).
 */
async function zipEnds({ s3, bucket, manifest, tmpDir }: CopyCombinedOptions, index: CombinedIndex): Promise<ZipEnds> {
  const directory = await openZipInS3(s3, { bucket, key: index.artifactKey, size: index.size, etag: index.etag });
  try {
    const rangeEnd = index.rangeStart + index.rangeLength;
    if (directory.offset !== rangeEnd)
      throw new Error(`its directory starts at ${directory.offset}, not where the range ends (${rangeEnd})`);
    const entries = directory.entries();
    const first = await entries.next();
    if (
      first.done === true ||
      first.value.relativeOffsetOfLocalHeader !== 0 ||
      !first.value.fileNameRaw.equals(MANIFEST_NAME_BYTES)
    ) {
      throw new Error(`its first entry is not ${MANIFEST_NAME}`);
    }
    async function* range(): AsyncGenerator<PlacedEntry> {
      for await (const entry of entries) {
        const offset = entry.relativeOffsetOfLocalHeader - index.rangeStart;
        const { foreignFlags, ...own } = directoryEntry(entry);
        // Past the snapshot-copied bytes every local header is RawZipWriter's: checked exactly.
        yield { entry: offset < index.foreignLength ? { ...own, foreignFlags } : own, offset };
      }
    }
    const { ends } = await writeZipEnds(
      manifest,
      async (zip) => {
        await zip.addCopiedEntries(range(), index.rangeLength);
        if (zip.entryCount - 1 !== index.entryCount)
          throw new Error(
            `its directory lists ${zip.entryCount - 1} entries after the manifest, the index ${index.entryCount}`,
          );
      },
      tmpDir,
    );
    return ends;
  } finally {
    directory.close();
  }
}
