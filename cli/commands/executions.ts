import { DescribeExecutionCommand, ListExecutionsCommand, type ExecutionListItem, type ExecutionStatus } from '@aws-sdk/client-sfn';
import { usageError } from '../errors';
import { ExitCode } from '../exit-codes';
import { durationOf, formatDuration } from '../graph';
import { println, type Io } from '../io';
import type { Target } from '../target';

export const EXECUTION_STATUSES = ['RUNNING', 'SUCCEEDED', 'FAILED', 'TIMED_OUT', 'ABORTED', 'PENDING_REDRIVE'] as const;

export interface ExecutionsOptions {
  readonly env?: string;
  readonly status?: string;
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
}

export function parseStatus(value: string | undefined): ExecutionStatus | undefined {
  if (value === undefined) return undefined;
  const upper = value.toUpperCase();
  if ((EXECUTION_STATUSES as ReadonlyArray<string>).includes(upper)) return upper as ExecutionStatus;
  throw usageError(`--status ${JSON.stringify(value)} is not an execution status: use one of ${EXECUTION_STATUSES.join(', ')}`);
}

const DESCRIBE_CONCURRENCY = 5;

/** The environment and branches live in each execution's input: one DescribeExecution per listed execution. */
async function summarize(target: Target, items: ReadonlyArray<ExecutionListItem>): Promise<ExecutionSummary[]> {
  const out: ExecutionSummary[] = [];
  for (let i = 0; i < items.length; i += DESCRIBE_CONCURRENCY) {
    const chunk = items.slice(i, i + DESCRIBE_CONCURRENCY);
    const described = await Promise.all(chunk.map((item) => target.sfn.send(new DescribeExecutionCommand({ executionArn: item.executionArn }))));
    chunk.forEach((item, j) => {
      let input: { environment?: unknown; branches?: unknown; requestedBy?: unknown } = {};
      try {
        input = JSON.parse(described[j]!.input ?? '{}') as typeof input;
      } catch {
        // an input that is not JSON is shown without environment and branches
      }
      out.push({
        name: item.name ?? '',
        executionArn: item.executionArn ?? '',
        status: item.status ?? '',
        ...(typeof input.environment === 'string' ? { environment: input.environment } : {}),
        ...(input.branches && typeof input.branches === 'object' ? { branches: input.branches as Record<string, string> } : {}),
        ...(typeof input.requestedBy === 'string' ? { requestedBy: input.requestedBy } : {}),
        startDate: item.startDate,
        stopDate: item.stopDate,
        redriveCount: item.redriveCount ?? 0,
      });
    });
  }
  return out;
}

export async function listExecutions(target: Target, options: ExecutionsOptions): Promise<ExecutionSummary[]> {
  const stateMachineArn = await target.stateMachineArn();
  const statusFilter = parseStatus(options.status);
  const found: ExecutionSummary[] = [];
  let nextToken: string | undefined;
  do {
    const page = await target.sfn.send(new ListExecutionsCommand({ stateMachineArn, statusFilter, maxResults: Math.min(100, Math.max(options.limit, 20)), nextToken }));
    const summaries = await summarize(target, (page.executions ?? []).slice(0, options.env ? undefined : options.limit - found.length));
    found.push(...summaries.filter((s) => options.env === undefined || s.environment === options.env));
    nextToken = page.nextToken;
  } while (nextToken && found.length < options.limit);
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
    e.status + (e.redriveCount > 0 ? ` (redriven ${e.redriveCount}x)` : ''),
    e.environment ?? '',
    Object.entries(e.branches ?? {}).map(([s, b]) => `${s}=${b}`).join(' ') || '(defaults)',
    when(e.startDate),
    formatDuration(durationOf({ startedAt: e.startDate?.getTime(), endedAt: e.stopDate?.getTime() })),
  ]);
  const header = ['NAME', 'STATUS', 'ENV', 'BRANCHES', 'STARTED', 'DURATION'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  for (const row of [header, ...rows]) println(io, row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  ').trimEnd());
}

export async function runExecutions(target: Target, options: ExecutionsOptions, io: Io): Promise<ExitCode> {
  const list = await listExecutions(target, options);
  if (options.json) println(io, JSON.stringify(list, null, 2));
  else printExecutions(list, io, `${options.env ? ` for ${options.env}` : ''}${options.status ? ` with status ${options.status.toUpperCase()}` : ''}`);
  return ExitCode.Ok;
}
