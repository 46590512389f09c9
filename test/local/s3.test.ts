import { existsSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { request as httpRequest, type ClientRequest, type OutgoingHttpHeaders } from 'node:http';
import { connect } from 'node:net';
import { text } from 'node:stream/consumers';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type S3Client,
  type S3ServiceException,
  UploadPartCommand,
  UploadPartCopyCommand,
} from '@aws-sdk/client-s3';
import { conflictsOnConditionalWrites, type ConflictInjection } from '../../local/faults';
import { localS3Client, startLocalS3, type LocalS3 } from '../../local/s3';
import { isConditionalRequestConflict } from '../../tasks/shared/s3';

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

  test('CopyObject of a key whose characters travel URL-encoded (+, %, ?, a space) copies that key, as S3 does', async () => {
    const key = 'odd/a+b%c?d e.txt';
    await put(key, 'odd bytes');
    const CopySource = `${BUCKET}/${key.split('/').map(encodeURIComponent).join('/')}`;

    await s3.send(new CopyObjectCommand({ Bucket: BUCKET, Key: 'odd/copy.txt', CopySource }));

    expect(await read('odd/copy.txt')).toBe('odd bytes');
  });

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

  test('fails If-Match on a missing key with NoSuchKey', async () => {
    const err = await errorOf(
      s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'missing.json', Body: 'x', IfMatch: '"abc"' })),
    );
    expect(err.name).toBe('NoSuchKey');
  });
});

describe('local S3 connections', () => {
  test("keeps an idle keep-alive connection open past Node's default 5 s, so that a client reusing it never races its close", async () => {
    const { port } = new URL(s3server.endpoint);
    const socket = connect(Number(port), '127.0.0.1');
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    // A reset by the server ends up as 'closed by the server' below, not as an unhandled error.
    socket.on('error', () => undefined);
    let received = '';
    socket.on('data', (chunk: Buffer) => (received += chunk.toString()));
    const answers = async (count: number): Promise<void> => {
      while ((received.match(/HTTP\/1\.1 200/g) ?? []).length < count) await sleep(20);
    };
    const head = `HEAD /${BUCKET} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: keep-alive\r\n\r\n`;
    try {
      socket.write(head);
      await answers(1);
      expect(received).not.toMatch(/keep-alive: timeout=/i);
      // Idle for longer than Node's default keepAliveTimeout (5 s), which Node 20 enforces 1 s late, then used again.
      const idle = await Promise.race([
        closed.then(() => 'closed by the server'),
        sleep(6_500).then(() => 'still open'),
      ]);
      expect(idle).toBe('still open');
      socket.write(head);
      await answers(2);
    } finally {
      socket.destroy();
    }
  }, 15_000);
});

