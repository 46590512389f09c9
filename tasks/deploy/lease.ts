import type { S3Client } from '@aws-sdk/client-s3';
import type { Ordered } from '../shared/deployment-order';
import { isConditionalRequestConflict, putJsonIfUnchanged, readJsonObject, type JsonObject } from '../shared/s3';

/**
 * The deploy lease: `deployments/<environment>/lease.json`, one per environment, taken and given
 * back only with S3 conditional writes (If-None-Match / If-Match on the ETag read), so no two
 * deploys of one environment overlap and no extra database is needed. It also holds the Deploy
 * task's token, which deploy-complete returns to Step Functions when the deploy build ends.
 *
 * Each take of the lease gets a new `leaseId`. The deploy build carries it (STEPDEPLOY_LEASE_ID,
 * and as StartBuild's idempotency token) and fences itself with it: its first command exits
 * unless the lease still has this id and is not released (buildspecs/deploy.yml). So a build
 * whose lease was given back or taken over before the build ran never deploys, and a build whose
 * id was never written into the lease is still found by its lease id (lease-builds.ts).
 */
export interface DeployLease extends Ordered {
  readonly environment: string;
  readonly taskToken: string;
  /** New at every take of the lease; absent in leases written before the fence existed. */
  readonly leaseId?: string;
  /** `$$.Execution.RedriveCount` of the run that took it: execution events of another run leave it alone. */
  readonly redriveCount?: number;
  readonly acquiredAt: string;
  /** By then CodeBuild has ended any build of this lease (queue + build timeout + margin); for people reading it. */
  readonly expiresAt: string;
  /** The deploy build, once its id is recorded (it may run before that: find it by leaseId). */
  readonly buildId?: string;
  readonly released?: boolean;
  readonly releasedAt?: string;
  /** How the deploy build ended (SUCCEEDED, FAILED, STOPPED, …), or why the lease was given back. */
  readonly outcome?: string;
  /** The newest execution waiting for this lease: older ones are superseded by it at once. */
  readonly waiting?: Ordered;
}

export function leaseKey(environment: string): string {
  return `deployments/${environment}/lease.json`;
}

export function currentKey(environment: string): string {
  return `deployments/${environment}/current.json`;
}

export function readLease(
  s3: S3Client,
  bucket: string,
  environment: string,
): Promise<JsonObject<DeployLease> | undefined> {
  return readJsonObject<DeployLease>(s3, bucket, leaseKey(environment));
}

/**
 * Writes the lease if it is still what the caller read. Answers undefined when it is not — S3's
 * 412, or its 409 ConditionalRequestConflict (a concurrent conditional write on the key; S3 says
 * to retry): either way the caller reads the lease again and decides again.
 */
export async function writeLease(
  s3: S3Client,
  bucket: string,
  lease: DeployLease,
  previous: { readonly etag: string } | undefined,
): Promise<{ readonly etag: string } | undefined> {
  try {
    return await putJsonIfUnchanged(s3, bucket, leaseKey(lease.environment), lease, previous);
  } catch (err) {
    if (isConditionalRequestConflict(err)) return undefined;
    throw err;
  }
}

/** Whether `lease` is the same take of the lease as `mine` (same id; a lease without id matches by execution and build). */
export function sameTake(lease: DeployLease, mine: DeployLease): boolean {
  if (mine.leaseId !== undefined || lease.leaseId !== undefined) return lease.leaseId === mine.leaseId;
  return lease.execution === mine.execution && lease.acquiredAt === mine.acquiredAt;
}

/** How many times a lease update reads again after losing its conditional write before giving up. */
export const LEASE_ATTEMPTS = 5;

/**
 * Gives this take of the lease back: reads again after a lost conditional write and gives it
 * back as long as it is still this take and not released. Answers the lease as released, or
 * undefined when it is no longer this take, or already released (nothing to do).
 */
export async function releaseLease(
  s3: S3Client,
  bucket: string,
  held: JsonObject<DeployLease>,
  outcome: string,
  now: Date,
): Promise<DeployLease | undefined> {
  let current: JsonObject<DeployLease> | undefined = held;
  for (let attempt = 0; attempt < LEASE_ATTEMPTS; attempt += 1) {
    if (!current || current.value.released || !sameTake(current.value, held.value)) return undefined;
    const released: DeployLease = { ...current.value, released: true, releasedAt: now.toISOString(), outcome };
    if ((await writeLease(s3, bucket, released, current)) !== undefined) return released;
    current = await readLease(s3, bucket, held.value.environment);
  }
  throw new Error(
    `${held.value.environment}: the deploy lease changed ${LEASE_ATTEMPTS} times while it was being given back (${outcome}); the event will be delivered again`,
  );
}
