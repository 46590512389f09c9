import { GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { DeploymentRecord, RecordDeploymentEvent, RecordDeploymentResult } from '../shared/contracts';
import { supersedes } from '../shared/deployment-order';
import { isPreconditionFailed, putJsonIfUnchanged, readJsonObject } from '../shared/s3';
import { CurrentRecordContendedError } from './errors';

export interface RecordDeploymentDependencies {
  readonly s3: S3Client;
  readonly bucket: string;
  /** @default () => new Date() */
  readonly now?: () => Date;
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
export async function recordDeployment(event: RecordDeploymentEvent, deps: RecordDeploymentDependencies): Promise<RecordDeploymentResult> {
  const now = deps.now ?? (() => new Date());
  const record = await claim(recordOf(event, now()), deps);
  const historyKey = historyKeyOf(record);
  // 412 here means an earlier run of this execution wrote this very entry before failing.
  await putIfAbsent(deps, historyKey, record);
  const currentKey = `deployments/${record.environment}/current.json`;
  const current = await advanceCurrent(deps, currentKey, record);
  return { currentKey, historyKey, current };
}

const CURRENT_ATTEMPTS = 5;

/**
 * current.json only ever moves forward: it is replaced (If-Match on the ETag read, or
 * If-None-Match when absent) unless it already names a newer execution. Answers whether it now
 * names this one.
 */
async function advanceCurrent(deps: RecordDeploymentDependencies, key: string, record: DeploymentRecord): Promise<boolean> {
  for (let attempt = 0; attempt < CURRENT_ATTEMPTS; attempt += 1) {
    const current = await readJsonObject<DeploymentRecord>(deps.s3, deps.bucket, key);
    const deployed = current?.value;
    if (supersedes(deployed, record)) {
      return false;
    }
    if (await putJsonIfUnchanged(deps.s3, deps.bucket, key, record, current)) return true;
  }
  throw new CurrentRecordContendedError(`${key} changed ${CURRENT_ATTEMPTS} times while ${record.execution} tried to update it; redrive RecordDeployment`);
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
  };
}

/** The record this execution first wrote, or `record` when this is the first run. */
async function claim(record: DeploymentRecord, deps: RecordDeploymentDependencies): Promise<DeploymentRecord> {
  const key = claimKeyOf(record.environment, record.execution);
  if (await putIfAbsent(deps, key, record)) return record;
  const claimed = await deps.s3.send(new GetObjectCommand({ Bucket: deps.bucket, Key: key }));
  return JSON.parse(await claimed.Body!.transformToString()) as DeploymentRecord;
}

/** Writes the record unless the key exists; answers whether it wrote. */
async function putIfAbsent(deps: RecordDeploymentDependencies, key: string, record: DeploymentRecord): Promise<boolean> {
  try {
    await deps.s3.send(
      new PutObjectCommand({ Bucket: deps.bucket, Key: key, Body: toJson(record), ContentType: 'application/json', IfNoneMatch: '*' }),
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
