import {
  DescribeExecutionCommand,
  GetExecutionHistoryCommand,
  type ExecutionListItem,
  type ExecutionStatus,
  paginateListExecutions,
} from '@aws-sdk/client-sfn';
import { APPROVAL_STATES } from '../../workflows/definition';
import { ExitCode } from '../exit-codes';
import { durationOf, formatDuration } from '../graph';
import { eprintln, println, type Io } from '../io';
import type { Target } from '../target';

export const EXECUTION_STATUSES = [
  'RUNNING',
  'SUCCEEDED',
  'FAILED',
  'TIMED_OUT',
  'ABORTED',
  'PENDING_REDRIVE',
] as const;

/**
 * Not a Step Functions status: RUNNING executions that wait at AwaitApproval. ListExecutions cannot
 * filter on it, so the listing asks for RUNNING and keeps those whose history ends there.
 */
export const WAITING = 'WAITING';

/** What `--status` accepts (any case): Step Functions' statuses and WAITING. */
export const STATUS_CHOICES = [...EXECUTION_STATUSES, WAITING] as const;

export interface ExecutionsOptions {
  readonly env?: string;
  /** One of STATUS_CHOICES (commander checks the choice). */
  readonly status?: ExecutionStatus | typeof WAITING;
  readonly limit: number;
  readonly json?: boolean;
}

export interface ExecutionSummary {
  readonly name: string;
  readonly executionArn: string;
  readonly status: string;
  readonly environment?: string;
  readonly branches?: Record<string, string>;
  readonly requestedBy?: string;
  readonly startDate?: Date;
  readonly stopDate?: Date;
  readonly redriveCount: number;
  /** RUNNING, and waiting at AwaitApproval for `stepdeploy approve` / `reject`. */
  readonly waitingForApproval?: true;
}

const DESCRIBE_CONCURRENCY = 5;
const [AWAIT_APPROVAL] = APPROVAL_STATES;
/**
 * A running execution's newest events that reach back to the state it is in: AwaitApproval's are
 * entered, scheduled, started, submitted, and a few more when its invoke was retried.
 */
const CURRENT_STATE_EVENTS = 10;
/** ValidateInput's exit is among an execution's first events (started, entered, scheduled, started, succeeded, exited). */
const PLAN_EVENTS = 12;

interface ExecutionInputFields {
  environment?: unknown;
  branches?: unknown;
  requestedBy?: unknown;
}

function parseJson<T>(text: string | undefined): T | undefined {
  try {
    return JSON.parse(text ?? '') as T;
  } catch {
    return undefined;
  }
}

/**
 * The branch of every source as the execution resolved them (ValidateInput's plan): an input that
 * names no branch, or only some, still deployed a branch of each source, and that is what people
 * look for. Undefined when the execution never got past ValidateInput or its history cannot be read.
 */
