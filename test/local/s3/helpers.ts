import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  PutObjectCommand,
  type S3Client,
  type S3ServiceException,
  UploadPartCommand,
  UploadPartCopyCommand,
} from '@aws-sdk/client-s3';
import { localS3Client, startLocalS3, type LocalS3 } from '../../../local/s3';

/** One local S3 per test file, and the calls its tests make on it. */

export const BUCKET = 'stepdeploy-test-artifacts';
export let dir: string;
export let s3server: LocalS3;
export let s3: S3Client;

export function useLocalS3(): void {
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
}

export async function read(key: string): Promise<string> {
  const out = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
  return out.Body!.transformToString();
}

export async function errorOf(p: Promise<unknown>): Promise<S3ServiceException> {
  try {
    await p;
  } catch (err) {
    return err as S3ServiceException;
  }
  throw new Error('expected the request to fail');
}

export async function put(key: string, body: Buffer | string): Promise<void> {
  await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: body }));
}

export async function bytes(key: string): Promise<Buffer> {
  const out = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
  return Buffer.from(await out.Body!.transformToByteArray());
}

export async function createUpload(key: string): Promise<string> {
  return (await s3.send(new CreateMultipartUploadCommand({ Bucket: BUCKET, Key: key }))).UploadId!;
}

export async function copyPart(
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

export async function uploadPart(
  key: string,
  UploadId: string,
  PartNumber: number,
  Body: Buffer | string,
): Promise<string> {
  return (await s3.send(new UploadPartCommand({ Bucket: BUCKET, Key: key, UploadId, PartNumber, Body }))).ETag!;
}

export function complete(key: string, UploadId: string, etags: ReadonlyArray<string>) {
  const Parts = etags.map((ETag, i) => ({ PartNumber: i + 1, ETag }));
  return s3.send(
    new CompleteMultipartUploadCommand({ Bucket: BUCKET, Key: key, UploadId, MultipartUpload: { Parts } }),
  );
}
