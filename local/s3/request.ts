import type { IncomingMessage } from 'node:http';

/** An object as S3 names it: its bucket and its key, URL-decoded. */
export interface ObjectTarget {
  readonly bucket: string;
  readonly key: string;
}

export interface CopySource extends ObjectTarget {
  readonly versionId: string | undefined;
}

/** A request's If-Match / If-None-Match headers: s3rver ignores them, so the proxy checks them. */
export interface Conditions {
  readonly ifMatch?: string;
  readonly ifNoneMatch?: string;
}

interface Common extends ObjectTarget {
  readonly method: string;
  readonly query: URLSearchParams;
}

/**
 * What the proxy needs to know of an S3 request, read once from its method, path, query and
 * headers. `Other` is everything s3rver answers alone (listings, bucket calls,
 * CreateMultipartUpload, ListParts, POST Object, DeleteObjects).
 */
export type S3Request =
  | Conditional<'GetObject'>
  | Conditional<'HeadObject'>
  | Conditional<'PutObject'>
  | (Common & {
      readonly operation: 'CopyObject';
      readonly conditions: Conditions;
      /** Undefined when `x-amz-copy-source` does not name a bucket and key: s3rver then refuses it. */
      readonly copySource: CopySource | undefined;
    })
  | (Common & { readonly operation: 'DeleteObject' })
  | (Common & {
      readonly operation: 'CompleteMultipartUpload';
      readonly conditions: Conditions;
      readonly uploadId: string;
    })
  | Upload<'UploadPart'>
  | Upload<'AbortMultipartUpload'>
  | (Common & { readonly operation: 'UploadPartCopy'; readonly uploadId: string; readonly copySource: string })
  | (Common & { readonly operation: 'Other' });

type Conditional<Operation extends string> = Common & {
  readonly operation: Operation;
  readonly conditions: Conditions;
};
type Upload<Operation extends string> = Common & { readonly operation: Operation; readonly uploadId: string };

/** A request that names an object (and takes its key's lock, see keysLocked). */
export type ObjectRequest = Extract<
  S3Request,
  { operation: 'GetObject' | 'HeadObject' | 'PutObject' | 'CopyObject' | 'DeleteObject' | 'CompleteMultipartUpload' }
>;

/** A request whose path S3 cannot decode (a `%` not followed by two hex digits, or bytes that are not UTF-8). */
export class InvalidUriError extends Error {
  constructor(readonly uri: string) {
    super("Couldn't parse the specified URI.");
    this.name = 'InvalidUriError';
  }
}

/**
 * Classifies a path-style request (`/bucket/key?query`). A request with an `uploadId` is a part
 * or an upload's end whatever its path, as s3rver routes it; without one, a key is needed for an
 * object operation. Throws InvalidUriError for a path that does not decode.
 */
export function classify(req: IncomingMessage): S3Request {
  const url = new URL(req.url ?? '/', 'http://127.0.0.1');
  const [bucket = '', ...rest] = url.pathname.slice(1).split('/');
  let key: string;
  try {
    key = decodeURIComponent(rest.join('/'));
  } catch {
    throw new InvalidUriError(req.url ?? '/');
  }
  const method = req.method ?? 'GET';
  const common: Common = { bucket, key, method, query: url.searchParams };
  const copyHeader = req.headers['x-amz-copy-source'];
  const conditions = headerConditions(req);
  const uploadId = url.searchParams.get('uploadId');
  if (uploadId !== null) {
    if (method === 'PUT' && copyHeader !== undefined)
      return { ...common, operation: 'UploadPartCopy', uploadId, copySource: String(copyHeader) };
    if (method === 'PUT') return { ...common, operation: 'UploadPart', uploadId };
    if (method === 'DELETE') return { ...common, operation: 'AbortMultipartUpload', uploadId };
    if (method === 'POST' && bucket !== '' && key !== '')
      return { ...common, operation: 'CompleteMultipartUpload', conditions, uploadId };
    return { ...common, operation: 'Other' };
  }
  if (bucket === '' || key === '') return { ...common, operation: 'Other' };
  switch (method) {
    case 'GET':
      return { ...common, operation: 'GetObject', conditions };
    case 'HEAD':
      return { ...common, operation: 'HeadObject', conditions };
    case 'PUT':
      if (copyHeader === undefined) return { ...common, operation: 'PutObject', conditions };
      return { ...common, operation: 'CopyObject', conditions, copySource: parseCopySource(String(copyHeader)) };
    case 'DELETE':
      return { ...common, operation: 'DeleteObject' };
    default:
      return { ...common, operation: 'Other' };
  }
}

function headerConditions(req: IncomingMessage): Conditions {
  const ifMatch = req.headers['if-match'];
  const ifNoneMatch = req.headers['if-none-match'];
  return {
    ...(ifMatch === undefined ? {} : { ifMatch }),
    ...(ifNoneMatch === undefined ? {} : { ifNoneMatch }),
  };
}

/** Whether the request changes its key: writes have it alone, reads (GetObject, HeadObject) share it. */
export function isWrite(request: ObjectRequest): boolean {
  return request.operation !== 'GetObject' && request.operation !== 'HeadObject';
}

export function isConditional(conditions: Conditions): boolean {
  return conditions.ifMatch !== undefined || conditions.ifNoneMatch !== undefined;
}

/** `x-amz-copy-source`: URL-encoded `bucket/key` or `/bucket/key`, optionally `?versionId=`. */
export function parseCopySource(header: string): CopySource | undefined {
  const [path = '', query] = header.split('?', 2);
  let decoded: string;
  try {
    decoded = decodeURIComponent(path.replace(/^\//, ''));
  } catch {
    return undefined;
  }
  const [bucket, ...rest] = decoded.split('/');
  if (!bucket || rest.length === 0 || rest.join('/') === '') return undefined;
  const versionId = query === undefined ? undefined : (new URLSearchParams(query).get('versionId') ?? undefined);
  return { bucket, key: rest.join('/'), versionId };
}
