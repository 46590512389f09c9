import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  HeadObjectCommand,
  PutObjectCommand,
  type S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { conflictsOnConditionalWrites, type ConflictInjection } from '../../../local/faults';
import { localS3Client, startLocalS3, type LocalS3 } from '../../../local/s3';
import { BUCKET, errorOf, read, s3, useLocalS3 } from './helpers';
import { isConditionalRequestConflict } from '../../../tasks/shared/s3';

useLocalS3();

describe('local S3 conditional writes', () => {
  test('fails a second If-None-Match: * write with 412 PreconditionFailed and keeps the first object', async () => {
    const key = 'artifacts/acceptance/e1/source.zip';
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: 'first', IfNoneMatch: '*' }));

    const err = await errorOf(
      s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: 'second', IfNoneMatch: '*' })),
    );

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

    const err = await errorOf(
      s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: 'v3', IfMatch: first.ETag })),
    );

    expect(second.ETag).not.toBe(first.ETag);
    expect(err.name).toBe('PreconditionFailed');
    expect(await read(key)).toBe('v2');
  });

  test("fails a conditional write to a key with XML's special characters (&, <) with a 412 the SDK can read", async () => {
    const key = 'xml/a&b<c>.txt';
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: 'first', IfNoneMatch: '*' }));

    const err = await errorOf(s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: 'x', IfNoneMatch: '*' })));

    expect(err.name).toBe('PreconditionFailed');
    expect(err.$metadata.httpStatusCode).toBe(412);
  });

  test('fails If-Match on a missing key with NoSuchKey', async () => {
    const err = await errorOf(
      s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'missing.json', Body: 'x', IfMatch: '"abc"' })),
    );
    expect(err.name).toBe('NoSuchKey');
  });
});

describe('local S3 conflict injection (S3 answers a conditional write 409 ConditionalRequestConflict when a conflicting operation meets it)', () => {
  let conflictDir: string;
  let server: LocalS3;
  let client: S3Client;
  let conflicts: ConflictInjection;

  beforeAll(async () => {
    conflictDir = mkdtempSync(join(tmpdir(), 'stepdeploy-s3-conflict-'));
    server = await startLocalS3({ directory: conflictDir, buckets: [BUCKET], conflict: (write) => conflicts(write) });
    client = localS3Client(server.endpoint);
  });

  afterAll(async () => {
    client.destroy();
    await server.close();
    rmSync(conflictDir, { recursive: true, force: true });
  });

  async function readKey(key: string): Promise<string> {
    return (await client.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }))).Body!.transformToString();
  }

  test("the next N conditional PutObjects under a prefix answer S3's 409, write nothing, then go through; other writes are untouched", async () => {
    conflicts = conflictsOnConditionalWrites({ keyPrefix: 'conflict/put/', count: 2 });
    const put = (key: string, Body: string, condition: { IfNoneMatch?: string; IfMatch?: string } = {}) =>
      client.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body, ...condition }));

    await put('conflict/put/plain.txt', 'unconditional');
    await put('conflict/other/a.txt', 'outside the prefix', { IfNoneMatch: '*' });
    const first = await errorOf(put('conflict/put/a.txt', 'one', { IfNoneMatch: '*' }));
    const second = await errorOf(put('conflict/put/a.txt', 'two', { IfNoneMatch: '*' }));
    await put('conflict/put/a.txt', 'three', { IfNoneMatch: '*' });

    for (const err of [first, second]) {
      expect(err.name).toBe('ConditionalRequestConflict');
      expect(err.$metadata.httpStatusCode).toBe(409);
      expect(err.message).toMatch(/conflicting operation/);
      expect(isConditionalRequestConflict(err)).toBe(true);
    }
    expect(await readKey('conflict/put/a.txt')).toBe('three');
    expect(await readKey('conflict/put/plain.txt')).toBe('unconditional');
    expect(await readKey('conflict/other/a.txt')).toBe('outside the prefix');
    expect(conflicts.injected).toEqual([
      { operation: 'PutObject', bucket: BUCKET, key: 'conflict/put/a.txt', ifNoneMatch: '*' },
      { operation: 'PutObject', bucket: BUCKET, key: 'conflict/put/a.txt', ifNoneMatch: '*' },
    ]);
  });

  test('an If-Match PutObject answered 409 changes nothing, whether its ETag was current or not; after it, the condition decides again (412 or success)', async () => {
    const key = 'conflict/match/current.json';
    conflicts = conflictsOnConditionalWrites({ keyPrefix: 'conflict/match/', count: 1 });
    const v1 = await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: 'v1' }));

    const conflicted = await errorOf(
      client.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: 'v2', IfMatch: v1.ETag })),
    );
    expect(conflicted.name).toBe('ConditionalRequestConflict');
    expect(conflicts.injected).toEqual([{ operation: 'PutObject', bucket: BUCKET, key, ifMatch: v1.ETag }]);
    expect(await readKey(key)).toBe('v1');

    await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: 'v2', IfMatch: v1.ETag }));
    const stale = await errorOf(
      client.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: 'v3', IfMatch: v1.ETag })),
    );
    expect(stale.name).toBe('PreconditionFailed');
    expect(await readKey(key)).toBe('v2');
  });

  test('a CompleteMultipartUpload answered 409 writes nothing and loses its upload (S3: start a new one); a new upload then completes', async () => {
    const key = 'conflict/multipart/source.zip';
    conflicts = conflictsOnConditionalWrites({
      keyPrefix: 'conflict/multipart/',
      count: 1,
      operation: 'CompleteMultipartUpload',
    });
    const upload = async (
      body: string,
    ): Promise<{ UploadId: string; parts: { PartNumber: number; ETag: string }[] }> => {
      const { UploadId } = await client.send(new CreateMultipartUploadCommand({ Bucket: BUCKET, Key: key }));
      const part = await client.send(
        new UploadPartCommand({ Bucket: BUCKET, Key: key, UploadId, PartNumber: 1, Body: body }),
      );
      return { UploadId: UploadId!, parts: [{ PartNumber: 1, ETag: part.ETag! }] };
    };
    const complete = (u: { UploadId: string; parts: { PartNumber: number; ETag: string }[] }) =>
      client.send(
        new CompleteMultipartUploadCommand({
          Bucket: BUCKET,
          Key: key,
          UploadId: u.UploadId,
          MultipartUpload: { Parts: u.parts },
          IfNoneMatch: '*',
        }),
      );

    const first = await upload('first');
    const conflicted = await errorOf(complete(first));
    expect(conflicted.name).toBe('ConditionalRequestConflict');
    expect(conflicted.$metadata.httpStatusCode).toBe(409);
    expect((await errorOf(client.send(new HeadObjectCommand({ Bucket: BUCKET, Key: key })))).name).toBe('NotFound');
    expect((await errorOf(complete(first))).name).toBe('NoSuchUpload');

    await complete(await upload('second'));
    expect(await readKey(key)).toBe('second');
    expect(conflicts.injected).toEqual([
      { operation: 'CompleteMultipartUpload', bucket: BUCKET, key, ifNoneMatch: '*' },
    ]);
  });
});