describe('local S3 UploadPartCopy (s3rver answers NotImplemented; the local S3 implements it)', () => {
  const MiB = 1024 * 1024;
  let source: Buffer;
  let sourceEtag: string;

  beforeAll(async () => {
    source = randomBytes(6 * MiB);
    sourceEtag = (await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'copy/source object.bin', Body: source })))
      .ETag!;
  });

  async function createUpload(key: string): Promise<string> {
    return (await s3.send(new CreateMultipartUploadCommand({ Bucket: BUCKET, Key: key }))).UploadId!;
  }

  function copyPart(
    key: string,
    uploadId: string,
    PartNumber: number,
    extra: Partial<ConstructorParameters<typeof UploadPartCopyCommand>[0]> = {},
  ) {
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

    const first = await copyPart(key, uploadId, 1, {
      CopySourceRange: `bytes=0-${5 * MiB - 1}`,
      CopySourceIfMatch: sourceEtag,
    });
    const second = await copyPart(key, uploadId, 2, { CopySource: `/${BUCKET}/copy/source%20object.bin` });
    const third = await s3.send(
      new UploadPartCommand({ Bucket: BUCKET, Key: key, UploadId: uploadId, PartNumber: 3, Body: 'tail' }),
    );
    const done = await s3.send(
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

    // Not the MD5 of the bytes (which would cost a pass over them): the source version's ETag and the range.
    const partEtag = createHash('md5')
      .update(`${sourceEtag.replace(/"/g, '')}:0-${5 * MiB - 1}`)
      .digest('hex');
    expect(first.CopyPartResult!.ETag).toBe(`"${partEtag}"`);
    expect(first.CopyPartResult!.LastModified).toBeInstanceOf(Date);
    const etags = [first.CopyPartResult!.ETag!, second.CopyPartResult!.ETag!, third.ETag!].map((etag) =>
      Buffer.from(etag.replace(/"/g, ''), 'hex'),
    );
    expect(done.ETag).toBe(`"${createHash('md5').update(Buffer.concat(etags)).digest('hex')}-3"`);
    const out = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
    const body = Buffer.from(await out.Body!.transformToByteArray());
    expect(body.equals(Buffer.concat([source.subarray(0, 5 * MiB), source, Buffer.from('tail')]))).toBe(true);
  });

  test('fails with 412 PreconditionFailed when x-amz-copy-source-if-match is not the source ETag', async () => {
    const uploadId = await createUpload('copy/stale.bin');

    const err = await errorOf(
      copyPart('copy/stale.bin', uploadId, 1, { CopySourceIfMatch: '"0123456789abcdef0123456789abcdef"' }),
    );

    expect(err.name).toBe('PreconditionFailed');
    expect(err.$metadata.httpStatusCode).toBe(412);
    await s3.send(new AbortMultipartUploadCommand({ Bucket: BUCKET, Key: 'copy/stale.bin', UploadId: uploadId }));
  });

  test('fails with NoSuchKey when the source is missing, and NoSuchUpload for an unknown upload', async () => {
    const uploadId = await createUpload('copy/missing.bin');

    const missing = await errorOf(
      copyPart('copy/missing.bin', uploadId, 1, { CopySource: `${BUCKET}/copy/nothing-here.bin` }),
    );
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
    expect(
      (await errorOf(s3.send(new AbortMultipartUploadCommand({ Bucket: BUCKET, Key: key, UploadId: uploadId })))).name,
    ).toBe('NoSuchUpload');
  });

  test("CompleteMultipartUpload checks the parts as S3 does and answers S3's multipart ETag", async () => {
    const key = 'copy/checked.bin';
    const uploadId = await createUpload(key);
    const small = await s3.send(
      new UploadPartCommand({ Bucket: BUCKET, Key: key, UploadId: uploadId, PartNumber: 1, Body: 'x' }),
    );
    const big = await copyPart(key, uploadId, 2);
    const complete = (Parts: Array<{ PartNumber: number; ETag?: string }>) =>
      s3.send(
        new CompleteMultipartUploadCommand({
          Bucket: BUCKET,
          Key: key,
          UploadId: uploadId,
          MultipartUpload: { Parts },
        }),
      );

    const tooSmall = await errorOf(
      complete([
        { PartNumber: 1, ETag: small.ETag },
        { PartNumber: 2, ETag: big.CopyPartResult!.ETag },
      ]),
    );
    const wrongEtag = await errorOf(complete([{ PartNumber: 2, ETag: '"0123456789abcdef0123456789abcdef"' }]));
    const outOfOrder = await errorOf(
      complete([
        { PartNumber: 2, ETag: big.CopyPartResult!.ETag },
        { PartNumber: 1, ETag: small.ETag },
      ]),
    );
    const done = await complete([{ PartNumber: 2, ETag: big.CopyPartResult!.ETag }]);

    expect([tooSmall.name, wrongEtag.name, outOfOrder.name]).toEqual([
      'EntityTooSmall',
      'InvalidPart',
      'InvalidPartOrder',
    ]);
    const md5 = createHash('md5')
      .update(Buffer.from(big.CopyPartResult!.ETag!.replace(/"/g, ''), 'hex'))
      .digest('hex');
    expect(done.ETag).toBe(`"${md5}-1"`);
    const head = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
    expect(head.ETag).toBe(done.ETag);
    expect(head.ContentType).toBe('binary/octet-stream');
    expect(Buffer.from(await head.Body!.transformToByteArray()).equals(source)).toBe(true);
  });
});

/** Helpers of the multipart and lock tests, on the shared local S3. */
async function put(key: string, body: Buffer | string): Promise<void> {
  await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: body }));
}

