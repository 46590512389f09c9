import type { S3Client } from '@aws-sdk/client-s3';
import type { Ordered } from '../shared/deployment-order';
import { putJsonIfUnchanged, readJsonObject, type JsonObject } from '../shared/s3';

/**
 * The deploy lease: `deployments/<environment>/lease.json`, one per environment, taken and given
 * back only with S3 conditional writes (If-None-Match / If-Match on the ETag read), so no two
 * deploys of one environment overlap and no extra database is needed. It also holds the Deploy
 * task's token, which deploy-complete returns to Step Functions when the deploy build ends.
 */
export interface DeployLease extends Ordered {
  readonly environment: string;
  readonly taskToken: string;
  readonly acquiredAt: string;
  /** A holder that crashed without giving the lease back loses it at this time. */
  readonly expiresAt: string;
  /** The deploy build, once started. */
  readonly buildId?: string;
  readonly released?: boolean;
  readonly releasedAt?: string;
  /** How the deploy build ended (SUCCEEDED, FAILED, STOPPED, …), or why the lease was given back. */
  readonly outcome?: string;
}

export function leaseKey(environment: string): string {
  return `deployments/${environment}/lease.json`;
}

export function currentKey(environment: string): string {
  return `deployments/${environment}/current.json`;
}

export function readLease(s3: S3Client, bucket: string, environment: string): Promise<JsonObject<DeployLease> | undefined> {
  return readJsonObject<DeployLease>(s3, bucket, leaseKey(environment));
}

export function writeLease(
  s3: S3Client,
  bucket: string,
  lease: DeployLease,
  previous: { readonly etag: string } | undefined,
): Promise<{ readonly etag: string } | undefined> {
  return putJsonIfUnchanged(s3, bucket, leaseKey(lease.environment), lease, previous);
}

/** Gives the lease back, unless someone else holds it by now (then it is theirs: nothing to do). */
export async function releaseLease(
  s3: S3Client,
  bucket: string,
  held: JsonObject<DeployLease>,
  outcome: string,
  now: Date,
): Promise<boolean> {
  const released: DeployLease = { ...held.value, released: true, releasedAt: now.toISOString(), outcome };
  return (await writeLease(s3, bucket, released, held)) !== undefined;
}
