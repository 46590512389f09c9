import type { ServerResponse } from 'node:http';
import type { ConditionalWrite } from '../faults';
import { notFound, preconditionFailed } from './replies';
import type { Conditions, ObjectRequest } from './request';
import type { PartStore } from './store';

/** S3 compares ETags without their quotes. */
export function sameEtag(a: string, b: string): boolean {
  return a.replace(/"/g, '') === b.replace(/"/g, '');
}

/** The conditional write a request is, for the conflict injection (FaultPlan.conditionalWrite). */
export function conditionalWrite(
  request: Extract<ObjectRequest, { operation: ConditionalWrite['operation'] }>,
  conditions: Conditions,
): ConditionalWrite {
  return {
    operation: request.operation,
    bucket: request.bucket,
    key: request.key,
    ...(conditions.ifNoneMatch === undefined ? {} : { ifNoneMatch: conditions.ifNoneMatch }),
    ...(conditions.ifMatch === undefined ? {} : { ifMatch: conditions.ifMatch }),
  };
}

/**
 * A write's If-None-Match / If-Match, as S3 checks them: 412 PreconditionFailed when one fails
 * (404 NoSuchKey for If-Match on a missing key). Answers false, having replied, when one fails.
 */
export async function writeConditionsHold(
  store: PartStore,
  request: ObjectRequest,
  conditions: Conditions,
  res: ServerResponse,
): Promise<boolean> {
  const exists = await store.existsObject(request.bucket, request.key);
  if (conditions.ifNoneMatch !== undefined && exists) {
    preconditionFailed(res, 'If-None-Match', request);
    return false;
  }
  if (conditions.ifMatch !== undefined) {
    const etag = exists ? String((await store.getMetadata(request.bucket, request.key)).etag) : undefined;
    if (etag === undefined || (conditions.ifMatch !== '*' && conditions.ifMatch !== etag)) {
      if (exists) preconditionFailed(res, 'If-Match', request);
      else notFound(res, request);
      return false;
    }
  }
  return true;
}

/**
 * A GET or HEAD with If-Match answers 412 when the ETag differs (a reader pinned to one version
 * of an object, such as ranged reads of a zip, must not mix in another), with If-None-Match 304
 * when it matches; a missing key is s3rver's 404. Answers false, having replied, when one holds
 * the read back.
 */
export async function readConditionsHold(
  store: PartStore,
  request: ObjectRequest,
  conditions: Conditions,
  res: ServerResponse,
): Promise<boolean> {
  if (!(await store.existsObject(request.bucket, request.key))) return true;
  const etag = String((await store.getMetadata(request.bucket, request.key)).etag);
  if (conditions.ifMatch !== undefined && conditions.ifMatch !== '*' && !sameEtag(conditions.ifMatch, etag)) {
    if (request.operation === 'HeadObject') res.writeHead(412).end();
    else preconditionFailed(res, 'If-Match', request);
    return false;
  }
  if (
    conditions.ifNoneMatch !== undefined &&
    (conditions.ifNoneMatch === '*' || sameEtag(conditions.ifNoneMatch, etag))
  ) {
    res.writeHead(304, { ETag: etag }).end();
    return false;
  }
  return true;
}
