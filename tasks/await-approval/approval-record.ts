import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { readJsonObject, type JsonObject } from '../shared/s3';

/**
 * `approvals/<environment>/<execution>.json`: the one place the AwaitApproval task token is kept.
 * Only the await-approval and decide-approval functions may read this prefix (infra/approval.ts):
 * the token is never printed, logged, sent to Slack or given to a build. Each run of AwaitApproval
 * (a redrive asks again) replaces it with its own token and `waiting`.
 */
export interface ApprovalRecord {
  readonly environment: string;
  readonly execution: string;
  /** `$$.Execution.StartTime`: decide-approval refuses to approve an execution a newer one superseded. */
  readonly startedAt: string;
  /** `$$.Execution.RedriveCount` of the run that asked: ApprovalTimedOut tells a redrive from a first run by it. */
  readonly redriveCount: number;
  readonly taskToken: string;
  readonly requestedBy: string | null;
  readonly allowSelfApproval: boolean;
  readonly requestedAt: string;
  readonly expiresAt: string;
  readonly sources: ReadonlyArray<{ readonly name: string; readonly branch: string; readonly commit: string }>;
  /** The execution whose build this one deploys again (a rollback), if any. */
  readonly redeployOf: string | null;
  readonly status: 'waiting' | 'approved' | 'rejected' | 'timed-out';
  readonly decidedBy?: string;
  readonly decidedAt?: string;
  /** The approver's comment, or the reason of a rejection. */
  readonly comment?: string | null;
}

/**
 * Step Functions redrives an execution up to 14 days after it stopped (RedriveExecution, API
 * reference). A redriven ApprovalTimedOut reads the record to tell a redrive from its first run:
 * a record gone before then would make it fail again instead of asking again, so the bucket's
 * lifecycle must keep approval records longer than this.
 */
export const REDRIVE_WINDOW_DAYS = 14;

export function approvalKey(environment: string, execution: string): string {
  return `approvals/${environment}/${execution}.json`;
}

export function readApproval(
  s3: S3Client,
  bucket: string,
  environment: string,
  execution: string,
): Promise<JsonObject<ApprovalRecord> | undefined> {
  return readJsonObject<ApprovalRecord>(s3, bucket, approvalKey(environment, execution));
}

/** Unconditional: the newest run of AwaitApproval is the one waiting, and its token is the one that counts. */
export async function writeApproval(s3: S3Client, bucket: string, record: ApprovalRecord): Promise<void> {
  await s3.send(
    new PutObjectCommand({
      Bucket: bucket,
      Key: approvalKey(record.environment, record.execution),
      Body: `${JSON.stringify(record, null, 2)}\n`,
      ContentType: 'application/json',
    }),
  );
}
