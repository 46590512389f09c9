import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdirSync } from 'node:fs';
import { S3Client } from '@aws-sdk/client-s3';
import S3rver from 's3rver';

/**
 * The local S3: s3rver on 127.0.0.1, so task code using @aws-sdk/client-s3 runs unchanged.
 *
 * s3rver ignores conditional writes (TOOLCHAIN.md): a PutObject with `If-None-Match: *` on an
 * existing key overwrites it, where real S3 answers 412. stepdeploy's promises ("an artifact is
 * written once", "history is append-only") rest on those headers, so this server checks them
 * itself in front of s3rver, one write per key at a time, and answers as S3 does. s3rver also
 * writes an object in place, so a read during a write would see part of it: reads of a key wait
 * for the write in progress (KeyLocks), as S3's whole-object consistency promises.
 */

export const LOCAL_S3_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } as const;

export interface LocalS3Options {
  /** Answers a request with an S3 error status instead (fault injection, tests only). */
  readonly fault?: (method: string, bucket: string, key: string, query: URLSearchParams) => number | undefined;
  /** Where objects are stored. */
  readonly directory: string;
  /** Buckets to create at start (existing ones are kept). */
  readonly buckets: ReadonlyArray<string>;
  /** @default 0 (an ephemeral port) */
  readonly port?: number;
}

export interface LocalS3 {
  /** `http://127.0.0.1:PORT`: an IP makes the SDK use path-style addressing. */
  readonly endpoint: string;
  readonly port: number;
  close(): Promise<void>;
}

/**
 * An S3 client for the local S3: path-style (an IP endpoint), the fixed credentials, and checksums
 * only when required — with the SDK's default (WHEN_SUPPORTED) s3rver stores the aws-chunked
 * framing of a stream upload as data.
 */
