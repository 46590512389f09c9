import { PassThrough, type Readable } from 'node:stream';
import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import * as yauzl from 'yauzl';
import { zipEntries } from '../shared/zip';

/** Bytes fetched per ranged GET while the directory streams in. */
export const DEFAULT_WINDOW_BYTES = 4 * 1024 * 1024;

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
export async function openZipDirectory(s3: S3Client, zip: ZipObject, windowBytes = DEFAULT_WINDOW_BYTES): Promise<ZipDirectory> {
  const zipfile = await yauzl.fromRandomAccessReaderPromise(new WindowReader(s3, zip, windowBytes), zip.size, {
    lazyEntries: true,
    autoClose: false,
    decodeStrings: false,
  });
  // yauzl 3 starts reading entries at the directory's offset, which it keeps here.
  const offset: unknown = (zipfile as unknown as { readEntryCursor?: unknown }).readEntryCursor;
  if (typeof offset !== 'number') {
    zipfile.close();
    throw new Error('yauzl does not tell where the central directory starts');
  }
  return { offset, entries: () => zipEntries(zipfile), close: () => zipfile.close() };
}

/**
 * Serves yauzl's reads from one window of the object, fetched with a ranged GET (pinned to the
 * ETag) whenever a read falls outside it. yauzl reads the end records first, then the
 * directory front to back, so each window serves thousands of records.
 */
class WindowReader extends yauzl.RandomAccessReader {
  private window: Buffer = Buffer.alloc(0);
  private windowStart = 0;
  private pending: Promise<void> = Promise.resolve();

  constructor(
    private readonly s3: S3Client,
    private readonly zip: ZipObject,
    private readonly windowBytes: number,
  ) {
    super();
  }

  override _readStreamForRange(start: number, end: number): Readable {
    const out = new PassThrough();
    this.pending = this.pending.then(() => this.cover(start, end));
    this.pending.then(
      () => out.end(this.window.subarray(start - this.windowStart, end - this.windowStart)),
      (err: unknown) => out.destroy(err as Error),
    );
    return out;
  }

  private async cover(start: number, end: number): Promise<void> {
    if (start >= this.windowStart && end <= this.windowStart + this.window.length) return;
    const to = Math.min(this.zip.size, Math.max(end, start + this.windowBytes));
    const { bucket, key, etag } = this.zip;
    const out = await this.s3.send(new GetObjectCommand({ Bucket: bucket, Key: key, Range: `bytes=${start}-${to - 1}`, IfMatch: etag }));
    const array = await out.Body!.transformToByteArray();
    // A view, not a copy: the window is the only thing this reader holds.
    const bytes = Buffer.from(array.buffer, array.byteOffset, array.byteLength);
    if (bytes.length !== to - start) throw new Error(`asked for ${to - start} bytes at ${start} of ${key}, got ${bytes.length}`);
    this.window = bytes;
    this.windowStart = start;
  }
}
