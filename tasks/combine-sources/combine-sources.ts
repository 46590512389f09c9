import { tmpdir } from 'node:os';
import { text } from 'node:stream/consumers';
import type { S3Client } from '@aws-sdk/client-s3';
import type { CombineSourcesEvent, CombineSourcesResult, Manifest } from '../../shared/contracts';
import { headObject, isPreconditionFailed, retryOnConditionalConflict, type ObjectInfo } from '../shared/s3';
import { openZipInS3, type ZipInS3 } from '../shared/zip';
import { writeArtifact, type WrittenArtifact } from './artifact-writer';
import { headSnapshots, rememberCombined, writeFromCombined } from './combine-cache';
import { writeFromSnapshot } from './copy-snapshot';
import { buildEnvironment, deployEnvironment } from './environment';
import { ArtifactConflictError } from './errors';
import { commitMismatch, createManifest, MANIFEST_NAME, MANIFEST_NAME_BYTES, manifestSchema } from './manifest';
import { PathRegistry } from './path-registry';
import { openStaging } from './staging';

export interface CombineSourcesDeps {
  readonly s3: S3Client;
  readonly bucket: string;
  /** @default () => new Date() */
  readonly now?: () => Date;
  /** Where snapshots are staged; Lambda's /tmp. @default os.tmpdir() */
  readonly tmpDir?: string;
  /** Multipart part size in bytes. @default DEFAULT_PART_SIZE (8 MiB) */
  readonly partSize?: number;
  /** Parts uploaded in parallel. @default DEFAULT_QUEUE_SIZE (2) */
  readonly queueSize?: number;
  /** Bytes per UploadPartCopy when reusing an earlier combine. @default DEFAULT_COPY_PART_SIZE (64 MiB) */
  readonly copyPartSize?: number;
  /** UploadPartCopy requests at once. @default DEFAULT_COPY_CONCURRENCY (8) */
  readonly copyConcurrency?: number;
  /** Where the line about reusing an earlier combine goes. @default console.log */
  readonly log?: (line: string) => void;
  /** The waits before writing again after S3's 409 (tests pass one that does not wait). @default timers/promises setTimeout */
  readonly sleep?: (ms: number) => Promise<unknown>;
}

/**
 * Writes of source.zip that S3 may answer 409 ConditionalRequestConflict before giving up: each
 * one is a whole combine (S3: a new multipart upload, every part uploaded again), so fewer than
 * the small JSON writes get.
 */
export const ARTIFACT_CONFLICT_ATTEMPTS = 4;

/**
 * CombineConfigAndCode: writes artifacts/<environment>/<execution>/source.zip once. A redrive
 * of the state finds the artifact already there and, when it holds the same commits, answers
 * what the first run answered without rewriting it. Another execution of the same snapshots
 * gets an artifact of its own, with its own manifest, whose other bytes S3 copies from the
 * earlier one (combine-cache.ts). The first combine of large snapshots copies the source at
 * "." from its snapshot inside S3 when it can (copy-snapshot.ts), else combines in full.
 */
export async function combineSources(
  event: CombineSourcesEvent,
  deps: CombineSourcesDeps,
): Promise<CombineSourcesResult> {
  const buildPath = `artifacts/${event.environment}/${event.execution}`;
  const key = `${buildPath}/source.zip`;
  const existing = await headObject(deps.s3, deps.bucket, key);
  if (existing !== undefined) return resultOf(await existingManifest(deps, key, existing, event), event, deps);
  const manifest = createManifest(event, (deps.now ?? (() => new Date()))());
  try {
    // S3's 409 ConditionalRequestConflict wrote nothing: write it again, from a new upload.
    await retryOnConditionalConflict(`s3://${deps.bucket}/${key}`, () => writeNewArtifact(deps, key, manifest, event), {
      attempts: ARTIFACT_CONFLICT_ATTEMPTS,
      sleep: deps.sleep,
    });
  } catch (err) {
    if (!isPreconditionFailed(err)) throw err;
    // The key exists: a concurrent invocation for the same execution won the conditional write,
    // or, after a 409 or a retried request, maybe this very invocation. Either way what counts
    // is what is there, never who wrote it: the same commits answer its manifest, others fail.
    const winner = await headObject(deps.s3, deps.bucket, key);
    if (winner === undefined) throw err;
    return resultOf(await existingManifest(deps, key, winner, event), event, deps);
  }
  return resultOf(manifest, event, deps);
}

