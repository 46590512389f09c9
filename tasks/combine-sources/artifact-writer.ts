import type { Readable } from 'node:stream';
import type { S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import * as yazl from 'yazl';
import type { Manifest } from '../shared/contracts';
import { MANIFEST_NAME } from './manifest';
import { PathRegistry } from './path-registry';
import { appendSnapshot, type SnapshotSource } from './snapshot';

/** Upload buffers at most about partSize × (queueSize + 1): ~24 MiB, whatever the artifact's size. */
export const DEFAULT_PART_SIZE = 8 * 1024 * 1024;
export const DEFAULT_QUEUE_SIZE = 2;

export interface WriteArtifactOptions {
  readonly s3: S3Client;
  readonly bucket: string;
  readonly key: string;
  readonly manifest: Manifest;
  readonly sources: ReadonlyArray<SnapshotSource>;
  readonly tmpDir: string;
  /** @default DEFAULT_PART_SIZE */
  readonly partSize?: number;
  /** @default DEFAULT_QUEUE_SIZE */
  readonly queueSize?: number;
}

/**
 * Streams the snapshots into one zip that goes straight to S3: snapshot file → yauzl → yazl →
 * multipart upload. Nothing holds the whole artifact, in memory or on disk.
 *
 * Written once: lib-storage's Upload copies its params into PutObject (a single-part upload)
 * and into CompleteMultipartUpload, and both honour `IfNoneMatch: '*'` on S3 (checked in
 * @aws-sdk/lib-storage 3.1175 dist-cjs: `{ ...this.params, ... }` for both commands). So the
 * write itself fails with 412 PreconditionFailed when the key exists, even when two
 * invocations race; the caller's HeadObject only saves the work on a redrive. If anything
 * fails midway, the zip stream is destroyed, Upload aborts the multipart upload and nothing
 * becomes visible at the key.
 */
export async function writeArtifact(options: WriteArtifactOptions): Promise<void> {
  const zip = new yazl.ZipFile();
  // A PassThrough at run time; @types/yazl only says NodeJS.ReadableStream.
  const output = zip.outputStream as Readable;
  const upload = new Upload({
    client: options.s3,
    params: {
      Bucket: options.bucket,
      Key: options.key,
      Body: output,
      ContentType: 'application/zip',
      IfNoneMatch: '*',
    },
    partSize: options.partSize ?? DEFAULT_PART_SIZE,
    queueSize: options.queueSize ?? DEFAULT_QUEUE_SIZE,
  });
  const uploaded = upload.done();
  const stop = new AbortController();
  const failed = new Promise<never>((_, reject) => {
    zip.on('error', reject);
    uploaded.catch(reject);
  });
  failed.catch(() => stop.abort());
  const filling = fill(zip, options, stop.signal);
  try {
    // An upload that fails stops reading the zip; racing keeps the copy from waiting forever.
    await Promise.race([filling, failed]);
    zip.end();
    await uploaded;
  } catch (err) {
    stop.abort();
    output.destroy(err instanceof Error ? err : new Error(String(err)));
    await Promise.allSettled([filling, uploaded]);
    throw err;
  }
}

async function fill(zip: yazl.ZipFile, options: WriteArtifactOptions, signal: AbortSignal): Promise<void> {
  const registry = new PathRegistry();
  // First entry, so that reading it back takes a few ranged GETs (see readArtifactManifest).
  registry.claimFile(MANIFEST_NAME, 'the stepdeploy manifest');
  zip.addBuffer(Buffer.from(`${JSON.stringify(options.manifest, null, 2)}\n`), MANIFEST_NAME, {
    mode: 0o100644,
    mtime: new Date(options.manifest.createdAt),
  });
  for (const source of options.sources) {
    await appendSnapshot({ ...options, source, zip, registry, signal });
  }
}
