import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
  UploadPartCommand,
  UploadPartCopyCommand,
} from '@aws-sdk/client-s3';
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

describe('local S3 UploadPartCopy (s3rver answers NotImplemented; the local S3 implements it)', () => {
  const MiB = 1024 * 1024;
  let source: Buffer;
  let sourceEtag: string;

  beforeAll(async () => {
    source = randomBytes(6 * MiB);
    sourceEtag = (await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'copy/source object.bin', Body: source }))).ETag!;
  });

  async function createUpload(key: string): Promise<string> {
    return (await s3.send(new CreateMultipartUploadCommand({ Bucket: BUCKET, Key: key }))).UploadId!;
  }

  function copyPart(key: string, uploadId: string, PartNumber: number, extra: Partial<ConstructorParameters<typeof UploadPartCopyCommand>[0]> = {}) {
    return s3.send(
      new UploadPartCopyCommand({
        Bucket: BUCKET,
        Key: key,
        UploadId: uploadId,
        PartNumber,
        CopySource: `${BUCKET}/copy/source%20object.bin`,
        ...extra,
      }),
    );
  }

  test('copies a byte range and a whole object as parts, which complete into their concatenation', async () => {
    const key = 'copy/assembled.bin';
    const uploadId = await createUpload(key);

    const first = await copyPart(key, uploadId, 1, { CopySourceRange: `bytes=0-${5 * MiB - 1}`, CopySourceIfMatch: sourceEtag });
    const second = await copyPart(key, uploadId, 2, { CopySource: `/${BUCKET}/copy/source%20object.bin` });
    const third = await s3.send(new UploadPartCommand({ Bucket: BUCKET, Key: key, UploadId: uploadId, PartNumber: 3, Body: 'tail' }));
    await s3.send(
      new CompleteMultipartUploadCommand({
        Bucket: BUCKET,
        Key: key,
        UploadId: uploadId,
        MultipartUpload: {
          Parts: [
            { PartNumber: 1, ETag: first.CopyPartResult!.ETag },
            { PartNumber: 2, ETag: second.CopyPartResult!.ETag },
            { PartNumber: 3, ETag: third.ETag },
          ],
        },
      }),
    );

    const md5 = createHash('md5').update(source.subarray(0, 5 * MiB)).digest('hex');
    expect(first.CopyPartResult!.ETag).toBe(`"${md5}"`);
    expect(first.CopyPartResult!.LastModified).toBeInstanceOf(Date);
    const out = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
    const body = Buffer.from(await out.Body!.transformToByteArray());
    expect(body.equals(Buffer.concat([source.subarray(0, 5 * MiB), source, Buffer.from('tail')]))).toBe(true);
  });

  test('fails with 412 PreconditionFailed when x-amz-copy-source-if-match is not the source ETag', async () => {
    const uploadId = await createUpload('copy/stale.bin');

    const err = await errorOf(copyPart('copy/stale.bin', uploadId, 1, { CopySourceIfMatch: '"0123456789abcdef0123456789abcdef"' }));

    expect(err.name).toBe('PreconditionFailed');
    expect(err.$metadata.httpStatusCode).toBe(412);
    await s3.send(new AbortMultipartUploadCommand({ Bucket: BUCKET, Key: 'copy/stale.bin', UploadId: uploadId }));
  });

  test('fails with NoSuchKey when the source is missing, and NoSuchUpload for an unknown upload', async () => {
    const uploadId = await createUpload('copy/missing.bin');

    const missing = await errorOf(copyPart('copy/missing.bin', uploadId, 1, { CopySource: `${BUCKET}/copy/nothing-here.bin` }));
    const noUpload = await errorOf(copyPart('copy/missing.bin', 'abcdef0123', 1));

    expect(missing.name).toBe('NoSuchKey');
    expect(missing.$metadata.httpStatusCode).toBe(404);
    expect(noUpload.name).toBe('NoSuchUpload');
  });

  test('fails with InvalidArgument when the range is outside the source or malformed', async () => {
    const uploadId = await createUpload('copy/range.bin');

    const outside = await errorOf(copyPart('copy/range.bin', uploadId, 1, { CopySourceRange: `bytes=0-${6 * MiB}` }));
    const malformed = await errorOf(copyPart('copy/range.bin', uploadId, 1, { CopySourceRange: 'bytes=10-' }));

    expect(outside.name).toBe('InvalidArgument');
    expect(outside.$metadata.httpStatusCode).toBe(400);
    expect(outside.message).toContain(`source object of size: ${6 * MiB}`);
    expect(malformed.name).toBe('InvalidArgument');
  });

  test('AbortMultipartUpload (MethodNotAllowed in s3rver) removes the upload: its parts are gone', async () => {
    const key = 'copy/aborted.bin';
    const uploadId = await createUpload(key);
    await copyPart(key, uploadId, 1);

    await s3.send(new AbortMultipartUploadCommand({ Bucket: BUCKET, Key: key, UploadId: uploadId }));

    expect(readdirSync(join(dir, BUCKET, '._S3rver_uploads'))).not.toContain(uploadId);
    expect((await errorOf(copyPart(key, uploadId, 2))).name).toBe('NoSuchUpload');
    expect((await errorOf(s3.send(new AbortMultipartUploadCommand({ Bucket: BUCKET, Key: key, UploadId: uploadId })))).name).toBe('NoSuchUpload');
  });

  test("CompleteMultipartUpload checks the parts as S3 does and answers S3's multipart ETag", async () => {
    const key = 'copy/checked.bin';
    const uploadId = await createUpload(key);
    const small = await s3.send(new UploadPartCommand({ Bucket: BUCKET, Key: key, UploadId: uploadId, PartNumber: 1, Body: 'x' }));
    const big = await copyPart(key, uploadId, 2);
    const complete = (Parts: Array<{ PartNumber: number; ETag?: string }>) =>
      s3.send(new CompleteMultipartUploadCommand({ Bucket: BUCKET, Key: key, UploadId: uploadId, MultipartUpload: { Parts } }));

    const tooSmall = await errorOf(complete([{ PartNumber: 1, ETag: small.ETag }, { PartNumber: 2, ETag: big.CopyPartResult!.ETag }]));
    const wrongEtag = await errorOf(complete([{ PartNumber: 2, ETag: '"0123456789abcdef0123456789abcdef"' }]));
    const outOfOrder = await errorOf(complete([{ PartNumber: 2, ETag: big.CopyPartResult!.ETag }, { PartNumber: 1, ETag: small.ETag }]));
    const done = await complete([{ PartNumber: 2, ETag: big.CopyPartResult!.ETag }]);

    expect([tooSmall.name, wrongEtag.name, outOfOrder.name]).toEqual(['EntityTooSmall', 'InvalidPart', 'InvalidPartOrder']);
    const md5 = createHash('md5').update(Buffer.from(big.CopyPartResult!.ETag!.replace(/"/g, ''), 'hex')).digest('hex');
    expect(done.ETag).toBe(`"${md5}-1"`);
    const head = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
    expect(head.ETag).toBe(done.ETag);
    expect(head.ContentType).toBe('binary/octet-stream');
    expect(Buffer.from(await head.Body!.transformToByteArray()).equals(source)).toBe(true);
  });
});
