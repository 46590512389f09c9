import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { localS3Client, startLocalS3, type LocalS3 } from '../../local/s3';
import { waitFor } from '../helpers/reliability';

/**
 * Promise: the local S3 is as consistent as S3 for one object — a read sees a whole version, never
 * a write in progress. The deploy lease (a JSON object read and written by concurrent executions)
 * depends on it: s3rver writes objects in place, so without the local runtime's per-key locking a
 * concurrent GET read a truncated lease.json and Deploy failed with a SyntaxError.
 */

const BUCKET = 'stepdeploy-consistency';
let dir: string;
let server: LocalS3;
let s3: S3Client;
/** Told of each request as it reaches the local S3, before any lock (the fault hook is the first thing it runs). */
let arrived: ((method: string, key: string) => void) | undefined;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'stepdeploy-s3-consistency-'));
  server = await startLocalS3({
    directory: dir,
    buckets: [BUCKET],
    fault: (method, _bucket, key) => {
      arrived?.(method, key);
      return undefined;
    },
  });
  s3 = localS3Client(server.endpoint);
});

afterAll(async () => {
  s3.destroy();
  await server.close();
  rmSync(dir, { recursive: true, force: true });
});

function version(i: number): string {
  return JSON.stringify({ version: i, padding: String(i).repeat(20_000) });
}

// Many writers and readers: interleavings the held-write test below does not try; a torn read here is found only by chance.
test('reads of an object being rewritten concurrently always see one whole version', async () => {
  const key = 'deployments/acceptance/lease.json';
  await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: version(0) }));
  const torn: string[] = [];

  await Promise.all(
    Array.from({ length: 40 }, async (_, i) => {
      await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: version(i + 1) }));
      for (let r = 0; r < 3; r++) {
        const body = await (
          await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }))
        ).Body!.transformToString();
        try {
          const parsed = JSON.parse(body) as { version: number };
          if (body !== version(parsed.version)) torn.push(`version ${parsed.version} with other content`);
        } catch {
          torn.push(`${body.length} bytes: ${body.slice(0, 40)}...`);
        }
      }
    }),
  );

  expect(torn).toEqual([]);
});

/** Whether some file under `folder` (the object's, or a temporary one the local S3 writes it to) starts with `prefix`. */
function someFileStartsWith(folder: string, prefix: Buffer): boolean {
  return readdirSync(folder, { recursive: true, encoding: 'utf8' }).some((name) => {
    try {
      return readFileSync(join(folder, name)).subarray(0, prefix.length).equals(prefix);
    } catch {
      return false; // a folder, or a temporary file renamed away meanwhile
    }
  });
}

test('a read that reaches the local S3 while a write is held mid-body sees one whole version', async () => {
  const key = 'deployments/acceptance/held.json';
  await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: version(0) }));
  const next = Buffer.from(version(1));
  const firstHalf = next.subarray(0, next.length / 2);
  let readArrived = false;
  arrived = (method, k) => {
    if (method === 'GET' && k === key) readArrived = true;
  };
  try {
    // The writer sends half its body and holds the rest until the read has reached the server: the two overlap, always.
    const body = new PassThrough();
    const writing = s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: body, ContentLength: next.length }));
    body.write(firstHalf);
    await waitFor(
      'the first half of the write on disk',
      () => someFileStartsWith(join(dir, BUCKET), firstHalf),
      30_000,
    );
    const reading = s3
      .send(new GetObjectCommand({ Bucket: BUCKET, Key: key }))
      .then((out) => out.Body!.transformToString());
    await waitFor('the read to reach the local S3', () => readArrived, 30_000);

    body.end(next.subarray(firstHalf.length));
    await writing;
    const read = await reading;

    // Whole, and the new version: S3 may serve the old one or the new one; this local S3 makes the read wait for the write.
    expect(read).toBe(version(1));
  } finally {
    arrived = undefined;
  }
});
