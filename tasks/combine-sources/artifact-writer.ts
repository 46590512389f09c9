import type { S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import type { Manifest } from '../../shared/contracts';
import { MANIFEST_NAME } from './manifest';
import { PathRegistry } from './path-registry';
import { RawZipWriter, toDosDateTime, type ZipLayout } from '../shared/zip';
import { appendSnapshot, checkSymlinks, type SnapshotSource } from './snapshot';
import { SymlinkTable } from './symlinks';

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
  /** A registry to clear and reuse (see PathRegistry.clear); a new one when absent. */
  readonly registry?: PathRegistry;
}

/**
 * Streams the snapshots into one zip that goes straight to S3: snapshot file → yauzl (raw
 * entry data) → RawZipWriter → multipart upload. Nothing holds the whole artifact, in memory
 * or on disk, and no entry is inflated or deflated again.
 *
 * Written once: lib-storage's Upload copies its params into PutObject (a single-part upload)
 * and into CompleteMultipartUpload, and both honour `IfNoneMatch: '*'` on S3 (checked in
 * @aws-sdk/lib-storage 3.1175 dist-cjs: `{ ...this.params, ... }` for both commands). So the
 * write itself fails with 412 PreconditionFailed when the key exists, even when two
 * invocations race; the caller's HeadObject only saves the work on a redrive. If anything
 * fails midway, the zip stream is destroyed, Upload aborts the multipart upload and nothing
 * becomes visible at the key.
 */
export async function writeArtifact(options: WriteArtifactOptions): Promise<WrittenArtifact> {
  const stop = new AbortController();
  // The signal ends the writer's waits for the upload to read, once the upload has failed.
  const zip = new RawZipWriter({ signal: stop.signal, spillDir: options.tmpDir });
  const upload = new Upload({
    client: options.s3,
    params: {
      Bucket: options.bucket,
      Key: options.key,
      Body: zip.output,
      ContentType: 'application/zip',
      IfNoneMatch: '*',
    },
    partSize: options.partSize ?? DEFAULT_PART_SIZE,
    queueSize: options.queueSize ?? DEFAULT_QUEUE_SIZE,
  });
  const uploaded = upload.done();
  const failed = new Promise<never>((_, reject) => {
    uploaded.catch(reject);
  });
  failed.catch(() => stop.abort());
  const filling = fill(zip, options, stop.signal);
  try {
    // An upload that fails stops reading the zip; racing keeps the copy from waiting forever.
    const layout = await Promise.race([filling, failed]);
    const { ETag } = await uploaded;
    return { ...layout, etag: ETag };
  } catch (err) {
    stop.abort();
    zip.output.destroy(err instanceof Error ? err : new Error(String(err)));
    await Promise.allSettled([filling, uploaded]);
    throw err;
  }
}

/** What a later combine of the same snapshots can copy from this artifact (see combined-index.ts). */
export interface WrittenArtifact {
  /** The artifact's ETag; undefined when S3 did not answer one. */
  readonly etag: string | undefined;
  /** The snapshots as downloaded: the ETag is undefined when S3 did not answer one. */
  readonly snapshots: ReadonlyArray<SnapshotSource & { readonly etag: string | undefined }>;
  /** Where the sources' entries (everything after the manifest, before the directory) start. */
  readonly rangeStart: number;
  readonly rangeLength: number;
  /**
   * Bytes at the start of the range whose local headers were copied from a snapshot as they are
   * (copy-snapshot.ts); every entry after them has this writer's own local header, so a later
   * combine checks those exactly. 0 for a full combine.
   */
  readonly foreignLength: number;
  /** Where the artifact's central directory is: a later combine reads those entries' records there. */
  readonly layout: ZipLayout;
}

async function fill(
  zip: RawZipWriter,
  options: WriteArtifactOptions,
  signal: AbortSignal,
): Promise<Omit<WrittenArtifact, 'etag'>> {
  const registry = options.registry ?? new PathRegistry();
  registry.clear();
  registry.claimFile(MANIFEST_NAME, 'the stepdeploy manifest');
  await addManifestEntry(zip, options.manifest);
  const rangeStart = zip.position;
  const snapshots = [];
  const links = new SymlinkTable();
  for (const source of options.sources) {
    const etag = await appendSnapshot({ ...options, source, zip, registry, links, signal });
    snapshots.push({
      name: source.name,
      commit: source.commit,
      snapshotKey: source.snapshotKey,
      path: source.path,
      etag,
    });
  }
  // Before the directory is written: a refusal aborts the upload, so nothing appears at the key.
  checkSymlinks(links);
  const rangeLength = zip.position - rangeStart;
  const layout = await zip.end();
  return { snapshots, rangeStart, rangeLength, foreignLength: 0, layout };
}

/**
 * First entry, so that reading it back takes a few ranged GETs (see readArtifactManifest).
 * Stored, not deflated (it is ~1 KB): its length then depends only on its fields' lengths, so
 * a re-run of the same commits, with an execution name of the same length, puts the copied
 * range at the offset it had in the earlier artifact (the local S3 then copies that artifact
 * whole, see local/s3/concatenate.ts copyAndOverwrite).
 */
export async function addManifestEntry(zip: RawZipWriter, manifest: Manifest): Promise<void> {
  await zip.addBuffer(MANIFEST_NAME, Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`), {
    mode: 0o100644,
    mtime: toDosDateTime(new Date(manifest.createdAt)),
    compress: false,
  });
}
