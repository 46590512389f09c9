import type { ReadStream } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { GetObjectCommand, HeadObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { ConditionalWriteConflictError } from './errors';

interface ServiceError {
  readonly name?: string;
  readonly $metadata?: { readonly httpStatusCode?: number };
}

function statusOf(err: unknown): number | undefined {
  return (err as ServiceError | undefined)?.$metadata?.httpStatusCode;
}

/** HeadObject answers a bare 404 (`NotFound`), GetObject a `NoSuchKey`. */
export function isNotFound(err: unknown): boolean {
  const name = (err as ServiceError | undefined)?.name;
  return name === 'NotFound' || name === 'NoSuchKey' || statusOf(err) === 404;
}

/** An S3 answer of 4xx: the request itself is wrong (denied, no such bucket), and sending it again would not help. */
export function isClientError(err: unknown): boolean {
  const status = statusOf(err);
  return status !== undefined && status < 500;
}

/** A conditional write (`IfNoneMatch: '*'`, `IfMatch`) lost: the object exists or changed. */
export function isPreconditionFailed(err: unknown): boolean {
  return (err as ServiceError | undefined)?.name === 'PreconditionFailed' || statusOf(err) === 412;
}

/**
 * S3's 409 `ConditionalRequestConflict`: a conditional write (If-None-Match / If-Match on PutObject,
 * CopyObject or CompleteMultipartUpload) met a conflicting operation on its key and did not
 * happen. It answers nothing about the condition (a retry may succeed or get 412), and S3 says to
 * retry: a PutObject as it is (If-Match: with the ETag read again), a CompleteMultipartUpload with
 * a new multipart upload, its parts uploaded again. The SDK does not retry it itself (it is neither
 * a throttling nor a transient error to the SDK's retry strategy).
 */
export function isConditionalRequestConflict(err: unknown): boolean {
  return (err as ServiceError | undefined)?.name === 'ConditionalRequestConflict';
}

export interface ConflictRetryOptions {
  /** Attempts in all, the first included. @default CONFLICT_ATTEMPTS */
  readonly attempts?: number;
  /** @default timers/promises setTimeout */
  readonly sleep?: (ms: number) => Promise<unknown>;
  /** @default Math.random */
  readonly random?: () => number;
}

/** Attempts of a conditional write that S3 answers 409: five waits of at most 0.1 + 0.2 + 0.4 + 0.8 + 1.6 s. */
export const CONFLICT_ATTEMPTS = 6;

/**
 * How long to wait after the `attempt`th write in a row lost a race (a 409, or a 412 for a caller
 * that reads again): full jitter up to 100 ms × 2^(attempt-1), at most 2 s, so racing writers
 * spread out instead of meeting again.
 */
export function conflictBackoffMs(attempt: number, random: () => number = Math.random): number {
  return Math.floor(random() * Math.min(2000, 100 * 2 ** (attempt - 1)));
}

/**
 * Runs a conditional write again, after a bounded backoff, while S3 answers it 409
 * ConditionalRequestConflict, as S3 says to. `write` runs whole each time, so it must do again
 * what S3 asks for on a 409 (read the ETag again for If-Match; a new multipart upload). Whatever
 * else it ends with is returned or thrown as it is: success, a 412 (decided by the condition now:
 * another write came first), any other error. After `attempts` 409s in a row it throws
 * ConditionalWriteConflictError naming `target`.
 */
export async function retryOnConditionalConflict<T>(
  target: string,
  write: () => Promise<T>,
  options: ConflictRetryOptions = {},
): Promise<T> {
  const attempts = options.attempts ?? CONFLICT_ATTEMPTS;
  for (let attempt = 1; ; attempt++) {
    try {
      return await write();
    } catch (err) {
      if (!isConditionalRequestConflict(err)) throw err;
      if (attempt >= attempts) {
        throw new ConditionalWriteConflictError(
          `S3 answered 409 ConditionalRequestConflict to all ${attempts} conditional writes of ${target} (another operation on that key each time); ` +
            'none of them wrote anything. Redrive the execution to try again',
          { cause: err },
        );
      }
    }
    await (options.sleep ?? sleep)(conflictBackoffMs(attempt, options.random));
  }
}

export interface ObjectInfo {
  readonly size: number;
  readonly etag: string | undefined;
  /** When a lifecycle rule of the bucket expires the object (undefined when none does, or S3 did not say). */
  readonly expires?: Date;
}

/** HeadObject that answers undefined for a missing object instead of throwing. */
export async function headObject(s3: S3Client, bucket: string, key: string): Promise<ObjectInfo | undefined> {
  try {
    const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    const expires = expiryDate(head.Expiration);
    return { size: head.ContentLength ?? 0, etag: head.ETag, ...(expires === undefined ? {} : { expires }) };
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}

/**
 * The date in S3's `x-amz-expiration` header, `expiry-date="Wed, 23 Dec 2026 00:00:00 GMT",
 * rule-id="expire-source-snapshots"` (sent when a lifecycle rule expires the object);
 * undefined when there is none or it cannot be read.
 */
export function expiryDate(expiration: string | undefined): Date | undefined {
  const value = /expiry-date="([^"]+)"/.exec(expiration ?? '')?.[1];
  if (value === undefined) return undefined;
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? undefined : date;
}

