import type { ServerResponse } from 'node:http';
import type { ObjectTarget } from './request';

/** S3's error replies, as the SDK parses them (code, message, and the fields S3 adds). */

export function s3Error(res: ServerResponse, status: number, code: string, message: string, extra = ''): void {
  res.writeHead(status, { 'Content-Type': 'application/xml' });
  res.end(
    `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${escapeXml(message)}</Message>${extra}</Error>`,
  );
}

export function preconditionFailed(res: ServerResponse, condition: string, target: ObjectTarget): void {
  s3Error(
    res,
    412,
    'PreconditionFailed',
    'At least one of the pre-conditions you specified did not hold',
    `<Condition>${condition}</Condition><Resource>/${escapeXml(target.bucket)}/${escapeXml(target.key)}</Resource>`,
  );
}

export function notFound(res: ServerResponse, target: ObjectTarget): void {
  s3Error(res, 404, 'NoSuchKey', 'The specified key does not exist.', `<Key>${escapeXml(target.key)}</Key>`);
}

export function noSuchUpload(res: ServerResponse): void {
  s3Error(
    res,
    404,
    'NoSuchUpload',
    'The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.',
  );
}

export function conditionalRequestConflict(res: ServerResponse, target: ObjectTarget): void {
  s3Error(
    res,
    409,
    'ConditionalRequestConflict',
    'A conflicting operation occurred. If using PutObject you can retry the request. If using multipart upload you should initiate another CreateMultipartUpload request and re-upload each part.',
    `<Resource>/${escapeXml(target.bucket)}/${escapeXml(target.key)}</Resource>`,
  );
}

export function invalidUri(res: ServerResponse, uri: string): void {
  s3Error(res, 400, 'InvalidURI', "Couldn't parse the specified URI.", `<URI>${escapeXml(uri)}</URI>`);
}

/** A request that failed inside the proxy; a response already under way just ends with the error. */
export function internalError(res: ServerResponse, err: Error): void {
  if (!res.headersSent) {
    s3Error(res, 500, 'InternalError', err.message);
    return;
  }
  res.end(`<Error><Code>InternalError</Code><Message>${escapeXml(err.message)}</Message></Error>`);
}

export function escapeXml(text: string): string {
  return text.replace(/[<>&'"]/g, (c) => `&#${c.charCodeAt(0)};`);
}
