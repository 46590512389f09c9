import type { Readable } from 'node:stream';
import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import * as yauzl from 'yauzl';
import { zipEntries } from './entries';
import { WindowReader } from './window-reader';

/**
 * Bytes per ranged GET: ~10,000 directory records. Smaller windows mean more GETs; larger ones
 * more garbage per read at a million entries (BENCHMARKS.md §3).
 */
export const DEFAULT_WINDOW_BYTES = 1024 * 1024;

export interface ZipObject {
  readonly bucket: string;
  readonly key: string;
  /** ContentLength from HeadObject. */
  readonly size: number;
  /** ETag from HeadObject; when set, every read is pinned to it, so no read mixes two versions of the object. */
  readonly etag?: string;
}

/** A zip in S3 opened for reading; close it when done. */
export interface ZipInS3 {
  /** Where the central directory starts: where the last entry's data must end. */
  readonly offset: number;
  /**
   * The directory's entries, in its order, one at a time. Names are not decoded or checked
   * (yauzl's `decodeStrings: false`): read them with storedEntryName, check them with escapingEntryName.
   */
  entries(): AsyncGenerator<yauzl.Entry>;
  /** An entry's data, inflated, read through the same windows. */
  openReadStream(entry: yauzl.Entry): Promise<Readable>;
  close(): void;
}

/**
 * Opens a zip that stays in S3 with yauzl. Every read is a ranged GET of `windowBytes` that later
 * reads are served from: yauzl reads a zip in pieces of a few dozen bytes (a record, a name), one
 * GET each otherwise. One window, moving forward as the directory streams in, so memory holds one
 * window and the entry being read whatever the number of entries; entry data is read only when asked for.
 */
export async function openZipInS3(
  s3: S3Client,
  zip: ZipObject,
  { windowBytes = DEFAULT_WINDOW_BYTES }: { readonly windowBytes?: number } = {},
): Promise<ZipInS3> {
  const source = {
    name: `s3://${zip.bucket}/${zip.key}`,
    read: (start: number, end: number) => getRange(s3, zip, start, end),
  };
  const zipfile = await yauzl.fromRandomAccessReaderPromise(
    new WindowReader(source, zip.size, { windowBytes, windows: 1 }),
    zip.size,
    { lazyEntries: true, autoClose: false, decodeStrings: false },
  );
  // yauzl 3 starts reading entries at the directory's offset, which it keeps here.
  const offset: unknown = (zipfile as unknown as { readEntryCursor?: unknown }).readEntryCursor;
  if (typeof offset !== 'number') {
    zipfile.close();
    throw new Error('yauzl does not tell where the central directory starts');
  }
  return {
    offset,
    entries: () => zipEntries(zipfile),
    openReadStream: (entry) => zipfile.openReadStreamPromise(entry),
    close: () => zipfile.close(),
  };
}

/**
 * Exactly the bytes [start, end) of an object (If-Match its ETag when given); a shorter answer
 * throws rather than let a caller read past it.
 */
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
  if (array.byteLength !== end - start)
    throw new Error(`asked for ${end - start} bytes at ${start} of s3://${bucket}/${key}, got ${array.byteLength}`);
  // A view, not a copy: the caller is the only one that holds it.
  return Buffer.from(array.buffer, array.byteOffset, array.byteLength);
}