async function bytes(key: string): Promise<Buffer> {
  const out = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
  return Buffer.from(await out.Body!.transformToByteArray());
}

async function createUpload(key: string): Promise<string> {
  return (await s3.send(new CreateMultipartUploadCommand({ Bucket: BUCKET, Key: key }))).UploadId!;
}

async function copyPart(
  key: string,
  UploadId: string,
  PartNumber: number,
  sourceKey: string,
  CopySourceRange?: string,
): Promise<string> {
  const out = await s3.send(
    new UploadPartCopyCommand({
      Bucket: BUCKET,
      Key: key,
      UploadId,
      PartNumber,
      CopySource: `${BUCKET}/${sourceKey}`,
      CopySourceRange,
    }),
  );
  return out.CopyPartResult!.ETag!;
}

async function uploadPart(key: string, UploadId: string, PartNumber: number, Body: Buffer | string): Promise<string> {
  return (await s3.send(new UploadPartCommand({ Bucket: BUCKET, Key: key, UploadId, PartNumber, Body }))).ETag!;
}

function complete(key: string, UploadId: string, etags: ReadonlyArray<string>) {
  const Parts = etags.map((ETag, i) => ({ PartNumber: i + 1, ETag }));
  return s3.send(
    new CompleteMultipartUploadCommand({ Bucket: BUCKET, Key: key, UploadId, MultipartUpload: { Parts } }),
  );
}

