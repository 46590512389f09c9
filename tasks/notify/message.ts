import { z } from 'zod';
import type { BuildStateChange, ExecutionStatusChange } from '../shared/eventbridge-events';
import { describeCause } from '../../shared/describe-cause';

/** One source as a message shows it: `branch@shortsha`, or just the branch before it is fetched. */
export interface SourceRef {
  readonly name: string;
  readonly branch: string;
  readonly commit?: string;
}

/** What the failed-run lookup (execution history) can add to an execution event. */
export interface ExecutionHistorySummary {
  /** The state the execution was in when it stopped. */
  readonly lastState?: string;
  /** FetchSources' output, when the execution got that far. */
  readonly fetched?: ReadonlyArray<SourceRef>;
}

/** Everything a notification says, before it is formatted for Slack or a terminal. */
export interface Notification {
  readonly environment?: string;
  readonly execution: string;
  readonly status: string;
  /** The state (or the state a build belongs to). */
  readonly step?: string;
  readonly sources: ReadonlyArray<SourceRef>;
  readonly durationMs?: number;
  readonly link?: { readonly url: string; readonly label: string };
  readonly requestedBy?: string;
  /** `error: cause`, shortened. */
  readonly error?: string;
}

/**
 * Which events make a message, and why:
 * - execution RUNNING (a deployment started, or was redriven) and every terminal status: the
 *   execution is the deployment, so these are the messages people act on;
 * - execution PENDING_REDRIVE: skipped, the RUNNING event that follows says it;
 * - build FAILED only: the execution's FAILED message follows anyway, but only the build event
 *   carries the link to the build's logs, which is where the reason is. IN_PROGRESS and
 *   SUCCEEDED repeat what the execution events say; STOPPED happens when the execution is
 *   aborted or timed out (Step Functions stops its build), which that execution event reports.
 */
export const NOTIFIED_EXECUTION_STATUSES = new Set(['RUNNING', 'SUCCEEDED', 'FAILED', 'TIMED_OUT', 'ABORTED']);
export const NOTIFIED_BUILD_STATUSES = new Set(['FAILED']);

const sourceRefSchema = z.object({ name: z.string(), branch: z.string(), commit: z.string().optional() });

/** The parts of the execution's input and output (the pipeline's state) a message uses. */
const executionDataSchema = z.looseObject({
  environment: z.string().optional(),
  requestedBy: z.string().nullish(),
  branches: z.record(z.string(), z.string()).optional(),
  fetched: z.array(sourceRefSchema).optional(),
});
type ExecutionData = z.infer<typeof executionDataSchema>;

function parseData(json: string | null | undefined): ExecutionData {
  if (!json) return {};
  try {
    const parsed = executionDataSchema.safeParse(JSON.parse(json));
    return parsed.success ? parsed.data : {};
  } catch {
    return {};
  }
}

/** The FetchSources output inside any state's JSON (every state after it carries `fetched`). */
export function fetchedIn(json: string | undefined): ReadonlyArray<SourceRef> | undefined {
  return parseData(json).fetched;
}

export function consoleLink(executionArn: string): string {
  const region = executionArn.split(':')[3] ?? '';
  return `https://${region}.console.aws.amazon.com/states/home?region=${region}#/v2/executions/details/${executionArn}`;
}

const MAX_ERROR = 300;

function shorten(text: string): string {
  return text.length > MAX_ERROR ? `${text.slice(0, MAX_ERROR - 1)}…` : text;
}

function errorText(error: string | null | undefined, cause: string | null | undefined): string | undefined {
  const text = [error, cause ? describeCause(cause) : cause].filter((part) => part).join(': ');
  return text === '' ? undefined : shorten(text);
}

