import { StopBuildCommand, type CodeBuildClient } from '@aws-sdk/client-codebuild';
import { SendTaskFailureCommand, SendTaskSuccessCommand, type SFNClient } from '@aws-sdk/client-sfn';
import type { S3Client } from '@aws-sdk/client-s3';
import type { BuildStateChange, ExecutionStatusChange } from '../shared/eventbridge-events';
import { readLease, releaseLease, type DeployLease } from '../deploy/lease';
import { findLeaseBuild, LEASE_ID_VARIABLE } from '../deploy/lease-builds';

/**
 * deploy-complete (EventBridge, not a state): ends the Deploy task when its build ends, and gives
 * the environment's lease back — tied to the deploy build's life, not to the execution's, so a
 * failed, stopped or timed-out execution never leaves its environment locked, and never frees it
 * while its deploy build still runs.
 *  - "CodeBuild Build State Change" (deploy project, terminal status): SendTaskSuccess with
 *    `{ Build }` (the shape the .sync integration returns) or SendTaskFailure, then release.
 *    Its build is the lease's recorded build, or the build carrying the lease's id (STEPDEPLOY_LEASE_ID)
 *    when Deploy stopped before recording it. SendTask is retried until it succeeds or the task is gone.
 *  - "Step Functions Execution Status Change" (FAILED, ABORTED, TIMED_OUT): if that run of that
 *    execution still holds the lease, give it back and stop its build.
 * EventBridge may deliver an event twice, or late: a lease that is not this build's or this run's is left alone.
 */

export interface DeployCompleteDependencies {
  readonly s3: S3Client;
  readonly sfn: SFNClient;
  readonly codebuild: CodeBuildClient;
  readonly bucket: string;
  /** The deploy project, whose builds are looked up by lease id. */
  readonly projectName: string;
  /** Milliseconds before the first retry of a SendTask call (doubled each time). @default 200 */
  readonly retryDelayMs?: number;
  /** @default () => new Date() */
  readonly now?: () => Date;
}

export type DeployCompleteResult =
  | { readonly action: 'completed'; readonly environment: string; readonly execution: string; readonly status: string }
  | { readonly action: 'stopped-build' | 'released'; readonly environment: string; readonly execution: string }
  | { readonly action: 'ignored'; readonly reason: string };

/** The Deploy state's error for each way a deploy build can end badly (never retried: a real deploy failure). */
const FAILURE_ERRORS: Readonly<Record<string, string>> = {
  FAILED: 'DeployBuildFailed',
  FAULT: 'DeployBuildFault',
  STOPPED: 'DeployBuildStopped',
  TIMED_OUT: 'DeployBuildTimedOut',
};

/** `arn:aws:codebuild:<region>:<account>:build/<project>:<uuid>` → `<project>:<uuid>`. */
export function buildIdOf(buildArnOrId: string): string {
  const at = buildArnOrId.indexOf(':build/');
  return at === -1 ? buildArnOrId : buildArnOrId.slice(at + ':build/'.length);
}

function variable(event: BuildStateChange, name: string): string | undefined {
  return event.detail['additional-information'].environment?.['environment-variables'].find((v) => v.name === name)
    ?.value;
}

/** The failure as the CLI and notify read a .sync build failure: `{ Build: { Id, BuildStatus, Phases, Logs } }`. */
function buildSummary(event: BuildStateChange, buildId: string): string {
  const info = event.detail['additional-information'];
  return JSON.stringify({
    Build: {
      Id: buildId,
      Arn: event.detail['build-id'],
      BuildStatus: event.detail['build-status'],
      ProjectName: event.detail['project-name'],
      Phases: info.phases.map((p) => ({
        PhaseType: p['phase-type'],
        PhaseStatus: p['phase-status'],
        Contexts: (p['phase-context'] ?? []).filter((c) => c && c !== ': ').map((message) => ({ Message: message })),
      })),
      Logs: { DeepLink: info.logs?.['deep-link'] },
    },
  });
}

/** SendTask errors that say the task is gone (its execution ended, or its task was already completed): nothing to retry. */
const TASK_GONE = new Set(['TaskDoesNotExist', 'TaskTimedOut', 'InvalidToken']);
const SEND_ATTEMPTS = 4;

/**
 * Hands the build's end to the Deploy task. An error other than "the task is gone" (throttling,
 * a 5xx, a network error after the SDK's own retries) is tried again, then thrown: the lease is
 * then not given back, and the event is delivered again (EventBridge → Lambda retries, then the
 * dead-letter queue), so a success is never lost while the lease looks handled.
 */
