import type { AsyncLocalStorage } from 'node:async_hooks';
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { keyId, type KeyLocks } from './key-locks';
import type { ObjectTarget } from './request';

/** The parts of s3rver 3.7's FilesystemStore (lib/stores/filesystem.js) that this proxy uses. */
export interface PartStore {
  /** s3rver's version writes the object file in place (truncate, then stream), then its metadata; see writeStoreFilesWhole. */
  putObject(
    object: ObjectTarget & { readonly content?: Buffer | Readable; readonly metadata?: Record<string, unknown> },
  ): Promise<{ size: number; md5: string }>;
  /** s3rver's version writes the part's file in place, then its MD5 beside it; see writeStoreFilesWhole. */
  putPart(
    bucket: string,
    uploadId: string,
    partNumber: number,
    content: Readable,
  ): Promise<{ size: number; md5: string }>;
  deleteObject(bucket: string, key: string): Promise<void>;
  existsObject(bucket: string, key: string): Promise<boolean>;
  getBucket(bucket: string): Promise<{ name: string } | null>;
  /** Throws when the object does not exist. */
  getMetadata(bucket: string, key: string): Promise<Record<string, string | number>>;
  /** Keeps the allowed headers (content-type, x-amz-meta-*...) of `metadata`; `md5` becomes the ETag. */
  putMetadata(bucket: string, key: string, metadata: Record<string, unknown>, md5: string): Promise<void>;
  getResourcePath(bucket: string, key: string | undefined, resource: string): string;
}

/** A multipart upload: the key it was created for and its ID. */
export interface UploadTarget extends ObjectTarget {
  readonly uploadId: string;
}

/**
 * Makes s3rver's store take a key's write lock to write or delete it for a request that took none
 * in front of s3rver (`unlocked` marks them): the requests whose keys only s3rver finds, in a body
 * it parses itself, which are POST Object (a browser form, the key a form field) and DeleteObjects
 * (an XML list). A request that holds its key's lock already is not marked: the lock is not
 * reentrant. The lock goes when the store's work ends, whether or not the client is still there.
 */
export function lockStoreWrites(store: PartStore, keys: KeyLocks, unlocked: AsyncLocalStorage<true>): void {
  const putObject = store.putObject.bind(store);
  const deleteObject = store.deleteObject.bind(store);
  async function locked<T>(target: ObjectTarget, write: () => Promise<T>): Promise<T> {
    const release = await keys.acquire(keyId(target), true);
    try {
      return await write();
    } finally {
      release();
    }
  }
  store.putObject = (object) => (unlocked.getStore() ? locked(object, () => putObject(object)) : putObject(object));
  store.deleteObject = (bucket, key) =>
    unlocked.getStore() ? locked({ bucket, key }, () => deleteObject(bucket, key)) : deleteObject(bucket, key);
}

/**
 * Replaces s3rver's putObject and putPart, which truncate the key's file, stream the body into it,
 * and resolve once the bytes have passed their MD5 transform: before the file is written (a read
 * right after could see it short), leaving a short file when the client leaves mid-body, and
 * never settling then. These write a temporary file beside the target, wait until it is written,
 * and rename it over the target; a failed body removes it and leaves the target as it was.
 */
export function writeStoreFilesWhole(store: PartStore): void {
  store.putObject = async (object) => {
    const written = await writeWhole(store.getResourcePath(object.bucket, object.key, 'object'), object.content);
    await store.putMetadata(object.bucket, object.key, object.metadata ?? {}, written.md5);
    return written;
  };
  store.putPart = async (bucket, uploadId, partNumber, content) => {
    const file = join(uploadFolder(store, { bucket, uploadId }), String(partNumber));
    const written = await writeWhole(file, content);
    // The part was copied before (uploadPartCopy): that copy is replaced too.
    await Promise.all(['.source', '.range'].map((suffix) => rm(file + suffix, { force: true })));
    await writeFile(`${file}.md5`, written.md5);
    return written;
  };
}

/** Writes `content` to `file` through a temporary file (replaceFile); answers its size and MD5, as s3rver's store does. */
async function writeWhole(
  file: string,
  content: Buffer | Readable | undefined,
): Promise<{ size: number; md5: string }> {
  await mkdir(dirname(file), { recursive: true });
  const md5 = createHash('md5');
  let size = 0;
  const measure = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      md5.update(chunk);
      size += chunk.length;
      callback(null, chunk);
    },
  });
  const body =
    content === undefined ? Readable.from([]) : Buffer.isBuffer(content) ? Readable.from([content]) : content;
  await replaceFile(file, (temporary) => pipeline(body, measure, createWriteStream(temporary, { flags: 'wx' })));
  return { size, md5: md5.digest('hex') };
}

/**
 * A name in `file`'s folder for writing its next version, renamed over it when complete. s3rver
 * lists the files ending in `._S3rver_object`; this one ends in `.partial`, as no s3rver file
 * does, and is short, so that it fits wherever the object file's name does.
 */
function temporaryBeside(file: string): string {
  return join(dirname(file), `.${randomBytes(8).toString('hex')}.partial`);
}

/** Writes `file` through a temporary file renamed over it, removed if the write fails. */
export async function replaceFile(file: string, write: (temporary: string) => Promise<void>): Promise<void> {
  const temporary = temporaryBeside(file);
  try {
    await write(temporary);
    await rename(temporary, file);
  } catch (err) {
    await rm(temporary, { force: true });
    throw err;
  }
}

/** Where s3rver keeps an upload's parts, its key and its metadata until it is completed or aborted. */
export function uploadFolder(store: PartStore, upload: Pick<UploadTarget, 'bucket' | 'uploadId'>): string {
  return join(store.getResourcePath(upload.bucket, undefined, 'uploads'), upload.uploadId);
}

/** The upload was created for this key and is neither completed nor aborted (s3rver keeps its folder until then). */
export async function uploadExists(store: PartStore, upload: UploadTarget): Promise<boolean> {
  if (!/^[0-9a-f]+$/.test(upload.uploadId)) return false;
  try {
    return (await readFile(join(uploadFolder(store, upload), 'key'), 'utf8')) === upload.key;
  } catch {
    return false;
  }
}
