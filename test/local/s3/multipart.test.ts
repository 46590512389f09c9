import { existsSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  UploadPartCommand,
  UploadPartCopyCommand,
} from '@aws-sdk/client-s3';
import {
  BUCKET,
  bytes,
  complete,
  copyPart,
  createUpload,
  dir,
  errorOf,
  put,
  s3,
  uploadPart,
  useLocalS3,
} from './helpers';

useLocalS3();

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
    // The module object itself (an `import * as` would be a copy of it): local/s3/concatenate.ts calls its copyFile.
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
