import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, open, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  UploadPartCommand,
  UploadPartCopyCommand,
  type CompletedPart,
  type S3Client,
} from '@aws-sdk/client-s3';
import type { Manifest } from '../../shared/contracts';
import { isConditionalRequestConflict, isPreconditionFailed, sendFileStream } from '../shared/s3';
import { addManifestEntry } from './artifact-writer';
import type { CombinedIndex } from './combined-index';
import { MANIFEST_NAME } from './manifest';
import { RawZipWriter, type PlacedEntry, type ZipLayout } from './raw-zip-writer';
import { directoryEntry } from './snapshot';
import { openZipDirectory } from './zip-directory';

/** S3's smallest size for a part other than the last. */
export const MIN_PART_SIZE = 5 * 1024 * 1024;
/** S3's largest part, copied or uploaded. */
const MAX_PART_SIZE = 5 * 1024 * 1024 * 1024;
const MAX_PARTS = 10_000;
/** Copies run inside S3: many mid-sized parts at once finish sooner than a few large ones. */
export const DEFAULT_COPY_PART_SIZE = 64 * 1024 * 1024;
export const DEFAULT_COPY_CONCURRENCY = 8;

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

/** Written: the new artifact's ETag, where the copied range starts in it, its size. Or why not, nothing written. */
export type CopyOutcome =
  | { readonly etag: string | undefined; readonly rangeStart: number; readonly size: number }
  | { readonly unavailable: string };

/**
 * Writes source.zip from the range of an earlier artifact of the same snapshots, which S3
 * copies itself, so the snapshots are not read at all:
 * - part 1: this execution's manifest entry, then the range's first MIN_PART_SIZE bytes (a
 *   ranged GET; a part other than the last needs 5 MiB, more than a manifest entry holds);
 * - parts 2…n-1: UploadPartCopy of the rest of the range;
 * - part n: the central directory and end records: the earlier artifact's records of the
 *   range's entries, read from its own directory as it streams in (zip-directory.ts), placed
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

/** Bytes of an object that S3 copies into a new zip between its `head` and its `tail`. */
export interface CopiedRange {
  readonly key: string;
  /** Every read and copy of `key` is pinned to it. */
  readonly etag: string;
  readonly start: number;
  readonly length: number;
}

export interface CopyRangeOptions {
  readonly s3: S3Client;
  readonly bucket: string;
  /** The new zip's key. */
  readonly key: string;
  readonly range: CopiedRange;
  readonly ends: ZipEnds;
  readonly copyPartSize?: number;
  readonly copyConcurrency?: number;
}

/**
 * Writes `key` as ends.head + the range + ends.tail in one multipart upload (parts as
 * copyCombined describes), completed with If-None-Match: *. Throws only that 412 and a 409
 * ConditionalRequestConflict; any other failure aborts the upload and answers `unavailable`.
 * The ends are disposed of when it returns.
 */
export async function copyRange(options: CopyRangeOptions): Promise<CopyOutcome> {
  try {
    return await uploadRange(options);
  } finally {
    await options.ends.dispose();
  }
}

async function uploadRange(options: CopyRangeOptions): Promise<CopyOutcome> {
  const { range, ends } = options;
  const plan = planParts(range.length, checkedCopyPartSize(options.copyPartSize ?? DEFAULT_COPY_PART_SIZE));
  if (plan === undefined) return { unavailable: `the range is ${range.length} bytes, less than a part` };
  let uploadId: string;
  try {
    const created = await options.s3.send(
      new CreateMultipartUploadCommand({ Bucket: options.bucket, Key: options.key, ContentType: 'application/zip' }),
    );
    uploadId = created.UploadId!;
  } catch (err) {
    return unavailable('CreateMultipartUpload failed', err);
  }
  const upload = { ...options, uploadId };
  let parts: CompletedPart[];
  try {
    parts = await uploadParts(upload, plan, ends);
  } catch (err) {
    await abort(upload);
    return unavailable(`copying s3://${options.bucket}/${range.key} failed`, err);
  }
  return complete(upload, parts, ends.head.length, ends.head.length + range.length + ends.tail.length);
}

interface Upload extends CopyRangeOptions {
  readonly uploadId: string;
}

/** Bytes of the range, relative to its start: part 1's share, then one range per copied part. */
export interface PartPlan {
  readonly first: number;
  readonly copies: ReadonlyArray<{ readonly start: number; readonly length: number }>;
}

function checkedCopyPartSize(size: number): number {
  if (!Number.isInteger(size) || size < 2 * MIN_PART_SIZE || size > MAX_PART_SIZE) {
    // Half of it must still be a valid part: see planParts.
    throw new Error(`copyPartSize must be a whole number of bytes between 10 MiB and 5 GiB, got ${size}`);
  }
  return size;
}

