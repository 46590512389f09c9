import { StopBuildCommand, type CodeBuildClient } from '@aws-sdk/client-codebuild';
import { SendTaskFailureCommand, SendTaskSuccessCommand, type SFNClient } from '@aws-sdk/client-sfn';
import type { S3Client } from '@aws-sdk/client-s3';
import type { BuildStateChange, ExecutionStatusChange } from '../shared/eventbridge-events';
import { readLease, releaseLease } from '../deploy/lease';

/**
 * deploy-complete (EventBridge, not a state): ends the Deploy task when its build ends, and gives
 * the environment's lease back — tied to the deploy build's life, not to the execution's, so a
 * failed, stopped or timed-out execution never leaves its environment locked, and never frees it
 * while its deploy build still runs.
 *  - "CodeBuild Build State Change" (deploy project, terminal status): SendTaskSuccess with
 *    `{ Build }` (the shape the .sync integration returns) or SendTaskFailure, then release.
 *  - "Step Functions Execution Status Change" (FAILED, ABORTED, TIMED_OUT): if that execution
 *    still holds a lease, stop its build (whose end then releases it), or release at once.
 * EventBridge may deliver an event twice: a lease that is not this build's is left alone.
 */

export interface DeployCompleteDependencies {
  readonly s3: S3Client;
  readonly sfn: SFNClient;
  readonly codebuild: CodeBuildClient;
  readonly bucket: string;
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
  return event.detail['additional-information'].environment?.['environment-variables'].find((v) => v.name === name)?.value;
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

export async function completeDeployBuild(event: BuildStateChange, deps: DeployCompleteDependencies): Promise<DeployCompleteResult> {
  const status = event.detail['build-status'];
  if (status !== 'SUCCEEDED' && !FAILURE_ERRORS[status]) return { action: 'ignored', reason: `build is ${status}` };
  const environment = variable(event, 'ENVIRONMENT');
  if (!environment) return { action: 'ignored', reason: 'the build has no ENVIRONMENT variable: not a stepdeploy deploy build' };
  const buildId = buildIdOf(event.detail['build-id']);
  const held = await readLease(deps.s3, deps.bucket, environment);
  if (!held || held.value.released || held.value.buildId !== buildId) {
    return { action: 'ignored', reason: `the ${environment} lease is not held by build ${buildId}` };
  }
  const lease = held.value;
  const summary = buildSummary(event, buildId);
  try {
    if (status === 'SUCCEEDED') {
      await deps.sfn.send(new SendTaskSuccessCommand({ taskToken: lease.taskToken, output: summary }));
    } else {
      await deps.sfn.send(new SendTaskFailureCommand({ taskToken: lease.taskToken, error: FAILURE_ERRORS[status], cause: summary }));
    }
  } catch (err) {
    // The task is gone (the execution was stopped or timed out): the lease is still given back.
    console.error(`could not complete the Deploy task of ${lease.execution}: ${(err as Error).name}: ${(err as Error).message}`);
  }
  await releaseLease(deps.s3, deps.bucket, held, status, (deps.now ?? (() => new Date()))());
  return { action: 'completed', environment, execution: lease.execution, status };
}

export async function releaseForEndedExecution(event: ExecutionStatusChange, deps: DeployCompleteDependencies): Promise<DeployCompleteResult> {
  const { status, name } = event.detail;
  if (!['FAILED', 'ABORTED', 'TIMED_OUT'].includes(status)) return { action: 'ignored', reason: `execution is ${status}` };
  let environment: unknown;
  try {
    environment = (JSON.parse(event.detail.input ?? '{}') as { environment?: unknown }).environment;
  } catch {
    environment = undefined;
  }
  if (typeof environment !== 'string' || !/^[a-z][a-z0-9-]{0,29}$/.test(environment)) {
    return { action: 'ignored', reason: 'the execution input names no valid environment' };
  }
  const held = await readLease(deps.s3, deps.bucket, environment);
  if (!held || held.value.released || held.value.execution !== name) {
    return { action: 'ignored', reason: `${name} holds no ${environment} lease` };
  }
  if (held.value.buildId) {
    await deps.codebuild.send(new StopBuildCommand({ id: held.value.buildId }));
    return { action: 'stopped-build', environment, execution: name };
  }
  await releaseLease(deps.s3, deps.bucket, held, `execution ${status}`, (deps.now ?? (() => new Date()))());
  return { action: 'released', environment, execution: name };
}
