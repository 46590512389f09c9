import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { localS3Client, startLocalS3, type LocalS3 } from '../../local/s3';

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

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'stepdeploy-s3-consistency-'));
  server = await startLocalS3({ directory: dir, buckets: [BUCKET] });
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

test('reads of an object being rewritten concurrently always see one whole version', async () => {
  const key = 'deployments/acceptance/lease.json';
  await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: version(0) }));
  const torn: string[] = [];

  await Promise.all(
    Array.from({ length: 40 }, async (_, i) => {
      await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: version(i + 1) }));
      for (let r = 0; r < 3; r++) {
        const body = await (await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }))).Body!.transformToString();
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
