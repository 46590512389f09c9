import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { link, mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { text } from 'node:stream/consumers';
import { sameEtag } from './conditions';
import { type PartRange, type StoredPart, writeConcatenation } from './concatenate';
import { keyId, type Locks } from './key-locks';
import { escapeXml, noSuchUpload, notFound, preconditionFailed, s3Error } from './replies';
import { type CopySource, parseCopySource, type S3Request } from './request';
import { type PartStore, replaceFile, type UploadTarget, uploadExists, uploadFolder } from './store';

/**
 * The multipart calls s3rver gets wrong or lacks, answered on its store: it stores a part for any
 * upload ID, does not implement UploadPartCopy (NotImplemented) nor AbortMultipartUpload
 * (MethodNotAllowed, which leaves the parts on disk), and its CompleteMultipartUpload checks no
 * part (size, ETag, order) and hashes the whole object again.
 */

/** S3's largest part. */
const MAX_PART_SIZE = 5 * 1024 * 1024 * 1024;
/** S3's smallest part but the last. */
const MIN_PART_SIZE = 5 * 1024 * 1024;

export interface MultipartContext {
  readonly store: PartStore;
  readonly locks: Locks;
}

type UploadRequest = Extract<S3Request, { readonly uploadId: string }>;

interface Part extends UploadTarget {
  readonly partNumber: number;
}

function uploadOf(request: UploadRequest): UploadTarget {
  return { bucket: request.bucket, key: request.key, uploadId: request.uploadId };
}

function uploadLockId(upload: Pick<UploadTarget, 'bucket' | 'uploadId'>): string {
  return `${upload.bucket}/${upload.uploadId}`;
}

function partId(part: Part): string {
  return `${uploadLockId(part)}/${part.partNumber}`;
}

/** The part's file as s3rver names it; `.md5` beside it holds its ETag, `.source` and `.range` a copy by reference. */
function partFile(store: PartStore, part: Part): string {
  return join(uploadFolder(store, part), String(part.partNumber));
}

/**
 * The part an UploadPart stores, or why its part number is refused: s3rver names the part's file
 * with the part number as the query string gives it, so only its canonical form is taken (`01`
 * would be another file than `1`).
 */
function uploadedPart(request: Extract<S3Request, { operation: 'UploadPart' }>): Part | string {
  const partNumber = request.query.get('partNumber') ?? '';
  if (!/^[1-9]\d{0,4}$/.test(partNumber) || Number(partNumber) > 10_000) {
    return `Part number must be an integer between 1 and 10000, inclusive, without leading zeros; got '${partNumber}'`;
  }
  return { ...uploadOf(request), partNumber: Number(partNumber) };
}

/**
 * UploadPart, answered by s3rver once the upload is known and the part's copy by reference, if
 * any, is removed: s3rver stores a part for any upload ID (creating its folder, even outside the
 * uploads folder for one such as `../x`), where S3 answers 404 NoSuchUpload. A part number
 * uploaded again is replaced, whichever way it was stored. Its `.md5` goes too, so a failed
 * upload leaves no ETag that Complete would accept for s3rver's partial part file.
 * `forwardHolding` hands the request to s3rver with the locks (see createLocalS3Handler).
 */
export async function uploadPart(
  context: MultipartContext,
  request: Extract<S3Request, { operation: 'UploadPart' }>,
  req: IncomingMessage,
  res: ServerResponse,
  forwardHolding: (release: () => void) => boolean,
): Promise<void> {
  const part = uploadedPart(request);
  if (typeof part === 'string') {
    req.resume();
    return s3Error(res, 400, 'InvalidArgument', part, '<ArgumentName>partNumber</ArgumentName>');
  }
  const releaseUpload = await context.locks.uploads.acquire(uploadLockId(part), false);
  const releasePart = await context.locks.parts.acquire(partId(part), true);
  const release = () => {
    releasePart();
    releaseUpload();
  };
  let answeredByS3rver = false;
  try {
    if (!(await uploadExists(context.store, part))) {
      req.resume();
      return noSuchUpload(res);
    }
    answeredByS3rver = forwardHolding(release);
  } finally {
    if (!answeredByS3rver) release();
  }
}

/** AbortMultipartUpload: deletes the upload's parts (s3rver keeps them in one folder per upload) and answers 204. */
export async function abortMultipartUpload(
  context: MultipartContext,
  request: Extract<S3Request, { operation: 'AbortMultipartUpload' }>,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  req.resume();
  if (!(await removeUpload(context, request))) return noSuchUpload(res);
  res.writeHead(204);
  res.end();
}

/**
 * Removes an upload and its parts, alone on the upload (no part is being written into it);
 * answers whether there was one. Also for a Complete answered 409 ConditionalRequestConflict: S3
 * says to answer this 409 with a new multipart upload, so the local S3 makes a client that
 * completes the same upload again fail (NoSuchUpload) rather than succeed.
 */
export async function removeUpload(context: MultipartContext, request: UploadRequest): Promise<boolean> {
  const upload = uploadOf(request);
  const release = await context.locks.uploads.acquire(uploadLockId(upload), true);
  try {
    if (!(await uploadExists(context.store, upload))) return false;
    await rm(uploadFolder(context.store, upload), { recursive: true, force: true });
    return true;
  } finally {
    release();
  }
}

/** `x-amz-copy-source-range: bytes=first-last` (both required, inclusive), checked against the source's size. */
function parseCopyRange(header: string, size: number): { start: number; end: number } | string {
  const match = /^bytes=(\d+)-(\d+)$/.exec(header);
  if (match === null) {
    return 'The x-amz-copy-source-range value must be of the form bytes=first-last where first and last are the zero-based offsets of the first and last bytes to copy';
  }
  const [start, end] = [Number(match[1]), Number(match[2])];
  if (start > end || end >= size) return `Range specified is not valid for source object of size: ${size}`;
  return { start, end };
}

/**
 * UploadPartCopy (PUT /bucket/key?partNumber=N&uploadId=U with x-amz-copy-source), as S3
 * answers it: the source's current version (an unversioned store: only versionId "null"),
 * x-amz-copy-source-if-match / -if-none-match on its ETag (412), an optional byte range, and a
 * CopyPartResult. Like S3, it copies no byte (see copyPart). Not implemented: the
 * if-(un)modified-since conditions, SSE-C.
 */
export async function uploadPartCopy(
  context: MultipartContext,
  request: Extract<S3Request, { operation: 'UploadPartCopy' }>,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  req.resume();
  const upload = uploadOf(request);
  const partNumber = Number(request.query.get('partNumber'));
  if (!Number.isInteger(partNumber) || partNumber < 1 || partNumber > 10_000) {
    return s3Error(res, 400, 'InvalidArgument', 'Part number must be an integer between 1 and 10000, inclusive');
  }
  const source = parseCopySource(request.copySource);
  if (source === undefined)
    return s3Error(
      res,
      400,
      'InvalidArgument',
      'Copy Source must mention the source bucket and key: sourcebucket/sourcekey',
    );
  if ((await context.store.getBucket(source.bucket)) === null)
    return s3Error(res, 404, 'NoSuchBucket', 'The specified bucket does not exist');
  if (source.versionId !== undefined && source.versionId !== 'null') {
    return s3Error(res, 404, 'NoSuchVersion', 'The specified version does not exist.');
  }
  const part = { ...upload, partNumber };
  const releases = [await context.locks.keys.acquire(keyId(source), false)];
  try {
    releases.push(await context.locks.uploads.acquire(uploadLockId(upload), false));
    releases.push(await context.locks.parts.acquire(partId(part), true));
    if (!(await uploadExists(context.store, upload))) return noSuchUpload(res);
    await copyPart(req, res, context.store, source, part);
  } finally {
    for (const release of releases.reverse()) release();
  }
}

/**
 * Stores the part by reference, under the source key's read lock: `<N>.source`, a hard link to the
 * source's object file, and `<N>.range`, the bytes of it that are the part; Complete reads them
 * from there. The link keeps these bytes: a DELETE of the source unlinks its name only, and a
 * write to it replaces the file (see local/s3/index.ts). The part's ETag is the MD5 of the source
 * ETag and the range, not of the bytes (hashing a large source costs over a second): S3 does not
 * promise that a part ETag is the MD5 of its bytes (an SSE-KMS part's is not), and a client only
 * hands it back in CompleteMultipartUpload, where it identifies this copy of this source version.
 */
async function copyPart(
  req: IncomingMessage,
  res: ServerResponse,
  store: PartStore,
  source: CopySource,
  part: Part,
): Promise<void> {
  let metadata: Record<string, string | number>;
  try {
    metadata = await store.getMetadata(source.bucket, source.key);
  } catch {
    return notFound(res, source);
  }
  const etag = String(metadata.etag);
  const size = Number(metadata['content-length']);
  const ifMatch = req.headers['x-amz-copy-source-if-match'];
  const ifNoneMatch = req.headers['x-amz-copy-source-if-none-match'];
  if (typeof ifMatch === 'string' && !sameEtag(ifMatch, etag))
    return preconditionFailed(res, 'x-amz-copy-source-If-Match', source);
  if (typeof ifNoneMatch === 'string' && (ifNoneMatch === '*' || sameEtag(ifNoneMatch, etag))) {
    return preconditionFailed(res, 'x-amz-copy-source-If-None-Match', source);
  }
  const rangeHeader = req.headers['x-amz-copy-source-range'];
  const range = typeof rangeHeader === 'string' ? parseCopyRange(rangeHeader, size) : undefined;
  if (typeof range === 'string')
    return s3Error(res, 400, 'InvalidArgument', range, '<ArgumentName>x-amz-copy-source-range</ArgumentName>');
  const bytes: PartRange =
    range === undefined ? { start: 0, size } : { start: range.start, size: range.end - range.start + 1 };
  if (bytes.size > MAX_PART_SIZE) {
    return s3Error(
      res,
      400,
      'InvalidRequest',
      'The specified copy range is larger than the maximum allowable size of a part (5 GB)',
    );
  }
  const partEtag = createHash('md5')
    .update(`${etag.replace(/"/g, '')}:${bytes.start}-${bytes.start + bytes.size - 1}`)
    .digest('hex');
  const file = partFile(store, part);
  // The ETag goes first and comes back last, so no ETag ever names a half-replaced part.
  await rm(`${file}.md5`, { force: true });
  await Promise.all([rm(file, { force: true }), rm(`${file}.source`, { force: true })]);
  await link(store.getResourcePath(source.bucket, source.key, 'object'), `${file}.source`);
  await writeFile(`${file}.range`, JSON.stringify(bytes));
  await writeFile(`${file}.md5`, partEtag);
  res.writeHead(200, { 'Content-Type': 'application/xml' });
  res.end(
    '<?xml version="1.0" encoding="UTF-8"?>\n<CopyPartResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">' +
      `<LastModified>${new Date().toISOString()}</LastModified><ETag>"${partEtag}"</ETag></CopyPartResult>`,
  );
}

interface CompletedPart {
  readonly number: number;
  readonly etag: string;
}

/** The parts of a CompleteMultipartUpload body, in the order given; undefined when there are none. */
function parseCompletedParts(xml: string): CompletedPart[] | undefined {
  const parts: CompletedPart[] = [];
  for (const [, part = ''] of xml.matchAll(/<Part>([\s\S]*?)<\/Part>/g)) {
    const number = /<PartNumber>\s*(\d+)\s*<\/PartNumber>/.exec(part)?.[1];
    const etag = /<ETag>([\s\S]*?)<\/ETag>/.exec(part)?.[1];
    if (number === undefined || etag === undefined) return undefined;
    parts.push({ number: Number(number), etag: etag.replace(/&quot;|&#34;|"/g, '').trim() });
  }
  return parts.length === 0 ? undefined : parts;
}

/** Part `number` as UploadPart (s3rver's file) or UploadPartCopy (a range of a linked file) stored it, if it is there. */
async function storedPart(
  folder: string,
  number: number,
): Promise<({ etag: string; file: string } & PartRange) | undefined> {
  const file = join(folder, String(number));
  const [etag, range] = await Promise.all([
    readFile(`${file}.md5`, 'utf8').catch(() => undefined),
    readFile(`${file}.range`, 'utf8').then(
      (json) => JSON.parse(json) as PartRange,
      () => undefined,
    ),
  ]);
  if (etag === undefined) return undefined;
  if (range !== undefined) return { etag, file: `${file}.source`, ...range };
  const size = await stat(file).then(
    (st) => st.size,
    () => undefined,
  );
  return size === undefined ? undefined : { etag, file, start: 0, size };
}

/** The stored parts the body names, or the S3 error that refuses them. */
async function storedParts(
  store: PartStore,
  upload: UploadTarget,
  parts: ReadonlyArray<CompletedPart>,
): Promise<StoredPart[] | { code: string; message: string }> {
  const stored: StoredPart[] = [];
  for (const [i, part] of parts.entries()) {
    if (i > 0 && part.number <= parts[i - 1]!.number) {
      return {
        code: 'InvalidPartOrder',
        message:
          'The list of parts was not in ascending order. The parts list must be specified in order by part number.',
      };
    }
    const found = await storedPart(uploadFolder(store, upload), part.number);
    if (found === undefined || found.etag !== part.etag) {
      return {
        code: 'InvalidPart',
        message:
          "One or more of the specified parts could not be found. The part may not have been uploaded, or the specified entity tag may not match the part's entity tag.",
      };
    }
    stored.push({ ...part, file: found.file, start: found.start, size: found.size });
  }
  if (stored.slice(0, -1).some((part) => part.size < MIN_PART_SIZE)) {
    return { code: 'EntityTooSmall', message: 'Your proposed upload is smaller than the minimum allowed object size.' };
  }
  return stored;
}

/**
 * CompleteMultipartUpload, inside the key's write lock (and after its If-None-Match / If-Match
 * check), then the upload's: no UploadPart of this upload changes a part while it is read, nor
 * writes one into its folder once it is removed.
 */
export async function completeMultipartUpload(
  context: MultipartContext,
  request: Extract<S3Request, { operation: 'CompleteMultipartUpload' }>,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const body = await text(req);
  const upload = uploadOf(request);
  const release = await context.locks.uploads.acquire(uploadLockId(upload), true);
  try {
    await completeUpload(req, res, context.store, upload, body);
  } finally {
    release();
  }
}

/**
 * Completes the upload as S3 does: the parts must exist with the ETags given, in ascending order,
 * each but the last at least 5 MiB; the object is the parts' concatenation, its ETag S3's multipart
 * form (the MD5 of the parts' MD5s, "-" and their count), which costs no second pass over the bytes.
 */
async function completeUpload(
  req: IncomingMessage,
  res: ServerResponse,
  store: PartStore,
  upload: UploadTarget,
  body: string,
): Promise<void> {
  if (!(await uploadExists(store, upload))) return noSuchUpload(res);
  const parts = parseCompletedParts(body);
  if (parts === undefined) {
    return s3Error(
      res,
      400,
      'MalformedXML',
      'The XML you provided was not well-formed or did not validate against our published schema.',
    );
  }
  const stored = await storedParts(store, upload, parts);
  if (!Array.isArray(stored)) return s3Error(res, 400, stored.code, stored.message);
  const objectFile = store.getResourcePath(upload.bucket, upload.key, 'object');
  await mkdir(dirname(objectFile), { recursive: true });
  // A new file, not s3rver's in-place write: a part may be a link to this very object file.
  await replaceFile(objectFile, (temporary) => writeConcatenation(temporary, stored));
  const etag = `${createHash('md5')
    .update(Buffer.concat(stored.map((p) => Buffer.from(p.etag, 'hex'))))
    .digest('hex')}-${stored.length}`;
  const headers = JSON.parse(await readFile(join(uploadFolder(store, upload), 'metadata'), 'utf8')) as Record<
    string,
    unknown
  >;
  // What s3rver's own S3Object gives an object uploaded without a Content-Type.
  await store.putMetadata(upload.bucket, upload.key, { 'content-type': 'binary/octet-stream', ...headers }, etag);
  await rm(uploadFolder(store, upload), { recursive: true, force: true });
  res.writeHead(200, { 'Content-Type': 'application/xml' });
  res.end(
    '<?xml version="1.0" encoding="UTF-8"?>\n<CompleteMultipartUploadResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">' +
      `<Location>http://${escapeXml(req.headers.host ?? '127.0.0.1')}/${escapeXml(upload.bucket)}/${escapeXml(upload.key)}</Location>` +
      `<Bucket>${escapeXml(upload.bucket)}</Bucket><Key>${escapeXml(upload.key)}</Key><ETag>"${etag}"</ETag></CompleteMultipartUploadResult>`,
  );
}
