import { randomUUID } from 'node:crypto';
import type { Build } from './codebuild';
import type { ExecutionRecord } from './executions';

/**
 * The EventBridge events AWS emits for the pipeline, built from local state so that the same
 * `tasks/notify` handler receives the same shapes locally: "Step Functions Execution Status
 * Change" (source aws.states) and "CodeBuild Build State Change" (source aws.codebuild).
 */

export interface EventBridgeEvent {
  readonly version: '0';
  readonly id: string;
  readonly 'detail-type': string;
  readonly source: string;
  readonly account: string;
  readonly time: string;
  readonly region: string;
  readonly resources: ReadonlyArray<string>;
  readonly detail: Readonly<Record<string, unknown>>;
}

function envelope(
  detailType: string,
  source: string,
  region: string,
  account: string,
  resource: string,
  detail: Record<string, unknown>,
): EventBridgeEvent {
  return {
    version: '0',
    id: randomUUID(),
    'detail-type': detailType,
    source,
    account,
    time: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
    region,
    resources: [resource],
    detail,
  };
}

export function executionStatusChange(execution: ExecutionRecord, region: string, account: string): EventBridgeEvent {
  const redrivable = ['FAILED', 'TIMED_OUT', 'ABORTED'].includes(execution.status);
  return envelope('Step Functions Execution Status Change', 'aws.states', region, account, execution.executionArn, {
    executionArn: execution.executionArn,
    stateMachineArn: execution.stateMachineArn,
    name: execution.name,
    status: execution.status,
    startDate: execution.startDate,
    stopDate: execution.stopDate ?? null,
    input: execution.input,
    inputDetails: { included: true },
    output: execution.output ?? null,
    outputDetails: execution.output === undefined ? null : { included: true },
    error: execution.error ?? null,
    cause: execution.cause ?? null,
    redriveCount: execution.redriveCount,
    ...(execution.redriveDate !== undefined ? { redriveDate: execution.redriveDate } : {}),
    redriveStatus: redrivable ? 'REDRIVABLE' : 'NOT_REDRIVABLE',
  });
}

function iso(ms: number | undefined): string | undefined {
  return ms === undefined ? undefined : new Date(ms).toISOString();
}

export function buildStateChange(build: Build, region: string, account: string): EventBridgeEvent {
  return envelope('CodeBuild Build State Change', 'aws.codebuild', region, account, build.Arn, {
    'build-status': build.BuildStatus,
    'project-name': build.ProjectName,
    'build-id': build.Arn,
    'current-phase': build.CurrentPhase,
    'current-phase-context': '[]',
    version: '1',
    'additional-information': {
      'build-complete': build.BuildComplete,
      initiator: build.Initiator,
      'build-start-time': iso(build.StartTime),
      'source-version': build.SourceVersion,
      source: { type: build.Source.Type, location: build.Source.Location },
      environment: {
        image: build.Environment.Image,
        'privileged-mode': build.Environment.PrivilegedMode,
        'compute-type': build.Environment.ComputeType,
        type: build.Environment.Type,
        'environment-variables': build.Environment.EnvironmentVariables.map((v) => ({
          name: v.Name,
          value: v.Value,
          type: v.Type ?? 'PLAINTEXT',
        })),
      },
      'timeout-in-minutes': build.TimeoutInMinutes,
      logs: {
        'group-name': build.Logs.GroupName,
        'stream-name': build.Logs.StreamName,
        'deep-link': build.Logs.DeepLink,
      },
      phases: build.Phases.map((p) => ({
        'phase-type': p.PhaseType,
        'phase-status': p.PhaseStatus,
        'start-time': iso(p.StartTime),
        'end-time': iso(p.EndTime),
        'duration-in-seconds': p.DurationInSeconds,
        'phase-context': (p.Contexts ?? []).map((c) => `${c.StatusCode}: ${c.Message}`),
      })),
    },
  });
}