describe('local S3 UploadPartCopy by reference (the part links to the source file; nothing is copied until Complete)', () => {
  const MiB = 1024 * 1024;

  function objectFile(key: string): string {
    return join(dir, BUCKET, `${key}._S3rver_object`);
  }

  /** Every file under the bucket, the upload folders included. */
  function filesUnder(folder: string): string[] {
    return readdirSync(folder, { recursive: true, encoding: 'utf8' });
  }

  test.each([
    [
      'at the offsets they have in their source: the source is copied whole, the rest written over it and cut',
      5 * MiB,
      1,
    ],
    ['shifted by 10 bytes: read and written part by part', 5 * MiB + 10, 0],
  ] as const)('copied parts %s', async (_how, headBytes, wholeCopies) => {
    const source = randomBytes(12 * MiB);
    await put('ref/earlier.zip', source);
    const head = randomBytes(headBytes);
    const tail = randomBytes(100);
    const shift = headBytes - 5 * MiB;
    const uploadId = await createUpload('ref/again.zip');
    // The module object itself (an `import * as` would be a copy of it): local/s3.ts calls its copyFile.
    const copyFile = jest.spyOn(require('node:fs/promises') as typeof import('node:fs/promises'), 'copyFile');
    try {
      const etags = [
        await uploadPart('ref/again.zip', uploadId, 1, head),
        await copyPart(
          'ref/again.zip',
          uploadId,
          2,
          'ref/earlier.zip',
          `bytes=${5 * MiB - shift}-${11 * MiB - shift - 1}`,
        ),
        await uploadPart('ref/again.zip', uploadId, 3, tail),
      ];
      await complete('ref/again.zip', uploadId, etags);

      expect(
        (await bytes('ref/again.zip')).equals(
          Buffer.concat([head, source.subarray(5 * MiB - shift, 11 * MiB - shift), tail]),
        ),
      ).toBe(true);
      expect(copyFile.mock.calls.filter(([from]) => String(from).endsWith('.source'))).toHaveLength(wholeCopies);
    } finally {
      copyFile.mockRestore();
    }
  });

  test('sources overwritten (PutObject, CopyObject) and deleted after the copy: the completed object has the bytes as they were at the copy', async () => {
    const [overwritten, copiedOver, deleted] = [randomBytes(6 * MiB), randomBytes(6 * MiB), randomBytes(1000)];
    await put('ref/overwritten.bin', overwritten);
    await put('ref/copied-over.bin', copiedOver);
    await put('ref/deleted.bin', deleted);
    const uploadId = await createUpload('ref/assembled.bin');
    const etags = [
      await copyPart('ref/assembled.bin', uploadId, 1, 'ref/overwritten.bin'),
      await copyPart('ref/assembled.bin', uploadId, 2, 'ref/copied-over.bin'),
      await copyPart('ref/assembled.bin', uploadId, 3, 'ref/deleted.bin'),
    ];

    await put('ref/overwritten.bin', 'new bytes');
    await s3.send(
      new CopyObjectCommand({ Bucket: BUCKET, Key: 'ref/copied-over.bin', CopySource: `${BUCKET}/ref/deleted.bin` }),
    );
    await s3.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: 'ref/deleted.bin' }));
    await complete('ref/assembled.bin', uploadId, etags);

    expect((await bytes('ref/assembled.bin')).equals(Buffer.concat([overwritten, copiedOver, deleted]))).toBe(true);
    expect((await bytes('ref/copied-over.bin')).equals(deleted)).toBe(true);
    expect((await bytes('ref/overwritten.bin')).toString()).toBe('new bytes');
    expect((await errorOf(bytes('ref/deleted.bin'))).name).toBe('NoSuchKey');
    expect(statSync(objectFile('ref/overwritten.bin')).nlink).toBe(1);
  });

  test('a part number used again: the later part wins, whether it was copied or uploaded', async () => {
    const source = randomBytes(6 * MiB);
    await put('ref/reused-source.bin', source);
    const uploaded = randomBytes(5 * MiB);
    const uploadId = await createUpload('ref/reused.bin');

    const copiedFirst = await copyPart('ref/reused.bin', uploadId, 1, 'ref/reused-source.bin');
    const uploadedSecond = await uploadPart('ref/reused.bin', uploadId, 1, uploaded);
    const uploadedFirst = await uploadPart('ref/reused.bin', uploadId, 2, 'tail');
    const copiedSecond = await copyPart('ref/reused.bin', uploadId, 2, 'ref/reused-source.bin', 'bytes=10-19');
    const stale = await errorOf(complete('ref/reused.bin', uploadId, [copiedFirst, uploadedFirst]));
    await complete('ref/reused.bin', uploadId, [uploadedSecond, copiedSecond]);

    expect(stale.name).toBe('InvalidPart');
    expect((await bytes('ref/reused.bin')).equals(Buffer.concat([uploaded, source.subarray(10, 20)]))).toBe(true);
  });

  test('a part copied from the key being completed: the object becomes its old bytes and the new part', async () => {
    const original = randomBytes(6 * MiB);
    await put('ref/self.bin', original);
    const uploadId = await createUpload('ref/self.bin');
    const etags = [
      await copyPart('ref/self.bin', uploadId, 1, 'ref/self.bin'),
      await uploadPart('ref/self.bin', uploadId, 2, 'appended'),
    ];

    await complete('ref/self.bin', uploadId, etags);

    expect((await bytes('ref/self.bin')).equals(Buffer.concat([original, Buffer.from('appended')]))).toBe(true);
    expect(statSync(objectFile('ref/self.bin')).nlink).toBe(1);
  });

  test('fails with InvalidPart when a copied part is completed with another ETag', async () => {
    await put('ref/etag-source.bin', 'abc');
    const uploadId = await createUpload('ref/etag.bin');
    await copyPart('ref/etag.bin', uploadId, 1, 'ref/etag-source.bin');

    const err = await errorOf(complete('ref/etag.bin', uploadId, ['"0123456789abcdef0123456789abcdef"']));

    expect(err.name).toBe('InvalidPart');
    await s3.send(new AbortMultipartUploadCommand({ Bucket: BUCKET, Key: 'ref/etag.bin', UploadId: uploadId }));
  });

  test('AbortMultipartUpload removes the links with the upload: the source has one link again', async () => {
    await put('ref/abort-source.bin', 'abc');
    const uploadId = await createUpload('ref/abort.bin');
    await copyPart('ref/abort.bin', uploadId, 1, 'ref/abort-source.bin');
    const linked = statSync(objectFile('ref/abort-source.bin')).nlink;

    await s3.send(new AbortMultipartUploadCommand({ Bucket: BUCKET, Key: 'ref/abort.bin', UploadId: uploadId }));

    expect(linked).toBe(2);
    expect(statSync(objectFile('ref/abort-source.bin')).nlink).toBe(1);
    expect(readdirSync(join(dir, BUCKET, '._S3rver_uploads'))).not.toContain(uploadId);
  });

  test('fails a Complete that cannot read its parts without touching the object or leaving its temporary file', async () => {
    await put('ref/kept.bin', 'old object');
    await put('ref/short-source.bin', 'abc');
    const uploadId = await createUpload('ref/kept.bin');
    const etag = await copyPart('ref/kept.bin', uploadId, 1, 'ref/short-source.bin');
    // A range past the linked file's end, which no request can store: the copy pass fails midway.
    writeFileSync(join(dir, BUCKET, '._S3rver_uploads', uploadId, '1.range'), JSON.stringify({ start: 0, size: 10 }));

    const err = await errorOf(complete('ref/kept.bin', uploadId, [etag]));

    expect(err.name).toBe('InternalError');
    expect((await bytes('ref/kept.bin')).toString()).toBe('old object');
    expect(filesUnder(join(dir, BUCKET, 'ref')).filter((file) => file.endsWith('.partial'))).toEqual([]);
    await s3.send(new AbortMultipartUploadCommand({ Bucket: BUCKET, Key: 'ref/kept.bin', UploadId: uploadId }));
  });

  test('ListObjectsV2 during and after a Complete lists the keys only, never its temporary file', async () => {
    const source = randomBytes(6 * MiB);
    await put('listed/source.bin', source);
    const uploadId = await createUpload('listed/big.bin');
    const etags = await Promise.all(
      [1, 2, 3, 4, 5].map((n) => copyPart('listed/big.bin', uploadId, n, 'listed/source.bin')),
    );
    const seen = new Set<string>();
    const list = async () => {
      const out = await s3.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: 'listed/' }));
      for (const object of out.Contents ?? []) seen.add(object.Key!);
    };

    let done = false;
    const completed = complete('listed/big.bin', uploadId, etags).finally(() => (done = true));
    let listings = 0;
    while (!done) {
      await list();
      listings += 1;
    }
    await completed;
    await list();

    expect(listings).toBeGreaterThan(0);
    expect([...seen].sort()).toEqual(['listed/big.bin', 'listed/source.bin']);
    expect(filesUnder(join(dir, BUCKET)).filter((file) => file.endsWith('.partial'))).toEqual([]);
    expect((await bytes('listed/big.bin')).equals(Buffer.concat([source, source, source, source, source]))).toBe(true);
  });
});