/**
 * Splits the range so that every part but the last (the directory) has at least MIN_PART_SIZE
 * bytes: copies share the rest evenly, each at least half of `partSize` (≥ 5 MiB) and at most
 * `partSize`, unless 10,000 parts need more. Undefined when the range is smaller than a part.
 */
export function planParts(length: number, partSize: number): PartPlan | undefined {
  if (length < MIN_PART_SIZE) return undefined;
  const first = length - MIN_PART_SIZE < MIN_PART_SIZE ? length : MIN_PART_SIZE;
  const rest = length - first;
  const size = Math.max(partSize, Math.ceil(rest / (MAX_PARTS - 2)));
  const count = Math.ceil(rest / size);
  const copies = [];
  for (let i = 0, start = first; i < count; i++) {
    const part = Math.floor(rest / count) + (i < rest % count ? 1 : 0);
    copies.push({ start, length: part });
    start += part;
  }
  return { first, copies };
}

export interface ZipEnds {
  /** The new manifest entry: what goes before the copied range. */
  readonly head: Buffer;
  /** What goes after it (the other sources' entries, the central directory and end records), in a file. */
  readonly tail: { readonly path: string; readonly start: number; readonly length: number };
  /** Deletes the tail's file. */
  dispose(): Promise<void>;
}

/**
 * This execution's manifest entry, and the directory of the range's entries after it: the
 * earlier artifact's directory must start where the range ends, list the manifest first (at
 * offset 0) and then exactly `index.entryCount` entries that tile the range (exactly, past the
 * first `index.foreignLength` bytes).
 */