async function sendTaskResult(
  deps: DeployCompleteDependencies,
  send: () => Promise<unknown>,
  execution: string,
): Promise<void> {
  for (let attempt = 1; ; attempt += 1) {
    try {
      await send();
      return;
    } catch (err) {
      const name = (err as Error).name;
      if (TASK_GONE.has(name)) {
        console.error(
          `the Deploy task of ${execution} is gone (${name}: ${(err as Error).message}); the lease is given back`,
        );
        return;
      }
      if (attempt >= SEND_ATTEMPTS) throw err;
      await new Promise((resolve) => setTimeout(resolve, (deps.retryDelayMs ?? 200) * 2 ** (attempt - 1)));
    }
  }
}

export async function completeDeployBuild(
  event: BuildStateChange,
  deps: DeployCompleteDependencies,
): Promise<DeployCompleteResult> {
  const status = event.detail['build-status'];
  if (status !== 'SUCCEEDED' && !FAILURE_ERRORS[status]) return { action: 'ignored', reason: `build is ${status}` };
  const environment = variable(event, 'ENVIRONMENT');
  if (!environment)
    return { action: 'ignored', reason: 'the build has no ENVIRONMENT variable: not a stepdeploy deploy build' };
  const buildId = buildIdOf(event.detail['build-id']);
  const leaseId = variable(event, LEASE_ID_VARIABLE);
  const held = await readLease(deps.s3, deps.bucket, environment);
  // The build of this take of the lease: recorded, or — its id not written yet — carrying its lease id.
  const ours = (lease: DeployLease): boolean =>
    !lease.released &&
    (lease.buildId === buildId || (!lease.buildId && leaseId !== undefined && lease.leaseId === leaseId));
  if (!held || !ours(held.value)) {
    return { action: 'ignored', reason: `the ${environment} lease is not held by build ${buildId}` };
  }
  const lease = held.value;
  const summary = buildSummary(event, buildId);
  await sendTaskResult(
    deps,
    () =>
      status === 'SUCCEEDED'
        ? deps.sfn.send(new SendTaskSuccessCommand({ taskToken: lease.taskToken, output: summary }))
        : deps.sfn.send(
            new SendTaskFailureCommand({ taskToken: lease.taskToken, error: FAILURE_ERRORS[status], cause: summary }),
          ),
    lease.execution,
  );
  await releaseLease(deps.s3, deps.bucket, held, status, (deps.now ?? (() => new Date()))());
  return { action: 'completed', environment, execution: lease.execution, status };
}

/**
 * An execution that failed, was stopped or timed out gives its lease back and its deploy build is
 * stopped: given back first, so that a build not started yet exits at its fence, then its build
 * (recorded, or found by lease id) stopped; a takeover waits until that build has ended. Only the
 * lease of the run that ended: a late event of an earlier run leaves a redriven run's lease alone
 * (the event's redriveCount against the lease's).
 */
export async function releaseForEndedExecution(
  event: ExecutionStatusChange,
  deps: DeployCompleteDependencies,
): Promise<DeployCompleteResult> {
  const { status, name } = event.detail;
  if (!['FAILED', 'ABORTED', 'TIMED_OUT'].includes(status))
    return { action: 'ignored', reason: `execution is ${status}` };
  let environment: unknown;
  try {
    environment = (JSON.parse(event.detail.input ?? '{}') as { environment?: unknown }).environment;
  } catch {
    environment = undefined;
  }
  if (typeof environment !== 'string' || !/^[a-z][a-z0-9-]{0,29}$/.test(environment)) {
    return { action: 'ignored', reason: 'the execution input names no valid environment' };
  }
  const run = event.detail.redriveCount ?? 0;
  const held = await readLease(deps.s3, deps.bucket, environment);
  if (!held || held.value.execution !== name) {
    return { action: 'ignored', reason: `${name} holds no ${environment} lease` };
  }
  if ((held.value.redriveCount ?? 0) !== run) {
    return {
      action: 'ignored',
      reason: `the ${environment} lease is held by run ${held.value.redriveCount ?? 0} of ${name}; this event ended run ${run}`,
    };
  }
  // Already given back (its build ended, or a first delivery of this event): still make sure no build of it runs.
  if (!held.value.released)
    await releaseLease(deps.s3, deps.bucket, held, `execution ${status}`, (deps.now ?? (() => new Date()))());
  const build = await findLeaseBuild(deps.codebuild, deps.projectName, held.value);
  if (build && !build.complete) {
    await deps.codebuild.send(new StopBuildCommand({ id: build.id }));
    return { action: 'stopped-build', environment, execution: name };
  }
  return { action: 'released', environment, execution: name };
}
