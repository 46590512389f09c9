import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import * as yauzl from 'yauzl';
import { zipEntries } from '../shared/zip';
import { WindowReader, type WindowSource } from './window-reader';

/**
 * Bytes fetched per ranged GET while the directory streams in: ~10,000 records per GET. Was
 * 4 MiB; at a million entries each window read is garbage until a collection, and 1 MiB windows
 * measured 5-10 MB less on the copy paths (168 vs 172 MB, 157 vs 166-176 MB), at 4x the GETs
 * (100 instead of 25 for a million entries; one for a typical repository either way).
 */
export const DEFAULT_WINDOW_BYTES = 1024 * 1024;

/** A zip's central directory in S3, read as it streams in; close it when done. */
export interface ZipDirectory {
  /** Where the central directory starts: where the last entry's data must end. */
  readonly offset: number;
  /** The directory's entries, in the directory's order, one at a time. */
  entries(): AsyncGenerator<yauzl.Entry>;
  close(): void;
}

export interface ZipObject {
  readonly bucket: string;
  readonly key: string;
  readonly size: number;
  /** Every read is pinned to it, so the directory cannot mix two versions of the object. */
  readonly etag: string;
}

/**
 * Opens the central directory of a zip that stays in S3 with yauzl, reading only the
 * directory and the end records, never entry data: ranged GETs of `windowBytes` that move
 * forward as yauzl reads record after record. Memory holds one window and the entry being
 * read, whatever the number of entries (a plain range reader makes one GET per record; a
 * reader that keeps the whole directory holds ~100 bytes per entry, plus yauzl's objects
 * when the caller collects them).
 */
export async function openZipDirectory(
  s3: S3Client,
  zip: ZipObject,
  windowBytes = DEFAULT_WINDOW_BYTES,
): Promise<ZipDirectory> {
  const zipfile = await yauzl.fromRandomAccessReaderPromise(
    new WindowReader(s3Window(s3, zip), zip.size, { windowBytes, windows: 1 }),
    zip.size,
    {
      lazyEntries: true,
      autoClose: false,
      decodeStrings: false,
    },
  );
  // yauzl 3 starts reading entries at the directory's offset, which it keeps here.
  const offset: unknown = (zipfile as unknown as { readEntryCursor?: unknown }).readEntryCursor;
  if (typeof offset !== 'number') {
    zipfile.close();
    throw new Error('yauzl does not tell where the central directory starts');
  }
  return { offset, entries: () => zipEntries(zipfile), close: () => zipfile.close() };
}

/** Ranged GETs of one version of an object (If-Match its ETag). */
function s3Window(s3: S3Client, object: Omit<ZipObject, 'size'>): WindowSource {
  return { name: `s3://${object.bucket}/${object.key}`, read: (start, end) => getRange(s3, object, start, end) };
}

/** The bytes [start, end) of one version of an object (If-Match its ETag). */
export async function getRange(
  s3: S3Client,
  { bucket, key, etag }: Omit<ZipObject, 'size'>,
  start: number,
  end: number,
): Promise<Buffer> {
  const out = await s3.send(
    new GetObjectCommand({ Bucket: bucket, Key: key, Range: `bytes=${start}-${end - 1}`, IfMatch: etag }),
  );
  const array = await out.Body!.transformToByteArray();
  // A view, not a copy: the caller is the only one that holds it.
  return Buffer.from(array.buffer, array.byteOffset, array.byteLength);
}
