import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetObjectCommand, PutObjectCommand, S3Client, S3ServiceException } from '@aws-sdk/client-s3';
import { localS3Client, startLocalS3, type LocalS3 } from '../../local/s3';

const BUCKET = 'stepdeploy-test-artifacts';
let dir: string;
let s3server: LocalS3;
let s3: S3Client;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'stepdeploy-s3-'));
  s3server = await startLocalS3({ directory: dir, buckets: [BUCKET] });
  s3 = localS3Client(s3server.endpoint);
});

afterAll(async () => {
  s3.destroy();
  await s3server.close();
  rmSync(dir, { recursive: true, force: true });
});

async function read(key: string): Promise<string> {
  const out = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
  return out.Body!.transformToString();
}

async function errorOf(p: Promise<unknown>): Promise<S3ServiceException> {
  try {
    await p;
  } catch (err) {
    return err as S3ServiceException;
  }
  throw new Error('expected the request to fail');
}

describe('local S3', () => {
  test('round-trips an object through the S3 protocol', async () => {
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'a/b c.txt', Body: 'hello' }));
    expect(await read('a/b c.txt')).toBe('hello');
  });

  test('fails a second If-None-Match: * write with 412 PreconditionFailed and keeps the first object', async () => {
    const key = 'artifacts/acceptance/e1/source.zip';
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: 'first', IfNoneMatch: '*' }));

    const err = await errorOf(s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: 'second', IfNoneMatch: '*' })));

    expect(err.name).toBe('PreconditionFailed');
    expect(err.$metadata.httpStatusCode).toBe(412);
    expect(await read(key)).toBe('first');
  });

  test('lets exactly one of many concurrent If-None-Match writes win', async () => {
    const key = 'race/one.txt';
    const results = await Promise.allSettled(
      Array.from({ length: 8 }, (_, i) =>
        s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: `writer ${i}`, IfNoneMatch: '*' })),
      ),
    );
    const won = results.filter((r) => r.status === 'fulfilled');
    expect(won).toHaveLength(1);
    expect(await read(key)).toMatch(/^writer \d$/);
  });

  test('applies If-Match on the ETag: the current ETag wins, a stale one fails', async () => {
    const key = 'deployments/acceptance/current.json';
    const first = await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: 'v1' }));
    const second = await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: 'v2', IfMatch: first.ETag }));

    const err = await errorOf(s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: 'v3', IfMatch: first.ETag })));

    expect(second.ETag).not.toBe(first.ETag);
    expect(err.name).toBe('PreconditionFailed');
    expect(await read(key)).toBe('v2');
  });

  test('fails If-Match on a missing key with NoSuchKey', async () => {
    const err = await errorOf(
      s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'missing.json', Body: 'x', IfMatch: '"abc"' })),
    );
    expect(err.name).toBe('NoSuchKey');
  });
});