/**
 * Sends a request whose body is a file stream up to `attempts` times, each attempt with a stream
 * of its own (`open`): the SDK does not send a stream body again when it would retry (an S3 5xx,
 * a connection reset: "An error was encountered in a non-retryable streaming request"). An error
 * for which `retry` answers false is thrown at once. Each stream is destroyed after its attempt:
 * a request that failed before reading it all would leave the file open.
 */
export async function sendFileStream<T>(
  open: () => ReadStream,
  send: (body: ReadStream) => Promise<T>,
  options: { readonly attempts: number; readonly retry?: (error: unknown) => boolean },
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    const body = open();
    try {
      return await send(body);
    } catch (error) {
      if (attempt >= options.attempts || !(options.retry?.(error) ?? true)) throw error;
    } finally {
      // Its attempt is over, so whatever the stream does next concerns no one: one destroyed before
      // its file was open still opens it, and fails if the file is gone by then (a caller removing
      // its temporary folder after the last attempt), an 'error' that, unheard, would end the process.
      body.on('error', () => undefined);
      body.destroy();
    }
  }
}

export interface JsonObject<T> {
  readonly value: T;
  readonly etag: string;
}

/** Reads a JSON object with its ETag (for a following conditional write), or undefined when absent. */
export async function readJsonObject<T>(s3: S3Client, bucket: string, key: string): Promise<JsonObject<T> | undefined> {
  try {
    const out = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    return { value: JSON.parse(await out.Body!.transformToString()) as T, etag: out.ETag! };
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}

/**
 * Writes a JSON object only if it is still what the caller read: `IfMatch` on the ETag read, or
 * `IfNoneMatch: '*'` when it was absent. Answers the new ETag, or undefined when another writer
 * came first (412): the caller reads again and decides again.
 */
export async function putJsonIfUnchanged(
  s3: S3Client,
  bucket: string,
  key: string,
  value: unknown,
  previous: { readonly etag: string } | undefined,
): Promise<{ readonly etag: string } | undefined> {
  try {
    const out = await s3.send(
      new PutObjectCommand({
        Bucket: bucket,
        Key: key,
        Body: `${JSON.stringify(value, null, 2)}\n`,
        ContentType: 'application/json',
        ...(previous ? { IfMatch: previous.etag } : { IfNoneMatch: '*' }),
      }),
    );
    return { etag: out.ETag ?? '' };
  } catch (err) {
    if (isPreconditionFailed(err)) return undefined;
    throw err;
  }
}