async function zipEnds({ s3, bucket, manifest, tmpDir }: CopyCombinedOptions, index: CombinedIndex): Promise<ZipEnds> {
  const directory = await openZipDirectory(s3, { bucket, key: index.artifactKey, size: index.size, etag: index.etag });
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

/**
 * The ends of a new zip around a range that S3 copies: the head is this execution's manifest
 * entry; `place` then accounts for the range (addCopiedEntries) and adds what follows it; the
 * central directory and end records close the tail. The zip's bytes go to a file in a folder
 * of their own under `tmpDir`, and so do its directory records past the first 8 MiB
 * (RawZipWriter's spillDir): a directory of a million entries is ~100 MB, and the other
 * sources in the tail up to MAX_OTHER_SNAPSHOTS_BYTES. Only the head is read back into memory.
 * When `place` or the writer fails, the writer is torn down, the folder deleted and the error
 * thrown; otherwise the caller disposes of the ends once the tail is uploaded.
 */
export async function writeZipEnds<T>(
  manifest: Manifest,
  place: (zip: RawZipWriter) => Promise<T>,
  tmpDir: string = tmpdir(),
): Promise<{ ends: ZipEnds; placed: T; layout: ZipLayout }> {
  const folder = await mkdtemp(join(tmpDir, 'stepdeploy-ends-'));
  const path = join(folder, 'ends.zip');
  const zip = new RawZipWriter({ spillDir: folder });
  const written = pipeline(zip.output, createWriteStream(path));
  try {
    await addManifestEntry(zip, manifest);
    const headLength = zip.position;
    const placed = await place(zip);
    const layout = await zip.end();
    await written;
    const { size } = await stat(path);
    const head = Buffer.alloc(headLength);
    const file = await open(path, 'r');
    try {
      const { bytesRead } = await file.read(head, 0, headLength, 0);
      if (bytesRead !== headLength) throw new Error(`the zip's head is ${headLength} bytes; ${bytesRead} were written`);
    } finally {
      await file.close();
    }
    const ends: ZipEnds = {
      head,
      tail: { path, start: headLength, length: size - headLength },
      dispose: () => rm(folder, { recursive: true, force: true }),
    };
    return { ends, placed, layout };
  } catch (err) {
    zip.output.destroy(err as Error);
    await written.catch(() => undefined);
    await rm(folder, { recursive: true, force: true });
    throw err;
  }
}

/** The manifest's name as the directory stores it (UTF-8). */
const MANIFEST_NAME_BYTES = Buffer.from(MANIFEST_NAME, 'utf8');

async function uploadParts(upload: Upload, plan: PartPlan, ends: ZipEnds): Promise<CompletedPart[]> {
  const first = await uploadPart(upload, 1, Buffer.concat([ends.head, await readRange(upload, 0, plan.first)]));
  const lastNumber = plan.copies.length + 2;
  const [copies, last] = await Promise.all([
    withLimit(plan.copies, upload.copyConcurrency ?? DEFAULT_COPY_CONCURRENCY, (range, i) =>
      copyPart(upload, i + 2, range),
    ),
    uploadFilePart(upload, lastNumber, ends.tail),
  ]);
  return [first, ...copies, last];
}

/** Bytes [start, start + length) of the range, from the earlier artifact as the index knew it. */
async function readRange({ s3, bucket, range }: Upload, start: number, length: number): Promise<Buffer> {
  const from = range.start + start;
  const out = await s3.send(
    new GetObjectCommand({
      Bucket: bucket,
      Key: range.key,
      Range: `bytes=${from}-${from + length - 1}`,
      IfMatch: range.etag,
    }),
  );
  const bytes = Buffer.from(await out.Body!.transformToByteArray());
  if (bytes.length !== length) throw new Error(`asked for ${length} bytes at ${from}, got ${bytes.length}`);
  return bytes;
}

async function uploadPart(
  { s3, bucket, key, uploadId }: Upload,
  PartNumber: number,
  Body: Buffer,
): Promise<CompletedPart> {
  const out = await s3.send(new UploadPartCommand({ Bucket: bucket, Key: key, UploadId: uploadId, PartNumber, Body }));
  return { PartNumber, ETag: out.ETag };
}

/** Attempts at the last part: its body is a file stream, which the SDK cannot send again when it retries. */
const FILE_PART_ATTEMPTS = 3;

/** A part read from a file, each attempt with a stream of its own (any error is tried again). */
async function uploadFilePart(
  { s3, bucket, key, uploadId }: Upload,
  PartNumber: number,
  part: ZipEnds['tail'],
): Promise<CompletedPart> {
  const out = await sendFileStream(
    () => createReadStream(part.path, { start: part.start, end: part.start + part.length - 1 }),
    (Body) =>
      s3.send(
        new UploadPartCommand({
          Bucket: bucket,
          Key: key,
          UploadId: uploadId,
          PartNumber,
          Body,
          ContentLength: part.length,
        }),
      ),
    { attempts: FILE_PART_ATTEMPTS },
  );
  return { PartNumber, ETag: out.ETag };
}

async function copyPart(
  upload: Upload,
  PartNumber: number,
  part: { start: number; length: number },
): Promise<CompletedPart> {
  const { s3, bucket, key, uploadId, range } = upload;
  const from = range.start + part.start;
  const out = await s3.send(
    new UploadPartCopyCommand({
      Bucket: bucket,
      Key: key,
      UploadId: uploadId,
      PartNumber,
      CopySource: `${bucket}/${range.key.split('/').map(encodeURIComponent).join('/')}`,
      CopySourceRange: `bytes=${from}-${from + part.length - 1}`,
      CopySourceIfMatch: range.etag,
    }),
  );
  return { PartNumber, ETag: out.CopyPartResult?.ETag };
}

async function complete(
  upload: Upload,
  parts: CompletedPart[],
  rangeStart: number,
  size: number,
): Promise<CopyOutcome> {
  try {
    const out = await upload.s3.send(
      new CompleteMultipartUploadCommand({
        Bucket: upload.bucket,
        Key: upload.key,
        UploadId: upload.uploadId,
        MultipartUpload: { Parts: parts },
        IfNoneMatch: '*',
      }),
    );
    return { etag: out.ETag, rangeStart, size };
  } catch (err) {
    await abort(upload);
    if (isPreconditionFailed(err) || isConditionalRequestConflict(err)) throw err;
    return unavailable('CompleteMultipartUpload failed', err);
  }
}

/** Best effort: a part left behind is removed by the bucket's abort-incomplete-uploads rule. */
async function abort({ s3, bucket, key, uploadId }: Upload): Promise<void> {
  await s3
    .send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: uploadId }))
    .catch(() => undefined);
}

function unavailable(what: string, err: unknown): { readonly unavailable: string } {
  const e = err as Error;
  return { unavailable: `${what}: ${e.name}: ${e.message}` };
}

/** Runs `run` over `items`, at most `limit` at a time, results in order; stops starting new ones after a failure. */
export async function withLimit<T, R>(
  items: ReadonlyArray<T>,
  limit: number,
  run: (item: T, i: number) => Promise<R>,
): Promise<R[]> {
  const results: R[] = new Array<R>(items.length);
  let next = 0;
  let failed = false;
  const worker = async (): Promise<void> => {
    while (!failed && next < items.length) {
      const i = next++;
      try {
        results[i] = await run(items[i]!, i);
      } catch (err) {
        failed = true;
        throw err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  return results;
}