describe('local S3 UploadPart (s3rver stores a part for any upload ID)', () => {
  test('fails an UploadPart to an unknown upload with 404 NoSuchUpload and creates nothing for it', async () => {
    const uploads = join(dir, BUCKET, '._S3rver_uploads');
    const part = (UploadId: string, PartNumber = 1) =>
      s3.send(new UploadPartCommand({ Bucket: BUCKET, Key: 'parts/unknown.bin', UploadId, PartNumber, Body: 'x' }));

    const unknown = await errorOf(part('0123456789abcdef0123456789abcdef'));
    const notAnId = await errorOf(part('not-an-upload-id'));
    const outside = await errorOf(part('../escaped'));
    const badNumber = await errorOf(part('0123456789abcdef0123456789abcdef', 0));

    expect([unknown.name, notAnId.name, outside.name]).toEqual(['NoSuchUpload', 'NoSuchUpload', 'NoSuchUpload']);
    expect(unknown.$metadata.httpStatusCode).toBe(404);
    expect(badNumber.name).toBe('InvalidArgument');
    expect(existsSync(join(uploads, '0123456789abcdef0123456789abcdef'))).toBe(false);
    expect(existsSync(join(uploads, 'not-an-upload-id'))).toBe(false);
    expect(existsSync(join(dir, BUCKET, 'escaped'))).toBe(false);
  });
});

