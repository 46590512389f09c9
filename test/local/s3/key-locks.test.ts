import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { request as httpRequest, type ClientRequest, type OutgoingHttpHeaders } from 'node:http';
import { text } from 'node:stream/consumers';
import { setImmediate, setTimeout as sleep } from 'node:timers/promises';
import { CopyObjectCommand, DeleteObjectsCommand, HeadObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
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
  s3server,
  uploadPart,
  useLocalS3,
} from './helpers';
import { acquireKeys, KeyLocks, keysLocked } from '../../../local/s3/key-locks';
import { classify, type ObjectRequest } from '../../../local/s3/request';

useLocalS3();

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

describe('KeyLocks', () => {
  /** Acquires in the background; `granted` says whether the lock was given yet. */
  function waiting(locks: KeyLocks, id: string, exclusive: boolean) {
    const state = { granted: false, release: (): void => undefined };
    const acquired = locks.acquire(id, exclusive).then((release) => {
      state.granted = true;
      state.release = release;
    });
    return Object.assign(state, { acquired });
  }

  test('readers share a key; a writer waits for them, and a reader that comes after a waiting writer waits for it', async () => {
    const locks = new KeyLocks();
    const [first, second] = [waiting(locks, 'b/k', false), waiting(locks, 'b/k', false)];
    await Promise.all([first.acquired, second.acquired]);
    const writer = waiting(locks, 'b/k', true);
    const lateReader = waiting(locks, 'b/k', false);
    await setImmediate();

    expect([writer.granted, lateReader.granted]).toEqual([false, false]);
    first.release();
    second.release();
    await writer.acquired;
    expect(lateReader.granted).toBe(false);
    writer.release();
    await lateReader.acquired;
    lateReader.release();
  });

  test('keys are independent, a release counts once, and a key with no holder or waiter is forgotten', async () => {
    const locks = new KeyLocks();
    const release = await locks.acquire('b/one', true);
    const other = await locks.acquire('b/two', true);
    const next = waiting(locks, 'b/one', true);

    release();
    await next.acquired;
    release();
    const third = waiting(locks, 'b/one', true);
    await setImmediate();

    expect(third.granted).toBe(false);
    expect(locks.size).toBe(2);
    next.release();
    await third.acquired;
    third.release();
    other();
    expect(locks.size).toBe(0);
  });
});

describe('keysLocked and acquireKeys', () => {
  test("a CopyObject reads its source's key and writes its own; a copy onto itself takes one lock", () => {
    const copy = (source: string) =>
      classify({ method: 'PUT', url: '/b/to', headers: { 'x-amz-copy-source': source } } as never) as ObjectRequest;

    expect(keysLocked(copy('b/from'))).toEqual([
      { id: 'b/to', exclusive: true },
      { id: 'b/from', exclusive: false },
    ]);
    expect(keysLocked(copy('b/to'))).toEqual([{ id: 'b/to', exclusive: true }]);
  });

  test('takes the locks in the order of their IDs, whatever order they are asked in', async () => {
    const locks = new KeyLocks();
    const order: string[] = [];
    const acquire = locks.acquire.bind(locks);
    locks.acquire = (id, exclusive) => {
      order.push(id);
      return acquire(id, exclusive);
    };

    const release = await acquireKeys(locks, [
      { id: 'b/z', exclusive: true },
      { id: 'b/a', exclusive: false },
    ]);
    release();

    expect(order).toEqual(['b/a', 'b/z']);
    expect(locks.size).toBe(0);
  });
});
