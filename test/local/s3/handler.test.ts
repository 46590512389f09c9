import { request } from 'node:http';
import { text } from 'node:stream/consumers';
import { CopyObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { BUCKET, put, read, s3, s3server, useLocalS3 } from './helpers';

useLocalS3();

describe('local S3', () => {
  test('round-trips an object through the S3 protocol', async () => {
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'a/b c.txt', Body: 'hello' }));
    expect(await read('a/b c.txt')).toBe('hello');
  });

  test('CopyObject of a key whose characters travel URL-encoded (+, %, ?, a space) copies that key, as S3 does', async () => {
    const key = 'odd/a+b%c?d e.txt';
    await put(key, 'odd bytes');
    const CopySource = `${BUCKET}/${key.split('/').map(encodeURIComponent).join('/')}`;

    await s3.send(new CopyObjectCommand({ Bucket: BUCKET, Key: 'odd/copy.txt', CopySource }));

    expect(await read('odd/copy.txt')).toBe('odd bytes');
  });

  test('answers 400 InvalidURI to a key whose percent-encoding does not decode, and goes on serving', async () => {
    await put('uri/kept.txt', 'kept');

    const answer = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = request(`${s3server.endpoint}/${BUCKET}/uri/%E0%A4%A`, { method: 'GET' }, (res) => {
        text(res).then((body) => resolve({ status: res.statusCode!, body }), reject);
      });
      req.once('error', reject);
      req.end();
    });

    expect(answer.status).toBe(400);
    expect(answer.body).toContain('<Code>InvalidURI</Code>');
    expect(await read('uri/kept.txt')).toBe('kept');
  });
});
