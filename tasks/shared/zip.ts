import { PassThrough, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import * as yauzl from 'yauzl';

/**
 * Lets yauzl read a zip that stays in S3: every read is a ranged GetObject, so looking at a few
 * entries of a large archive costs a few requests instead of a download.
 */
class S3RangeReader extends yauzl.RandomAccessReader {
  constructor(
    private readonly s3: S3Client,
    private readonly bucket: string,
    private readonly key: string,
    private readonly etag: string | undefined,
  ) {
    super();
  }

  override _readStreamForRange(start: number, end: number): Readable {
    const out = new PassThrough();
    this.s3
      .send(
        new GetObjectCommand({
          Bucket: this.bucket,
          Key: this.key,
          Range: `bytes=${start}-${end - 1}`,
          // Every range must come from the same object version.
          IfMatch: this.etag,
        }),
      )
      .then((response) => pipeline(response.Body as Readable, out))
      .catch((err: unknown) => out.destroy(err as Error));
    return out;
  }
}

export interface S3ZipLocation {
  readonly bucket: string;
  readonly key: string;
  /** ContentLength from HeadObject. */
  readonly size: number;
  /** ETag from HeadObject; when set, every ranged read is pinned to it. */
  readonly etag?: string;
}

/** Opens a zip in S3 for reading with lazy entries (call `readEntry()`); close it when done. */
export function openZipInS3(s3: S3Client, location: S3ZipLocation): Promise<yauzl.ZipFile> {
  const reader = new S3RangeReader(s3, location.bucket, location.key, location.etag);
  return yauzl.fromRandomAccessReaderPromise(reader, location.size, { lazyEntries: true, autoClose: false });
}

/**
 * The entries of a zip opened with `lazyEntries: true`, one at a time: the next entry is read
 * only when the caller asks for it, so a caller that finishes each entry's data first holds one
 * entry in memory at most.
 */
export async function* zipEntries(zipfile: yauzl.ZipFile): AsyncGenerator<yauzl.Entry> {
  for (;;) {
    const entry = await new Promise<yauzl.Entry | undefined>((resolve, reject) => {
      const onEntry = (e: yauzl.Entry): void => settle(() => resolve(e));
      const onEnd = (): void => settle(() => resolve(undefined));
      const onError = (err: Error): void => settle(() => reject(err));
      const settle = (done: () => void): void => {
        zipfile.off('entry', onEntry).off('end', onEnd).off('error', onError);
        done();
      };
      zipfile.on('entry', onEntry).on('end', onEnd).on('error', onError);
      zipfile.readEntry();
    });
    if (entry === undefined) return;
    yield entry;
  }
}

/**
 * An entry's name as it is stored (UTF-8, CP437, or Info-ZIP's Unicode path field), backslashes
 * kept: yauzl's default turns each into a "/", which made a repository's `a\b.txt` ship as
 * `a/b.txt`, a folder the repository does not have.
 */
export function storedEntryName(entry: yauzl.Entry): string {
  return yauzl.getFileNameLowLevel(entry.generalPurposeBitFlag, entry.fileNameRaw, entry.extraFields, true);
}

/**
 * Why an entry named `name` would be written outside the folder it is extracted into (an
 * absolute path, a `..` segment), or undefined. Not yauzl.validateFileName: that also refuses
 * `c:foo.txt`, a valid POSIX name, as a Windows drive path, and the builds run on Linux.
 */
export function escapingEntryName(name: string): string | undefined {
  if (name.startsWith('/')) return `absolute path: ${name}`;
  if (name.split('/').includes('..')) return `invalid relative path: ${name}`;
  return undefined;
}
