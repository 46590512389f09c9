import type { IncomingMessage } from 'node:http';
import { classify, InvalidUriError, parseCopySource } from '../../../local/s3/request';

function message(method: string, url: string, headers: Record<string, string> = {}): IncomingMessage {
  return { method, url, headers } as unknown as IncomingMessage;
}

describe('classify', () => {
  test.each([
    ['GET', '/b/k', {}, 'GetObject'],
    ['HEAD', '/b/k', {}, 'HeadObject'],
    ['PUT', '/b/k', {}, 'PutObject'],
    ['PUT', '/b/k', { 'x-amz-copy-source': 'b/src' }, 'CopyObject'],
    ['DELETE', '/b/k', {}, 'DeleteObject'],
    ['POST', '/b/k?uploadId=ab12', {}, 'CompleteMultipartUpload'],
    ['PUT', '/b/k?partNumber=1&uploadId=ab12', {}, 'UploadPart'],
    ['PUT', '/b/k?partNumber=1&uploadId=ab12', { 'x-amz-copy-source': 'b/src' }, 'UploadPartCopy'],
    ['DELETE', '/b/k?uploadId=ab12', {}, 'AbortMultipartUpload'],
    // An upload's part or end whatever its path, as s3rver routes it: the upload then does not exist for it.
    ['PUT', '/b?partNumber=1&uploadId=ab12', {}, 'UploadPart'],
    ['DELETE', '/?uploadId=ab12', {}, 'AbortMultipartUpload'],
    // What s3rver answers alone.
    ['POST', '/b/k?uploads', {}, 'Other'],
    ['GET', '/b/k?uploadId=ab12', {}, 'Other'],
    ['GET', '/b?list-type=2', {}, 'Other'],
    ['GET', '/b/', {}, 'Other'],
    ['POST', '/b', {}, 'Other'],
    ['POST', '/b?delete', {}, 'Other'],
    ['PUT', '/b', {}, 'Other'],
  ])('%s %s %j is %s', (method, url, headers, operation) => {
    expect(classify(message(method, url, headers)).operation).toBe(operation);
  });

  test('decodes the bucket and key once, and keeps the query', () => {
    const request = classify(message('PUT', '/b/a%2Bb/c%20d%3F?partNumber=2&uploadId=ab12'));

    expect(request).toMatchObject({ bucket: 'b', key: 'a+b/c d?', method: 'PUT', uploadId: 'ab12' });
    expect(request.query.get('partNumber')).toBe('2');
  });

  test("takes a request's If-Match and If-None-Match as its conditions; a DeleteObject has none", () => {
    const headers = { 'if-match': '"e1"', 'if-none-match': '*' };

    expect(classify(message('PUT', '/b/k', headers))).toMatchObject({
      conditions: { ifMatch: '"e1"', ifNoneMatch: '*' },
    });
    expect(classify(message('GET', '/b/k'))).toMatchObject({ conditions: {} });
    expect(classify(message('DELETE', '/b/k', headers))).not.toHaveProperty('conditions');
  });

  test("parses a CopyObject's source, and leaves it undefined when the header names no key", () => {
    expect(classify(message('PUT', '/b/k', { 'x-amz-copy-source': '/src/a%2Bb?versionId=null' }))).toMatchObject({
      copySource: { bucket: 'src', key: 'a+b', versionId: 'null' },
    });
    expect(classify(message('PUT', '/b/k', { 'x-amz-copy-source': 'src' }))).toMatchObject({
      operation: 'CopyObject',
      copySource: undefined,
    });
  });

  test('fails with InvalidUriError on a key whose percent-encoding does not decode', () => {
    expect(() => classify(message('GET', '/b/%E0%A4%A'))).toThrow(InvalidUriError);
  });
});

describe('parseCopySource', () => {
  test.each([
    ['b/k', { bucket: 'b', key: 'k', versionId: undefined }],
    ['/b/dir/k', { bucket: 'b', key: 'dir/k', versionId: undefined }],
    ['b/k?versionId=v1', { bucket: 'b', key: 'k', versionId: 'v1' }],
    ['b', undefined],
    ['b/', undefined],
    ['/b/%E0%A4%A', undefined],
  ])('%s', (header, expected) => {
    expect(parseCopySource(header)).toEqual(expected);
  });
});