export function describeExecution(event: ExecutionStatusChange, history: ExecutionHistorySummary = {}): Notification {
  const { detail } = event;
  const input = parseData(detail.input);
  const output = parseData(detail.output);
  const requested = Object.entries(input.branches ?? {}).map(([name, branch]) => ({ name, branch }));
  const redriven = detail.status === 'RUNNING' && (detail.redriveCount ?? 0) > 0;
  return {
    environment: output.environment ?? input.environment,
    execution: detail.name,
    status: redriven ? 'REDRIVEN' : detail.status,
    step: detail.status === 'SUCCEEDED' || detail.status === 'RUNNING' ? undefined : history.lastState,
    sources: output.fetched ?? history.fetched ?? requested,
    durationMs: detail.stopDate ? detail.stopDate - detail.startDate : undefined,
    link: { url: consoleLink(detail.executionArn), label: 'Open in the Step Functions console' },
    requestedBy: (output.requestedBy ?? input.requestedBy) || undefined,
    error: errorText(detail.error, detail.cause),
  };
}

/** `feature_flags` back to the source name `feature-flags` (combine-sources upper-cases it). */
function sourceName(suffix: string): string {
  return suffix.toLowerCase().replace(/_/g, '-');
}

/**
 * The state a build belongs to, told by the variables each state sets (the ASL and
 * combine-sources), so it does not depend on how the projects are named.
 */
function stateOf(variables: ReadonlyMap<string, string>): string | undefined {
  if (variables.has('STEPDEPLOY_SOURCE')) return 'FetchSource';
  if (variables.has('STEPDEPLOY_DEPLOY_ROLE_ARN')) return 'Deploy';
  if (variables.has('ENVIRONMENT')) return 'BuildTemplates';
  return undefined;
}

function buildSources(variables: ReadonlyMap<string, string>): SourceRef[] {
  const fetching = variables.get('STEPDEPLOY_SOURCE');
  if (fetching !== undefined) return [{ name: fetching, branch: variables.get('STEPDEPLOY_BRANCH') ?? '?' }];
  const sources: SourceRef[] = [];
  for (const [name, commit] of variables) {
    const suffix = /^STEPDEPLOY_COMMIT_(.+)$/.exec(name)?.[1];
    if (suffix === undefined) continue;
    sources.push({ name: sourceName(suffix), branch: variables.get(`STEPDEPLOY_BRANCH_${suffix}`) ?? '?', commit });
  }
  return sources;
}

/** "BUILD FAILED: COMMAND_EXECUTION_ERROR: ..." from the phase that did not succeed. */
function failedPhase(phases: BuildStateChange['detail']['additional-information']['phases']): string | undefined {
  const failed = phases.find((p) => p['phase-status'] !== undefined && p['phase-status'] !== 'SUCCEEDED');
  if (failed === undefined) return undefined;
  const context = (failed['phase-context'] ?? []).filter((c) => c.trim() !== '' && c !== ': ');
  return shorten([`${failed['phase-type']} ${failed['phase-status']}`, ...context].join(': '));
}

export function describeBuild(event: BuildStateChange): Notification {
  const { detail, time } = event;
  const info = detail['additional-information'];
  const variables = new Map((info.environment?.['environment-variables'] ?? []).map((v) => [v.name, v.value]));
  // CodeBuild writes "Mar 1, 2025 10:16:02 AM" without a zone; it is UTC.
  const started = Date.parse(`${info['build-start-time'] ?? ''} UTC`);
  const ended = Date.parse(time);
  return {
    environment: variables.get('ENVIRONMENT'),
    execution: variables.get('STEPDEPLOY_EXECUTION') ?? detail['build-id'],
    status: detail['build-status'],
    step: stateOf(variables) ?? detail['project-name'],
    sources: buildSources(variables),
    durationMs: Number.isNaN(started) || Number.isNaN(ended) ? undefined : ended - started,
    link: info.logs?.['deep-link'] ? { url: info.logs['deep-link'], label: 'Build logs' } : undefined,
    requestedBy: variables.get('STEPDEPLOY_REQUESTED_BY'),
    error: failedPhase(info.phases),
  };
}
