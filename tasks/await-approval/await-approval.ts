import type { S3Client } from '@aws-sdk/client-s3';
import type { SourceType } from '../../shared/config';
import type { DeploymentRecord } from '../../shared/contracts';
import { readJsonObject } from '../shared/s3';
import type { SlackMessage } from '../notify/format';
import type { SlackResult } from '../notify/slack';
import { currentKey } from '../deploy/lease';
import { readApproval, writeApproval, type ApprovalRecord } from './approval-record';
import { compareLink } from './compare-link';
import { ApprovalTimedOutError } from './errors';
import { approvalLines, approvalSlackMessage, type ApprovalRequest } from './message';

/**
 * AwaitApproval (`lambda:invoke.waitForTaskToken`) and ApprovalTimedOut.
 *
 * AwaitApproval keeps its task token in `approvals/<environment>/<execution>.json` — the only copy
 * outside Step Functions — and tells people what waits: Slack, or the terminal locally. The state
 * then waits until decide-approval answers with the token (approve: SendTaskSuccess; reject:
 * SendTaskFailure ApprovalRejectedError), or until its TimeoutSecondsPath runs out.
 *
 * A timeout fails the task with States.Timeout, which AwaitApproval catches into ApprovalTimedOut:
 * a Task, not a Fail state, so the execution ends FAILED at it with ApprovalTimedOutError and a
 * redrive restarts there. Redriven, it finds the record of an earlier run and lets the execution
 * go back to AwaitApproval, which asks again with a new token.
 */

export interface AwaitApprovalEvent {
  readonly taskToken: string;
  readonly environment: string;
  readonly execution: string;
  readonly startedAt: string;
  readonly redriveCount: number;
  readonly requestedBy: string | null;
  readonly timeoutSeconds: number;
  readonly allowSelfApproval: boolean;
  readonly redeployOf: string | null;
  /** The plan's sources: where each repository is, for compare links. */
  readonly repositories: ReadonlyArray<{
    readonly name: string;
    readonly repository: string;
    readonly sourceType: SourceType;
  }>;
  /** What would deploy: each source's branch and commit. */
  readonly sources: ReadonlyArray<{ readonly name: string; readonly branch: string; readonly commit: string }>;
}

export interface ApprovalTimedOutEvent {
  readonly environment: string;
  readonly execution: string;
  readonly redriveCount: number;
}

export interface AwaitApprovalDependencies {
  readonly s3: S3Client;
  readonly bucket: string;
  /** Posts to Slack; absent: the request is printed (the local runtime's terminal). */
  readonly slack?: (message: SlackMessage) => Promise<SlackResult>;
  /** The Slack message offers Approve / Reject buttons (the pipeline answers them: tasks/slack-decision). */
  readonly slackButtons?: boolean;
  /** @default console.log */
  readonly print?: (line: string) => void;
  /** @default () => new Date() */
  readonly now?: () => Date;
}

export interface AwaitApprovalSubmitted {
  readonly approvalKey: string;
  readonly expiresAt: string;
  readonly notified: 'slack' | 'terminal' | 'not delivered';
}

export async function requestApproval(
  event: AwaitApprovalEvent,
  deps: AwaitApprovalDependencies,
): Promise<AwaitApprovalSubmitted> {
  const now = (deps.now ?? (() => new Date()))();
  const expiresAt = new Date(now.getTime() + event.timeoutSeconds * 1000).toISOString();
  const record: ApprovalRecord = {
    environment: event.environment,
    execution: event.execution,
    startedAt: event.startedAt,
    redriveCount: event.redriveCount,
    taskToken: event.taskToken,
    requestedBy: event.requestedBy,
    allowSelfApproval: event.allowSelfApproval,
    requestedAt: now.toISOString(),
    expiresAt,
    sources: event.sources.map(({ name, branch, commit }) => ({ name, branch, commit })),
    redeployOf: event.redeployOf,
    status: 'waiting',
  };
  // Stored before anyone is told: an approval that arrives at once finds the token.
  await writeApproval(deps.s3, deps.bucket, record);
  const deployed = (await readJsonObject<DeploymentRecord>(deps.s3, deps.bucket, currentKey(event.environment)))?.value;
  const request = describeRequest(event, expiresAt, deployed);
  const approvalKey = `approvals/${event.environment}/${event.execution}.json`;
  if (!deps.slack) {
    (deps.print ?? console.log)(
      approvalLines(request)
        .map((line) => `[stepdeploy] ${line}`)
        .join('\n'),
    );
    return { approvalKey, expiresAt, notified: 'terminal' };
  }
  // Slack is best effort, as for every notification: the approval waits all the same, and
  // `stepdeploy executions` shows it.
  const sent = await deps.slack(approvalSlackMessage(request, { buttons: deps.slackButtons }));
  if (!sent.ok) console.warn(`await-approval: the Slack message was not delivered: ${sent.reason}`);
  return { approvalKey, expiresAt, notified: sent.ok ? 'slack' : 'not delivered' };
}

function describeRequest(
  event: AwaitApprovalEvent,
  expiresAt: string,
  deployed: DeploymentRecord | undefined,
): ApprovalRequest {
  return {
    environment: event.environment,
    execution: event.execution,
    requestedBy: event.requestedBy,
    expiresAt,
    redeployOf: event.redeployOf,
    deployedExecution: deployed?.execution ?? null,
    sources: event.sources.map((source) => {
      const now = deployed?.sources.find((s) => s.name === source.name);
      const repository = event.repositories.find((r) => r.name === source.name)?.repository;
      const compareUrl =
        now && repository && now.commit !== source.commit
          ? compareLink(repository, now.commit, source.commit)
          : undefined;
      return {
        ...source,
        ...(now ? { deployed: { branch: now.branch, commit: now.commit } } : {}),
        ...(compareUrl ? { compareUrl } : {}),
      };
    }),
  };
}

export interface ApprovalTimedOutResult {
  /** The execution was redriven after a timeout: AwaitApproval asks again. */
  readonly askAgain: true;
}

/**
 * ApprovalTimedOut: reached when AwaitApproval ran out of time (its Catch on States.Timeout), or
 * by a redrive of an execution that ended here. The record says which: written by this run
 * (same redriveCount) means it just timed out — fail with ApprovalTimedOutError; written by an
 * earlier run means this is a redrive — go back and ask again.
 */
export async function approvalTimedOut(
  event: ApprovalTimedOutEvent,
  deps: AwaitApprovalDependencies,
): Promise<ApprovalTimedOutResult> {
  const held = await readApproval(deps.s3, deps.bucket, event.environment, event.execution);
  const record = held?.value;
  if (record && record.redriveCount < event.redriveCount) return { askAgain: true };
  if (record?.status === 'waiting') {
    await writeApproval(deps.s3, deps.bucket, {
      ...record,
      status: 'timed-out',
      decidedAt: (deps.now ?? (() => new Date()))().toISOString(),
    });
  }
  const asked = record
    ? `asked at ${record.requestedAt} (requested by ${record.requestedBy ?? 'unknown'}), no decision by ${record.expiresAt}`
    : 'no decision in time';
  throw new ApprovalTimedOutError(
    `${event.environment}: ${event.execution} was not approved: ${asked}. Redrive the execution to ask again.`,
  );
}