async function plannedBranches(target: Target, executionArn: string): Promise<Record<string, string> | undefined> {
  try {
    const { events } = await target.sfn.send(new GetExecutionHistoryCommand({ executionArn, maxResults: PLAN_EVENTS }));
    const exited = (events ?? []).find(
      (e) => e.stateExitedEventDetails?.name === 'ValidateInput',
    )?.stateExitedEventDetails;
    const plan = parseJson<{ sources?: Array<{ name?: unknown; branch?: unknown }> }>(exited?.output);
    if (!Array.isArray(plan?.sources)) return undefined;
    const branches = plan.sources
      .filter((s) => typeof s.name === 'string' && typeof s.branch === 'string')
      .map((s) => [s.name as string, s.branch as string]);
    return branches.length > 0 ? Object.fromEntries(branches) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Whether a running execution waits at AwaitApproval: the newest state it entered, from the end of
 * its history (one short call, for RUNNING executions only). The approval records under approvals/
 * would not do: their keys say that an execution asked once, not that it waits now, and their
 * content holds the task token, which operators may not read. False when the history cannot be read.
 */
export async function waitsForApproval(target: Target, executionArn: string): Promise<boolean> {
  try {
    const { events } = await target.sfn.send(
      new GetExecutionHistoryCommand({
        executionArn,
        reverseOrder: true,
        maxResults: CURRENT_STATE_EVENTS,
        includeExecutionData: false,
      }),
    );
    for (const event of events ?? []) {
      if (event.stateExitedEventDetails) return false;
      if (event.stateEnteredEventDetails) return event.stateEnteredEventDetails.name === AWAIT_APPROVAL;
    }
    return false;
  } catch {
    return false;
  }
}

async function summarizeOne(target: Target, item: ExecutionListItem): Promise<ExecutionSummary> {
  const [described, planned, waiting] = await Promise.all([
    target.sfn.send(new DescribeExecutionCommand({ executionArn: item.executionArn })),
    plannedBranches(target, item.executionArn ?? ''),
    item.status === 'RUNNING' ? waitsForApproval(target, item.executionArn ?? '') : false,
  ]);
  // An input that is not JSON is shown without environment and branches.
  const input = parseJson<ExecutionInputFields>(described.input ?? '{}') ?? {};
  const requested =
    input.branches && typeof input.branches === 'object' ? (input.branches as Record<string, string>) : undefined;
  const branches = planned ?? requested;
  return {
    name: item.name ?? '',
    executionArn: item.executionArn ?? '',
    status: item.status ?? '',
    ...(typeof input.environment === 'string' ? { environment: input.environment } : {}),
    ...(branches ? { branches } : {}),
    ...(typeof input.requestedBy === 'string' ? { requestedBy: input.requestedBy } : {}),
    startDate: item.startDate,
    stopDate: item.stopDate,
    redriveCount: item.redriveCount ?? 0,
    ...(waiting ? { waitingForApproval: true as const } : {}),
  };
}

/**
 * The environment lives in each execution's input and the branches in its plan: one DescribeExecution
 * and one short GetExecutionHistory per listed execution, and one more for each RUNNING one
 * (waitsForApproval). One that cannot be described is skipped
 * with a warning: it never hides the others.
 */
async function summarize(
  target: Target,
  items: ReadonlyArray<ExecutionListItem>,
  warn: (message: string) => void,
): Promise<ExecutionSummary[]> {
  const out: ExecutionSummary[] = [];
  for (let i = 0; i < items.length; i += DESCRIBE_CONCURRENCY) {
    const chunk = items.slice(i, i + DESCRIBE_CONCURRENCY);
    const settled = await Promise.allSettled(chunk.map((item) => summarizeOne(target, item)));
    settled.forEach((result, j) => {
      if (result.status === 'fulfilled') out.push(result.value);
      else
        warn(
          `skipped execution ${chunk[j]!.name ?? chunk[j]!.executionArn}: ${(result.reason as Error)?.message ?? String(result.reason)}`,
        );
    });
  }
  return out;
}

export async function listExecutions(
  target: Target,
  options: ExecutionsOptions,
  warn: (message: string) => void = () => undefined,
): Promise<ExecutionSummary[]> {
  const stateMachineArn = await target.stateMachineArn();
  const waiting = options.status === WAITING;
  // Filters that need each execution's summary: a page may hold fewer matches than it has rows.
  const filtered = options.env !== undefined || waiting;
  const found: ExecutionSummary[] = [];
  const pages = paginateListExecutions(
    { client: target.sfn, pageSize: Math.min(100, Math.max(options.limit, 20)) },
    { stateMachineArn, statusFilter: waiting ? 'RUNNING' : options.status },
  );
  for await (const page of pages) {
    const summaries = await summarize(
      target,
      (page.executions ?? []).slice(0, filtered ? undefined : options.limit - found.length),
      warn,
    );
    found.push(
      ...summaries.filter(
        (s) =>
          (options.env === undefined || s.environment === options.env) && (!waiting || s.waitingForApproval === true),
      ),
    );
    if (found.length >= options.limit) break;
  }
  return found.slice(0, options.limit);
}

function when(date: Date | undefined): string {
  return date ? date.toISOString().replace(/\.\d+Z$/, 'Z') : '';
}

export function printExecutions(list: ReadonlyArray<ExecutionSummary>, io: Io, filtered: string): void {
  if (list.length === 0) {
    println(io, `no executions${filtered}`);
    return;
  }
  const rows = list.map((e) => [
    e.name,
    (e.waitingForApproval ? 'waiting for approval' : e.status) +
      (e.redriveCount > 0 ? ` (redriven ${e.redriveCount}x)` : ''),
    e.environment ?? '',
    Object.entries(e.branches ?? {})
      .map(([s, b]) => `${s}=${b}`)
      .join(' ') || '-',
    when(e.startDate),
    formatDuration(durationOf({ startedAt: e.startDate?.getTime(), endedAt: e.stopDate?.getTime() })),
  ]);
  const header = ['NAME', 'STATUS', 'ENV', 'BRANCHES', 'STARTED', 'DURATION'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  for (const row of [header, ...rows])
    println(
      io,
      row
        .map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]!)))
        .join('  ')
        .trimEnd(),
    );
}

export async function runExecutions(target: Target, options: ExecutionsOptions, io: Io): Promise<ExitCode> {
  const list = await listExecutions(target, options, (message) => eprintln(io, `stepdeploy: warning: ${message}`));
  if (options.json) println(io, JSON.stringify(list, null, 2));
  else
    printExecutions(
      list,
      io,
      `${options.env ? ` for ${options.env}` : ''}${
        options.status === WAITING ? ' waiting for approval' : options.status ? ` with status ${options.status}` : ''
      }`,
    );
  return ExitCode.Ok;
}