export function localS3Client(endpoint: string, region = 'us-east-1'): S3Client {
  return new S3Client({
    endpoint,
    region,
    forcePathStyle: true,
    credentials: LOCAL_S3_CREDENTIALS,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}

/** The environment that points `new S3Client({})` and the `aws` CLI at the local S3. */
export function localS3Environment(endpoint: string): Record<string, string> {
  return {
    AWS_ENDPOINT_URL_S3: endpoint,
    AWS_ACCESS_KEY_ID: LOCAL_S3_CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: LOCAL_S3_CREDENTIALS.secretAccessKey,
    // s3rver stores aws-chunked framing as data unless checksums are only sent when required.
    AWS_REQUEST_CHECKSUM_CALCULATION: 'when_required',
    AWS_RESPONSE_CHECKSUM_VALIDATION: 'when_required',
  };
}

interface ObjectTarget {
  readonly bucket: string;
  readonly key: string;
}

/**
 * How a request touches one object: reads (GetObject, HeadObject) share it, writes (PutObject,
 * CopyObject, CompleteMultipartUpload, DeleteObject) have it alone. Part uploads and bucket-level
 * requests do not change what a reader of the key sees, so they take no lock.
 */
interface ObjectAccess extends ObjectTarget {
  readonly write: boolean;
  /** A write with If-None-Match / If-Match, checked here because s3rver ignores them. */
  readonly conditional: boolean;
}

function objectAccess(req: IncomingMessage): ObjectAccess | undefined {
  const url = new URL(req.url ?? '/', 'http://127.0.0.1');
  const [bucket, ...rest] = url.pathname.slice(1).split('/');
  if (!bucket || rest.length === 0) return undefined;
  const target = { bucket, key: decodeURIComponent(rest.join('/')) };
  const upload = url.searchParams.has('uploadId');
  const conditional = req.headers['if-none-match'] !== undefined || req.headers['if-match'] !== undefined;
  switch (req.method) {
    case 'GET':
    case 'HEAD':
      return upload ? undefined : { ...target, write: false, conditional: false };
    case 'PUT':
      return url.searchParams.has('partNumber') ? undefined : { ...target, write: true, conditional };
    case 'POST':
      return upload ? { ...target, write: true, conditional } : undefined;
    case 'DELETE':
      return upload ? undefined : { ...target, write: true, conditional: false };
    default:
      return undefined;
  }
}

function preconditionFailed(res: ServerResponse, condition: string, target: ObjectTarget): void {
  res.writeHead(412, { 'Content-Type': 'application/xml' });
  res.end(
    '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>PreconditionFailed</Code>' +
      '<Message>At least one of the pre-conditions you specified did not hold</Message>' +
      `<Condition>${condition}</Condition><Resource>/${target.bucket}/${target.key}</Resource></Error>`,
  );
}

interface KeyState {
  readers: number;
  writer: boolean;
  readonly queue: Array<{ readonly exclusive: boolean; readonly grant: () => void }>;
}

/**
 * A readers-writer lock per key, first come first served. s3rver writes an object in place
 * (truncate, then stream), so without it a read during a write sees a partial object or fails,
 * and two writes interleave; S3 never shows either. A conditional write checks and writes with
 * no other write in between.
 */
class KeyLocks {
  private readonly keys = new Map<string, KeyState>();

  acquire(id: string, exclusive: boolean): Promise<() => void> {
    let state = this.keys.get(id);
    if (state === undefined) {
      state = { readers: 0, writer: false, queue: [] };
      this.keys.set(id, state);
    }
    const held = state;
    return new Promise((resolve) => {
      held.queue.push({ exclusive, grant: () => resolve(this.releaser(id, held, exclusive)) });
      this.grant(id, held);
    });
  }

  private grant(id: string, state: KeyState): void {
    for (let next = state.queue[0]; next !== undefined; next = state.queue[0]) {
      if (state.writer || (next.exclusive && state.readers > 0)) break;
      state.queue.shift();
      if (next.exclusive) state.writer = true;
      else state.readers += 1;
      next.grant();
    }
    if (!state.writer && state.readers === 0 && state.queue.length === 0) this.keys.delete(id);
  }

  private releaser(id: string, state: KeyState, exclusive: boolean): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      if (exclusive) state.writer = false;
      else state.readers -= 1;
      this.grant(id, state);
    };
  }
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
  const locks = new KeyLocks();

  async function lockAndForward(req: IncomingMessage, res: ServerResponse, access: ObjectAccess): Promise<void> {
    const release = await locks.acquire(`${access.bucket}/${access.key}`, access.write);
    res.once('close', release);
    try {
      if (access.conditional && !(await conditionsHold(req, res, access))) return;
      forward(req, res);
    } catch (err) {
      release();
      throw err;
    }
  }

  /** Answers 412 (or 404 for If-Match on a missing key) as S3 does, and false, when a condition fails. */
  async function conditionsHold(req: IncomingMessage, res: ServerResponse, target: ObjectTarget): Promise<boolean> {
    const exists = await s3rver.store.existsObject(target.bucket, target.key);
    const ifNoneMatch = req.headers['if-none-match'];
    const ifMatch = req.headers['if-match'];
    if (ifNoneMatch !== undefined && exists) {
      preconditionFailed(res, 'If-None-Match', target);
      return false;
    }
    if (ifMatch !== undefined) {
      const etag = exists ? String((await s3rver.store.getMetadata(target.bucket, target.key)).etag) : undefined;
      if (etag === undefined || (ifMatch !== '*' && ifMatch !== etag)) {
        if (exists) preconditionFailed(res, 'If-Match', target);
        else notFound(res, target);
        return false;
      }
    }
    return true;
  }

  return (req, res) => {
    if (options.fault && injectFault(req, res, options.fault)) return;
    const access = objectAccess(req);
    if (!access) return forward(req, res);
    lockAndForward(req, res, access).catch((err: Error) => {
      if (!res.headersSent) res.writeHead(500, { 'Content-Type': 'application/xml' });
      res.end(`<Error><Code>InternalError</Code><Message>${escapeXml(err.message)}</Message></Error>`);
    });
  };
}

/** Listens on 127.0.0.1 (never another interface: it has fixed, public credentials). */
export async function listenLocal(handler: RequestHandler, port = 0): Promise<{ server: Server; port: number; endpoint: string }> {
  const server = createServer(handler);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  const actual = (server.address() as AddressInfo).port;
  return { server, port: actual, endpoint: `http://127.0.0.1:${actual}` };
}

export function closeServer(server: Server): Promise<void> {
  return new Promise<void>((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  });
}

export async function startLocalS3(options: LocalS3Options): Promise<LocalS3> {
  const { server, port, endpoint } = await listenLocal(await createLocalS3Handler(options), options.port);
  return { endpoint, port, close: () => closeServer(server) };
}

function injectFault(req: IncomingMessage, res: ServerResponse, fault: NonNullable<LocalS3Options['fault']>): boolean {
  const url = new URL(req.url ?? '/', 'http://127.0.0.1');
  const [bucket = '', ...rest] = url.pathname.slice(1).split('/');
  const status = fault(req.method ?? 'GET', bucket, decodeURIComponent(rest.join('/')), url.searchParams);
  if (status === undefined) return false;
  req.resume();
  const code = status === 503 ? 'SlowDown' : 'InternalError';
  res.writeHead(status, { 'Content-Type': 'application/xml' });
  res.end(`<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>injected fault</Message></Error>`);
  return true;
}

function notFound(res: ServerResponse, target: ObjectTarget): void {
  res.writeHead(404, { 'Content-Type': 'application/xml' });
  res.end(
    `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message><Key>${escapeXml(target.key)}</Key></Error>`,
  );
}

function escapeXml(text: string): string {
  return text.replace(/[<>&'"]/g, (c) => `&#${c.charCodeAt(0)};`);
}
