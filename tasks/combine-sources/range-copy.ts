import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, open, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  UploadPartCommand,
  UploadPartCopyCommand,
  type CompletedPart,
  type S3Client,
} from '@aws-sdk/client-s3';
import type { Manifest } from '../../shared/contracts';
import { isConditionalRequestConflict, isPreconditionFailed, sendFileStream } from '../shared/s3';
import { withLimit } from '../shared/with-limit';
import { getRange, RawZipWriter, type ZipLayout } from '../shared/zip';
import { addManifestEntry } from './artifact-writer';

/**
 * A new zip written as head + a range of another object + tail in one multipart upload, the range
 * copied by S3 itself (UploadPartCopy): the reuse of an earlier combine (copy-combined.ts) and the
 * snapshot copy (copy-snapshot.ts) both write source.zip this way.
 */

/** S3's smallest size for a part other than the last. */
export const MIN_PART_SIZE = 5 * 1024 * 1024;
/** S3's largest part, copied or uploaded. */
const MAX_PART_SIZE = 5 * 1024 * 1024 * 1024;
const MAX_PARTS = 10_000;
/** Copies run inside S3: many mid-sized parts at once finish sooner than a few large ones. */
export const DEFAULT_COPY_PART_SIZE = 64 * 1024 * 1024;
export const DEFAULT_COPY_CONCURRENCY = 8;

/** Written: the new artifact's ETag, where the copied range starts in it, its size. Or why not, nothing written. */
export type CopyOutcome =
  | { readonly etag: string | undefined; readonly rangeStart: number; readonly size: number }
  | { readonly unavailable: string };

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

export function checkedCopyPartSize(size: number): number {
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

async function uploadParts(upload: Upload, plan: PartPlan, ends: ZipEnds): Promise<CompletedPart[]> {
  const { s3, bucket, range } = upload;
  const start = await getRange(s3, { bucket, key: range.key, etag: range.etag }, range.start, range.start + plan.first);
  const first = await uploadPart(upload, 1, Buffer.concat([ends.head, start]));
  const lastNumber = plan.copies.length + 2;
  const [copies, last] = await Promise.all([
    withLimit(plan.copies, upload.copyConcurrency ?? DEFAULT_COPY_CONCURRENCY, (range, i) =>
      copyPart(upload, i + 2, range),
    ),
    uploadFilePart(upload, lastNumber, ends.tail),
  ]);
  return [first, ...copies, last];
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

export function unavailable(what: string, err: unknown): { readonly unavailable: string } {
  const e = err as Error;
  return { unavailable: `${what}: ${e.name}: ${e.message}` };
}
