import { AsyncLocalStorage } from 'node:async_hooks';
import { mkdirSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import S3rver from 's3rver';
import type { ConditionalWrite } from '../faults';
import { conditionalWrite, readConditionsHold, writeConditionsHold } from './conditions';
import { acquireKeys, keysLocked, newLocks } from './key-locks';
import {
  abortMultipartUpload,
  completeMultipartUpload,
  type MultipartContext,
  removeUpload,
  uploadPart,
  uploadPartCopy,
} from './multipart';
import { conditionalRequestConflict, internalError, invalidUri, s3Error } from './replies';
import {
  type CopySource,
  classify,
  InvalidUriError,
  isConditional,
  type ObjectRequest,
  type S3Request,
} from './request';
import { lockStoreWrites, type PartStore, writeStoreFilesWhole } from './store';

export interface LocalS3Options {
  /** Answers a request with an S3 error status instead (fault injection, tests only). */
  readonly fault?: (method: string, bucket: string, key: string, query: URLSearchParams) => number | undefined;
  /** Answers a conditional write 409 ConditionalRequestConflict when true (fault injection, tests only; see FaultPlan.conditionalWrite). */
  readonly conflict?: (write: ConditionalWrite) => boolean;
  /** Where objects are stored. */
  readonly directory: string;
  /** Buckets to create at start (existing ones are kept). */
  readonly buckets: ReadonlyArray<string>;
  /** @default 0 (an ephemeral port) */
  readonly port?: number;
}

export type RequestHandler = (req: IncomingMessage, res: ServerResponse) => void;

/**
 * The S3 request handler alone, for a server that also answers other APIs on the same port
 * (the local runtime serves Step Functions, CodeBuild and S3 on one endpoint).
 */
export async function createLocalS3Handler(options: Omit<LocalS3Options, 'port'>): Promise<RequestHandler> {
  mkdirSync(options.directory, { recursive: true });
  const s3rver = new S3rver({
    directory: options.directory,
    silent: true,
    vhostBuckets: false,
    configureBuckets: options.buckets.map((name) => ({ name })),
  });
  await s3rver.configureBuckets();
  const forward = s3rver.callback();
  const store = s3rver.store as unknown as PartStore;
  const context: MultipartContext = { store, locks: newLocks() };
  const unlockedRequest = new AsyncLocalStorage<true>();
  writeStoreFilesWhole(store);
  lockStoreWrites(store, context.locks.keys, unlockedRequest);

  /**
   * Hands the request to s3rver, which answers it on its own time: its locks are released when the
   * response has closed and s3rver's handling of it has ended, the store's writes awaited in it (a
   * client that leaves mid-request closes the response at once, before s3rver may even have
   * reached the store). Answers false, forwarding nothing, when the client left while the request
   * waited for them (see clientLeft); the caller then releases them.
   */
  function forwardHolding(req: IncomingMessage, res: ServerResponse, release: () => void): boolean {
    if (clientLeft(res)) return false;
    const handled = forward(req, res);
    res.once('close', () => void handled.then(release, release));
    return true;
  }

  async function lockAndForward(request: ObjectRequest, req: IncomingMessage, res: ServerResponse): Promise<void> {
    const release = await acquireKeys(context.locks.keys, keysLocked(request));
    let answeredByS3rver = false;
    try {
      if (!(await conditionsLetThrough(request, req, res))) return;
      if (request.operation === 'CompleteMultipartUpload')
        return await completeMultipartUpload(context, request, req, res);
      if (request.operation === 'CopyObject' && request.copySource !== undefined)
        copySourceForS3rver(req, request.copySource);
      answeredByS3rver = forwardHolding(req, res, release);
    } finally {
      // The proxy's own work (a condition, a Complete) keeps the lock until it is done, not until its
      // client leaves: a Complete goes on writing the object after a disconnect.
      if (!answeredByS3rver) release();
    }
  }

  /**
   * Checks a request's If-None-Match / If-Match, holding its key's lock, after the conflict
   * injection for a write. Answers false, having replied, when the request goes no further.
   */
  async function conditionsLetThrough(
    request: ObjectRequest,
    req: IncomingMessage,
    res: ServerResponse,
  ): Promise<boolean> {
    if (request.operation === 'DeleteObject' || !isConditional(request.conditions)) return true;
    let hold: boolean;
    if (request.operation === 'GetObject' || request.operation === 'HeadObject') {
      hold = await readConditionsHold(store, request, request.conditions, res);
    } else if (options.conflict?.(conditionalWrite(request, request.conditions))) {
      req.resume();
      if (request.operation === 'CompleteMultipartUpload') await removeUpload(context, request);
      conditionalRequestConflict(res, request);
      return false;
    } else {
      hold = await writeConditionsHold(store, request, request.conditions, res);
    }
    if (!hold) req.resume();
    return hold;
  }

  function answer(request: S3Request, req: IncomingMessage, res: ServerResponse): Promise<void> {
    switch (request.operation) {
      case 'UploadPart':
        return uploadPart(context, request, req, res, (release) => forwardHolding(req, res, release));
      case 'UploadPartCopy':
        return uploadPartCopy(context, request, req, res);
      case 'AbortMultipartUpload':
        return abortMultipartUpload(context, request, req, res);
      case 'Other':
        // s3rver finds the keys of these in their bodies, if any: its store takes their locks (lockStoreWrites).
        return unlockedRequest.run(true, () => forward(req, res));
      default:
        return lockAndForward(request, req, res);
    }
  }

  return (req, res) => {
    let request: S3Request;
    try {
      request = classify(req);
    } catch (err) {
      if (!(err instanceof InvalidUriError)) throw err;
      req.resume();
      return invalidUri(res, err.uri);
    }
    if (options.fault && injectFault(request, req, res, options.fault)) return;
    answer(request, req, res).catch((err: Error) => internalError(res, err));
  };
}

/**
 * Whether the client left while its request waited for a lock: it is then not forwarded, as no
 * 'close' would come to release the lock, and s3rver, given a write whose body will not come,
 * would truncate the object.
 */
function clientLeft(res: ServerResponse): boolean {
  return res.closed;
}

/**
 * A CopyObject's `x-amz-copy-source` rewritten so that s3rver reads the key that S3 (and this
 * proxy's locks, parseCopySource) read: s3rver decodes the header with decodeURI, which leaves
 * `%2B`, `%2F`, `%3F` and the like encoded, so a key with `+` or `?` sent URL-encoded named
 * another key there. decodeURI gives back exactly what encodeURI encodes. A versionId query is
 * kept as it came.
 */
function copySourceForS3rver(req: IncomingMessage, source: CopySource): void {
  const header = String(req.headers['x-amz-copy-source']);
  const query = header.indexOf('?');
  req.headers['x-amz-copy-source'] =
    encodeURI(`${source.bucket}/${source.key}`) + (query === -1 ? '' : header.slice(query));
}

function injectFault(
  request: S3Request,
  req: IncomingMessage,
  res: ServerResponse,
  fault: NonNullable<LocalS3Options['fault']>,
): boolean {
  const status = fault(request.method, request.bucket, request.key, request.query);
  if (status === undefined) return false;
  req.resume();
  s3Error(res, status, status === 503 ? 'SlowDown' : 'InternalError', 'injected fault');
  return true;
}
