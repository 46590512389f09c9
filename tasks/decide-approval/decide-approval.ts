import type { S3Client } from '@aws-sdk/client-s3';
import { SendTaskFailureCommand, SendTaskSuccessCommand, type SFNClient } from '@aws-sdk/client-sfn';
import type { ApprovalDecision, DeploymentRecord } from '../../shared/contracts';
import { supersedes } from '../shared/deployment-order';
import { putJsonIfUnchanged, readJsonObject } from '../shared/s3';
import { approvalKey, readApproval, type ApprovalRecord } from '../await-approval/approval-record';
import { ApprovalRejectedError } from '../await-approval/errors';
import { currentKey, readLease } from '../deploy/lease';
import { DecisionRefusedError } from './errors';
import { isRequester } from './identity';

/**
 * decide-approval (not a state: a function URL with AWS_IAM auth, which the operator policy lets
 * people call). It is the only holder of states:SendTaskSuccess/SendTaskFailure for approvals, and
 * the only reader of the task tokens under approvals/: approvers need no SendTaskSuccess on `*`.
 * Who decides is the caller's IAM identity as Lambda's function URL front end authenticated it
 * (`requestContext.authorizer.iam.userArn`), never something the caller says about itself.
 */

export interface Decision {
  readonly action: 'approve' | 'reject';
  readonly environment: string;
  readonly execution: string;
  /** approve: an optional comment; reject: the reason (required). */
  readonly text: string | null;
}

export interface DecideApprovalDependencies {
  readonly s3: S3Client;
  readonly sfn: SFNClient;
  readonly bucket: string;
  /** @default () => new Date() */
  readonly now?: () => Date;
}

export interface DecisionResult {
  readonly action: 'approved' | 'rejected';
  readonly environment: string;
  readonly execution: string;
  readonly decidedBy: string;
  readonly message: string;
}

/** SendTask errors that say the task no longer waits (Step Functions API reference). */
const NO_LONGER_WAITING: Readonly<Record<string, string>> = {
  TaskTimedOut: 'its approval timed out, or it was decided already (TaskTimedOut)',
  TaskDoesNotExist: 'its task no longer exists: the execution ended (TaskDoesNotExist)',
};

/**
 * `callerArn` is who decides, as the self-approval rule compares it with `requestedBy`;
 * `decidedBy` is how the history and the deployment record name them (tasks/slack-decision adds
 * "via Slack (<member id>)").
 */
export async function decideApproval(
  decision: Decision,
  callerArn: string,
  deps: DecideApprovalDependencies,
  decidedBy: string = callerArn,
): Promise<DecisionResult> {
  const { environment, execution } = decision;
  const held = await readApproval(deps.s3, deps.bucket, environment, execution);
  if (!held) {
    throw new DecisionRefusedError(
      404,
      `${execution} has not asked for approval in ${environment} (no approvals/${environment}/${execution}.json): check the execution name, and that its environment requires approval and it reached AwaitApproval`,
    );
  }
  const record = held.value;
  if (record.status !== 'waiting') {
    const by = record.decidedBy ? ` by ${record.decidedBy}` : '';
    throw new DecisionRefusedError(
      409,
      `${execution} no longer waits for approval: it was ${record.status}${by}${record.decidedAt ? ` at ${record.decidedAt}` : ''}${record.status === 'approved' ? '' : '; redrive it to ask again'}`,
    );
  }
  if (decision.action === 'approve') {
    if (!record.allowSelfApproval && isRequester(record.requestedBy, callerArn)) {
      throw new DecisionRefusedError(
        403,
        `${callerArn} requested ${execution} (requestedBy "${record.requestedBy}"), and ${environment} has allowSelfApproval: false: another person must approve it`,
      );
    }
    await refuseIfSuperseded(record, deps);
  }
  const now = (deps.now ?? (() => new Date()))().toISOString();
  await sendDecision(record, decision, decidedBy, now, deps);
  const decided: ApprovalRecord = {
    ...record,
    status: decision.action === 'approve' ? 'approved' : 'rejected',
    decidedBy,
    decidedAt: now,
    comment: decision.text,
  };
  // The decision is already Step Functions': a lost write (a redrive asked again meanwhile) changes nothing.
  await putJsonIfUnchanged(deps.s3, deps.bucket, approvalKey(environment, execution), decided, held);
  console.log(`decide-approval: ${decided.status} ${environment}/${execution} by ${decidedBy}`);
  return {
    action: decided.status as 'approved' | 'rejected',
    environment,
    execution,
    decidedBy,
    message:
      decision.action === 'approve'
        ? `approved ${execution} in ${environment}: it deploys now`
        : `rejected ${execution} in ${environment}: it ends FAILED (ApprovalRejectedError); a redrive asks again`,
  };
}

/** The same rule Deploy applies: approving an execution that can no longer deploy would only end DeploySupersededError. */
async function refuseIfSuperseded(record: ApprovalRecord, deps: DecideApprovalDependencies): Promise<void> {
  const self = { execution: record.execution, startedAt: record.startedAt };
  const current = (await readJsonObject<DeploymentRecord>(deps.s3, deps.bucket, currentKey(record.environment)))?.value;
  const lease = (await readLease(deps.s3, deps.bucket, record.environment))?.value;
  const newer = [current, lease, lease?.waiting].find((other) => supersedes(other ?? undefined, self));
  if (newer) {
    throw new DecisionRefusedError(
      409,
      `${record.execution} is superseded: the newer execution ${newer.execution} (started ${newer.startedAt}) ${newer === current ? 'is deployed' : 'has reached Deploy'} in ${record.environment}, and an older execution never deploys over a newer one. Reject it, or start a new execution`,
    );
  }
}

async function sendDecision(
  record: ApprovalRecord,
  decision: Decision,
  decidedBy: string,
  now: string,
  deps: DecideApprovalDependencies,
): Promise<void> {
  try {
    if (decision.action === 'approve') {
      const output: ApprovalDecision = { approvedBy: decidedBy, comment: decision.text, approvedAt: now };
      await deps.sfn.send(new SendTaskSuccessCommand({ taskToken: record.taskToken, output: JSON.stringify(output) }));
    } else {
      await deps.sfn.send(
        new SendTaskFailureCommand({
          taskToken: record.taskToken,
          error: new ApprovalRejectedError('').name,
          cause: `rejected by ${decidedBy} at ${now}: ${decision.text}`,
        }),
      );
    }
  } catch (err) {
    const name = (err as Error).name;
    const why = NO_LONGER_WAITING[name];
    if (why)
      throw new DecisionRefusedError(409, `${record.execution} no longer waits for approval: ${why}`, { cause: err });
    if (name === 'InvalidToken') {
      // The stored token is not one Step Functions issued: never print it, say where it is.
      throw new Error(
        `Step Functions refused the task token stored in approvals/${record.environment}/${record.execution}.json (InvalidToken): redrive the execution to ask again`,
        { cause: err },
      );
    }
    throw err;
  }
}
