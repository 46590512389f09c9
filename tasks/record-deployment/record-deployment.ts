import { setTimeout as sleep } from 'node:timers/promises';
import { GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { DeploymentRecord, RecordDeploymentEvent, RecordDeploymentResult } from '../../shared/contracts';
import { supersedes } from '../shared/deployment-order';
import {
  conflictBackoffMs,
  isConditionalRequestConflict,
  isPreconditionFailed,
  putJsonIfUnchanged,
  readJsonObject,
  retryOnConditionalConflict,
} from '../shared/s3';
import { CurrentRecordContendedError } from './errors';

export interface RecordDeploymentDependencies {
  readonly s3: S3Client;
  readonly bucket: string;
  /** @default () => new Date() */
  readonly now?: () => Date;
  /** The waits between lost attempts (tests pass one that does not wait). @default timers/promises setTimeout */
  readonly sleep?: (ms: number) => Promise<unknown>;
}

/**
 * RecordDeployment: one append-only history entry per execution, then current.json.
 *
 * The history key starts with the deployment time so that a prefix listing reads in order, but a
 * redrive of this state runs at another time and would compute another key: the entry would be
 * written twice. So the first run of each execution claims `executions/<execution>.json` with a
 * conditional put, holding the record; a redrive loses that put (412), reads the claimed record
 * back and reuses its deployedAt, hence the same history key. A claim key derived from the
 * execution alone is the one thing a redrive can find again without listing the history.
 */
export async function recordDeployment(
  event: RecordDeploymentEvent,
  deps: RecordDeploymentDependencies,
): Promise<RecordDeploymentResult> {
  const now = deps.now ?? (() => new Date());
  const record = await claim(recordOf(event, now()), deps);
  const historyKey = historyKeyOf(record);
  // 412 here means an earlier run of this execution wrote this very entry before failing.
  await putIfAbsent(deps, historyKey, record);
  const currentKey = `deployments/${record.environment}/current.json`;
  const current = await advanceCurrent(deps, currentKey, record);
  return { currentKey, historyKey, current };
}

export const CURRENT_ATTEMPTS = 5;

/**
 * current.json only ever moves forward: it is replaced (If-Match on the ETag read, or
 * If-None-Match when absent) unless it already names a newer execution. Answers whether it now
 * names this one. A lost attempt reads it again and decides again: after a 412 (another write
 * came first) and after S3's 409 ConditionalRequestConflict alike, which S3 says to answer by
 * fetching the ETag again and retrying. Lost attempts wait a jittered backoff, so that many
 * deployments finishing together spread out; after CURRENT_ATTEMPTS it gives up with
 * CurrentRecordContendedError, which the state machine retries.
 */
async function advanceCurrent(
  deps: RecordDeploymentDependencies,
  key: string,
  record: DeploymentRecord,
): Promise<boolean> {
  const lost = { precondition: 0, conflict: 0 };
  for (let attempt = 1; attempt <= CURRENT_ATTEMPTS; attempt += 1) {
    const current = await readJsonObject<DeploymentRecord>(deps.s3, deps.bucket, key);
    if (supersedes(current?.value, record)) return false;
    try {
      if (await putJsonIfUnchanged(deps.s3, deps.bucket, key, record, current)) return true;
      lost.precondition += 1;
    } catch (err) {
      if (!isConditionalRequestConflict(err)) throw err;
      lost.conflict += 1;
    }
    if (attempt < CURRENT_ATTEMPTS) await (deps.sleep ?? sleep)(conflictBackoffMs(attempt));
  }
  throw new CurrentRecordContendedError(
    `${key} could not be updated by ${record.execution} in ${CURRENT_ATTEMPTS} attempts: ${lost.precondition} lost to another write (412 PreconditionFailed), ` +
      `${lost.conflict} met a conflicting operation (409 ConditionalRequestConflict); redrive RecordDeployment`,
  );
}

export function claimKeyOf(environment: string, execution: string): string {
  return `deployments/${environment}/executions/${execution}.json`;
}

/** `deployments/<environment>/history/20261129T031500Z-<execution>.json` */
export function historyKeyOf(record: DeploymentRecord): string {
  const compact = new Date(record.deployedAt).toISOString().replace(/[-:]/g, '').replace(/\.\d+/, '');
  return `deployments/${record.environment}/history/${compact}-${record.execution}.json`;
}

function recordOf(event: RecordDeploymentEvent, deployedAt: Date): DeploymentRecord {
  return {
    environment: event.environment,
    execution: event.execution,
    startedAt: event.startedAt,
    requestedBy: event.requestedBy,
    deployedAt: deployedAt.toISOString(),
    artifactKey: event.artifactKey,
    buildId: event.buildId,
    deployBuildId: event.deployBuildId,
    sources: event.sources.map(({ name, branch, commit }) => ({ name, branch, commit })),
    approval: event.approval,
    redeployOf: event.redeployOf,
  };
}

/** The record this execution first wrote, or `record` when this is the first run. */
async function claim(record: DeploymentRecord, deps: RecordDeploymentDependencies): Promise<DeploymentRecord> {
  const key = claimKeyOf(record.environment, record.execution);
  if (await putIfAbsent(deps, key, record)) return record;
  const claimed = await deps.s3.send(new GetObjectCommand({ Bucket: deps.bucket, Key: key }));
  return JSON.parse(await claimed.Body!.transformToString()) as DeploymentRecord;
}

/**
 * Writes the record unless the key exists; answers whether it wrote. A 409 ConditionalRequestConflict
 * wrote nothing, so the put is sent again (as S3 says); a 412 after it means the key exists, which
 * the caller handles as it does any 412: it reads what is there rather than assume who wrote it.
 */
async function putIfAbsent(
  deps: RecordDeploymentDependencies,
  key: string,
  record: DeploymentRecord,
): Promise<boolean> {
  try {
    await retryOnConditionalConflict(
      `s3://${deps.bucket}/${key}`,
      () =>
        deps.s3.send(
          new PutObjectCommand({
            Bucket: deps.bucket,
            Key: key,
            Body: toJson(record),
            ContentType: 'application/json',
            IfNoneMatch: '*',
          }),
        ),
      { sleep: deps.sleep },
    );
    return true;
  } catch (err) {
    if (isPreconditionFailed(err)) return false;
    throw err;
  }
}

function toJson(record: DeploymentRecord): string {
  return `${JSON.stringify(record, null, 2)}\n`;
}