async function writeNewArtifact(
  deps: CombineSourcesDeps,
  key: string,
  manifest: Manifest,
  event: CombineSourcesEvent,
): Promise<void> {
  const heads = await headSnapshots(deps, event.sources);
  const staging = await openStaging(deps.tmpDir ?? tmpdir());
  // One for the snapshot copy and, when it gives up, the full combine: see PathRegistry.clear.
  const registry = new PathRegistry();
  let written: WrittenArtifact;
  try {
    if (await writeFromCombined({ ...deps, tmpDir: staging.path }, key, manifest, event.sources, heads)) return;
    written =
      (await writeFromSnapshot({ ...deps, tmpDir: staging.path, registry }, key, manifest, event.sources, heads)) ??
      (await writeArtifact({ ...deps, key, manifest, sources: event.sources, tmpDir: staging.path, registry }));
  } finally {
    await staging.dispose();
  }
  await rememberCombined(deps, key, written);
}

/** The manifest of an artifact that is already there, if it records this event's commits. */
async function existingManifest(
  deps: CombineSourcesDeps,
  key: string,
  info: ObjectInfo,
  event: CombineSourcesEvent,
): Promise<Manifest> {
  const manifest = await readArtifactManifest(deps, key, info);
  const mismatch = commitMismatch(manifest, event);
  if (mismatch !== undefined) {
    throw new ArtifactConflictError(
      `s3://${deps.bucket}/${key} already exists and is never overwritten: ${mismatch}. ` +
        'Start a new execution to deploy other commits',
    );
  }
  return manifest;
}

/** Reads stepdeploy-manifest.json, the first entry, with a few small ranged GETs instead of a download. */
async function readArtifactManifest(deps: CombineSourcesDeps, key: string, info: ObjectInfo): Promise<Manifest> {
  const unreadable = (why: string, cause?: unknown): ArtifactConflictError =>
    new ArtifactConflictError(`s3://${deps.bucket}/${key} already exists but ${why}; it is never overwritten`, {
      cause,
    });
  let zip: ZipInS3;
  try {
    zip = await openZipInS3(
      deps.s3,
      { bucket: deps.bucket, key, size: info.size, etag: info.etag },
      { windowBytes: MANIFEST_WINDOW_BYTES },
    );
  } catch (err) {
    throw unreadable('is not a readable zip', err);
  }
  try {
    const first = await zip.entries().next();
    if (first.done === true || !first.value.fileNameRaw.equals(MANIFEST_NAME_BYTES)) {
      throw unreadable(`does not start with ${MANIFEST_NAME} (not written by stepdeploy)`);
    }
    const json = await text(await zip.openReadStream(first.value));
    const parsed = manifestSchema.safeParse(JSON.parse(json));
    if (!parsed.success) throw unreadable(`its ${MANIFEST_NAME} is not a stepdeploy manifest`, parsed.error);
    return parsed.data;
  } finally {
    zip.close();
  }
}

/** The manifest is ~1 KB: small windows keep a redrive from downloading megabytes of directory. */
const MANIFEST_WINDOW_BYTES = 64 * 1024;

function resultOf(manifest: Manifest, event: CombineSourcesEvent, deps: CombineSourcesDeps): CombineSourcesResult {
  const buildPath = `artifacts/${manifest.environment}/${manifest.execution}`;
  const key = `${buildPath}/source.zip`;
  const build = buildEnvironment(manifest, event.variables, event);
  return {
    key,
    location: `${deps.bucket}/${key}`,
    buildPath,
    manifest,
    buildEnvironment: build,
    deployEnvironment: deployEnvironment(build, event.deployRoleArn),
  };
}