describe('local S3 locks (s3rver has none: the proxy orders the requests on a key, an upload and a part)', () => {
  const MiB = 1024 * 1024;

  function filesUnder(folder: string): string[] {
    return readdirSync(folder, { recursive: true, encoding: 'utf8' });
  }

  /** An unsigned request (s3rver takes them) whose body the test sends in pieces, or drops. */
  function rawRequest(
    method: string,
    path: string,
    headers: OutgoingHttpHeaders,
  ): { request: ClientRequest; response: Promise<{ status: number; body: string }> } {
    const request = httpRequest(`${s3server.endpoint}/${BUCKET}/${path}`, { method, headers });
    const response = new Promise<{ status: number; body: string }>((resolve, reject) => {
      request.once('response', (res) => text(res).then((body) => resolve({ status: res.statusCode!, body }), reject));
      request.once('error', reject);
    });
    // A test that drops the connection awaits no response.
    response.catch(() => undefined);
    return { request, response };
  }

  /**
   * Waits until `file`, or the temporary file the server writes it through (a `.partial` beside
   * it), holds `size` bytes: the server is then inside the write that puts them there.
   */
  async function untilSize(file: string, size: number): Promise<void> {
    const holds = (path: string): boolean => statSync(path, { throwIfNoEntry: false })?.size === size;
    const partials = (): string[] =>
      existsSync(dirname(file)) ? readdirSync(dirname(file)).filter((name) => name.endsWith('.partial')) : [];
    while (!holds(file) && !partials().some((name) => holds(join(dirname(file), name)))) await sleep(1);
  }

  test('an UploadPart racing a Complete of its upload waits for it, then fails with NoSuchUpload: no part changes while it is concatenated', async () => {
    const key = 'race/completed.bin';
    const source = randomBytes(6 * MiB);
    const last = randomBytes(MiB);
    await put('race/complete-source.bin', source);
    const uploadId = await createUpload(key);
    const copied = await Promise.all(
      [1, 2, 3, 4, 5, 6, 7, 8].map((n) => copyPart(key, uploadId, n, 'race/complete-source.bin')),
    );
    const etags = [...copied, await uploadPart(key, uploadId, 9, last)];

    const completed = complete(key, uploadId, etags);
    // The concatenation has begun once its temporary file is there; part 9, the last one, is still to be read.
    while (!filesUnder(join(dir, BUCKET, 'race')).some((file) => file.endsWith('.partial'))) await sleep(1);
    const racing = errorOf(uploadPart(key, uploadId, 9, randomBytes(MiB)));
    await completed;

    expect((await racing).name).toBe('NoSuchUpload');
    expect((await bytes(key)).equals(Buffer.concat([...etags.slice(0, 8).map(() => source), last]))).toBe(true);
  });

  test('a CopyObject waits for a write of its source in progress and copies the whole new object, not the part written so far', async () => {
    await put('copying/source.txt', 'old object');
    const writing = rawRequest('PUT', 'copying/source.txt', { 'Content-Length': 8 });
    writing.request.write('half');
    await untilSize(join(dir, BUCKET, 'copying', 'source.txt._S3rver_object'), 4);

    const copied = s3.send(
      new CopyObjectCommand({ Bucket: BUCKET, Key: 'copying/copy.txt', CopySource: `${BUCKET}/copying/source.txt` }),
    );
    // Time for a copy that did not wait to have copied the half-written source.
    await sleep(100);
    writing.request.end('done');
    await copied;

    expect((await writing.response).status).toBe(200);
    expect((await bytes('copying/copy.txt')).toString()).toBe('halfdone');
  });

  test('CopyObjects crossing between two keys, and a copy of a key onto itself, all complete, one after the other', async () => {
    await Promise.all([put('copying/a.txt', 'a'), put('copying/b.txt', 'b')]);
    const copy = (from: string, to: string) =>
      s3.send(
        new CopyObjectCommand({
          Bucket: BUCKET,
          Key: to,
          CopySource: `${BUCKET}/${from}`,
          MetadataDirective: from === to ? 'REPLACE' : undefined,
        }),
      );

    await Promise.all([
      copy('copying/a.txt', 'copying/b.txt'),
      copy('copying/b.txt', 'copying/a.txt'),
      copy('copying/a.txt', 'copying/a.txt'),
    ]);

    // One crossing copy ran after the other, as in S3: never a swap.
    expect((await bytes('copying/a.txt')).toString()).toBe((await bytes('copying/b.txt')).toString());
  }, 10_000);

  test('a GetObject during a browser-form POST upload (s3rver finds its key in the form) waits for the whole new object', async () => {
    await put('posted/form.txt', 'old object');
    const boundary = 'stepdeploy-form-boundary';
    const head =
      `--${boundary}\r\nContent-Disposition: form-data; name="key"\r\n\r\nposted/form.txt\r\n` +
      `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="form.txt"\r\nContent-Type: text/plain\r\n\r\n`;
    const tail = `\r\n--${boundary}--\r\n`;
    const posting = rawRequest('POST', '', {
      'Content-Type': `multipart/form-data; boundary=${boundary}`,
      'Content-Length': Buffer.byteLength(`${head}halfdone${tail}`),
    });
    posting.request.write(`${head}half`);
    await untilSize(join(dir, BUCKET, 'posted', 'form.txt._S3rver_object'), 4);

    const read = bytes('posted/form.txt');
    // Time for a read that did not wait to have read the half-written object.
    await sleep(100);
    posting.request.end(`done${tail}`);

    expect((await posting.response).status).toBe(204);
    expect((await read).toString()).toBe('halfdone');
  });

  test('a DeleteObjects (s3rver finds its keys in the body) waits for a write of its key in progress, then deletes all of it', async () => {
    // A key that exists: a DeleteObjects skips a key that has no object yet, as a delete that came first.
    await put('deleting/object.txt', Buffer.from('old version'));
    const writing = rawRequest('PUT', 'deleting/object.txt', { 'Content-Length': 8 });
    writing.request.write('half');
    await untilSize(join(dir, BUCKET, 'deleting', 'object.txt._S3rver_object'), 4);

    const deleted = s3.send(
      new DeleteObjectsCommand({ Bucket: BUCKET, Delete: { Objects: [{ Key: 'deleting/object.txt' }] } }),
    );
    // Time for a delete that did not wait to have deleted the object file under the write.
    await sleep(100);
    writing.request.end('done');
    await deleted;

    expect((await writing.response).status).toBe(200);
    expect((await errorOf(bytes('deleting/object.txt'))).name).toBe('NoSuchKey');
    // A delete during the write left the metadata that the write then stored.
    expect(existsSync(join(dir, BUCKET, 'deleting'))).toBe(false);
  });

  test('a PutObject or UploadPart whose client leaves mid-body leaves the object or part as it was, and the key free', async () => {
    await put('abandoned/object.txt', Buffer.from('old version'));
    const uploadId = await createUpload('abandoned/upload.bin');
    const etag = await uploadPart('abandoned/upload.bin', uploadId, 1, 'old part');
    const writing = rawRequest('PUT', 'abandoned/object.txt', { 'Content-Length': 8 });
    const parting = rawRequest('PUT', `abandoned/upload.bin?partNumber=1&uploadId=${uploadId}`, {
      'Content-Length': 8,
    });
    writing.request.write('half');
    parting.request.write('half');
    await untilSize(join(dir, BUCKET, 'abandoned', 'object.txt._S3rver_object'), 4);
    await untilSize(join(dir, BUCKET, '._S3rver_uploads', uploadId, '1'), 4);
    writing.request.destroy();
    parting.request.destroy();

    const next = s3
      .send(new HeadObjectCommand({ Bucket: BUCKET, Key: 'abandoned/object.txt' }))
      .then((head) => head.ContentLength);
    expect(await Promise.race([next, sleep(2000).then(() => 'still waiting for the lock')])).toBe(11);
    expect((await bytes('abandoned/object.txt')).toString()).toBe('old version');
    await complete('abandoned/upload.bin', uploadId, [etag]);
    expect((await bytes('abandoned/upload.bin')).toString()).toBe('old part');
    expect(filesUnder(join(dir, BUCKET, 'abandoned')).filter((name) => name.endsWith('.partial'))).toEqual([]);
  });

  test('a request whose client leaves while it waits for the key releases the lock it then gets: the next write goes through', async () => {
    const writing = rawRequest('PUT', 'leaving/object.txt', { 'Content-Length': 8 });
    writing.request.write('half');
    await untilSize(join(dir, BUCKET, 'leaving', 'object.txt._S3rver_object'), 4);
    const leaving = rawRequest('GET', 'leaving/object.txt', {});
    leaving.request.end();
    // Time for the server to queue the read, then to see its connection close.
    await sleep(100);
    leaving.request.destroy();
    await sleep(100);
    writing.request.end('done');
    await writing.response;

    const next = s3
      .send(new PutObjectCommand({ Bucket: BUCKET, Key: 'leaving/object.txt', Body: 'next' }))
      .then(() => 'written');

    expect(await Promise.race([next, sleep(2000).then(() => 'still waiting for the lock')])).toBe('written');
  });

  test('a Complete whose client disconnects keeps the key locked until the Complete is done: a conditional write waits, then fails', async () => {
    const key = 'race/abandoned.bin';
    const uploadId = await createUpload(key);
    const first = await uploadPart(key, uploadId, 1, 'first part');
    // A part upload in progress holds the upload's lock, so the Complete waits inside the key's write lock.
    const slowPart = rawRequest('PUT', `${key}?partNumber=2&uploadId=${uploadId}`, { 'Content-Length': 8 });
    slowPart.request.write('half');
    await untilSize(join(dir, BUCKET, '._S3rver_uploads', uploadId, '2'), 4);
    const body = `<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>${first}</ETag></Part></CompleteMultipartUpload>`;
    const abandoned = rawRequest('POST', `${key}?uploadId=${uploadId}`, { 'Content-Length': Buffer.byteLength(body) });
    abandoned.request.end(body);
    // Time for the server to read the body, then to see the connection close.
    await sleep(100);
    abandoned.request.destroy();
    await sleep(100);

    const racing = errorOf(
      s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: 'racing write', IfNoneMatch: '*' })),
    );
    slowPart.request.end('done');

    expect((await slowPart.response).status).toBe(200);
    expect((await racing).name).toBe('PreconditionFailed');
    expect((await bytes(key)).toString()).toBe('first part');
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
