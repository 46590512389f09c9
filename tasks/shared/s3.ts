import { HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';

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

/** A conditional write (`IfNoneMatch: '*'`, `IfMatch`) lost: the object exists or changed. */
export function isPreconditionFailed(err: unknown): boolean {
  return (err as ServiceError | undefined)?.name === 'PreconditionFailed' || statusOf(err) === 412;
}

export interface ObjectInfo {
  readonly size: number;
  readonly etag: string | undefined;
}

/** HeadObject that answers undefined for a missing object instead of throwing. */
export async function headObject(s3: S3Client, bucket: string, key: string): Promise<ObjectInfo | undefined> {
  try {
    const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    return { size: head.ContentLength ?? 0, etag: head.ETag };
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}
