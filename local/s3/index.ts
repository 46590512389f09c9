/**
 * The local S3: s3rver on 127.0.0.1, so task code using @aws-sdk/client-s3 runs unchanged. s3rver
 * falls short of S3 in ways stepdeploy's promises rest on, so a proxy in front of it (handler.ts)
 * answers those requests itself, on s3rver's store:
 * - conditional writes (conditions.ts): s3rver ignores If-None-Match / If-Match, where S3 answers
 *   412; "an artifact is written once" and "history is append-only" need them. Tests can make S3's
 *   409 ConditionalRequestConflict happen too (FaultPlan.conditionalWrite).
 * - one write per key at a time, and reads wait for it (key-locks.ts), as S3's whole-object
 *   consistency promises; s3rver's object and part writes are replaced by ones that write a
 *   temporary file and rename it into place (store.ts), so a client that leaves mid-body changes
 *   nothing.
 * - multipart (multipart.ts): UploadPartCopy (NotImplemented in s3rver), AbortMultipartUpload
 *   (MethodNotAllowed, leaving the parts on disk), and a CompleteMultipartUpload that checks the
 *   parts (size, ETag, order) and does not hash the object again (concatenate.ts).
 * Every request is classified once (request.ts). An UploadPartCopy costs no copy, as in S3: the
 * part is a hard link to the source's object file. No write changes a linked file: a PutObject
 * renames a new file over the key's, s3rver's CopyObject unlinks it first (fs-extra's copy), a
 * DeleteObject unlinks it.
 */

export { LOCAL_S3_CREDENTIALS, localS3Client, localS3Environment } from '../s3-client';
export { createLocalS3Handler, type LocalS3Options, type RequestHandler } from './handler';
export { closeServer, type LocalS3, listenLocal, startLocalS3 } from './server';
