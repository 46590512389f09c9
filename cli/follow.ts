import { BatchGetBuildsCommand, type Build } from '@aws-sdk/client-codebuild';
import {
  DescribeStateMachineForExecutionCommand,
  type HistoryEvent,
  paginateGetExecutionHistory,
} from '@aws-sdk/client-sfn';
import { allStates, type StateMachineDefinition } from '../workflows/definition';
import type { ExecutionGraph, GraphEvent, StateView } from './graph';
import type { Target } from './target';

/**
 * Follows one execution through the Step Functions API: new history events (polled, a page at
 * a time) and, while a CodeBuild step runs, its build (BatchGetBuilds). The same calls on AWS
 * and on the local runtime; the caller decides how to show each update.
 */

const CODEBUILD_SYNC = /:codebuild:startBuild\.sync$/;
const TERMINAL = new Set(['SUCCEEDED', 'FAILED', 'TIMED_OUT', 'ABORTED']);

/** A build running for a state of the execution, as BatchGetBuilds tells it. */
export interface RunningBuild {
  readonly id: string;
  /** The top-level state it runs for. */
  readonly state: string;
  readonly projectName: string;
  readonly buildNumber?: number;
  readonly phase: string;
  readonly status: string;
  /** The console/log deep link (a file:// URL on the local runtime). */
  readonly logLink?: string;
}

export interface FollowUpdate {
  /** Events new since the last update, oldest first. */
  readonly events: ReadonlyArray<HistoryEvent>;
  readonly builds: ReadonlyArray<RunningBuild>;
}

/** The definition this execution runs (not the state machine's latest): the graph is drawn from it. */
export async function executionDefinition(target: Target, executionArn: string): Promise<StateMachineDefinition> {
  const { definition } = await target.sfn.send(new DescribeStateMachineForExecutionCommand({ executionArn }));
  return JSON.parse(definition ?? '{}') as StateMachineDefinition;
}

/** Every history event, oldest first (all pages). */
export async function fullHistory(target: Target, executionArn: string): Promise<HistoryEvent[]> {
  const events: HistoryEvent[] = [];
  const pages = paginateGetExecutionHistory(
    { client: target.sfn, pageSize: 1000 },
    { executionArn, includeExecutionData: true },
  );
  for await (const page of pages) events.push(...(page.events ?? []));
  return events;
}

/**
 * Events after `lastId`, oldest first: reads newest first and stops at a known event, so a
 * long-running execution costs one small call per poll, not its whole history.
 */
export async function eventsAfter(target: Target, executionArn: string, lastId: number): Promise<HistoryEvent[]> {
  const fresh: HistoryEvent[] = [];
  const pages = paginateGetExecutionHistory(
    { client: target.sfn, pageSize: lastId === 0 ? 1000 : 100 },
    { executionArn, includeExecutionData: true, reverseOrder: true },
  );
  for await (const page of pages) {
    for (const event of page.events ?? []) {
      if ((event.id ?? 0) <= lastId) return fresh.reverse();
      fresh.push(event);
    }
  }
  return fresh.reverse();
}

export function toGraphEvents(events: ReadonlyArray<HistoryEvent>): GraphEvent[] {
  return events as unknown as GraphEvent[];
}

export function isTerminal(status: string): boolean {
  return TERMINAL.has(status);
}

export interface FollowOptions {
  readonly onUpdate: (update: FollowUpdate) => void;
  /** Do not stop before the history shows this many redrives (right after RedriveExecution). */
  readonly minRedriveCount?: number;
  readonly signal?: AbortSignal;
  /** @default the target's poll interval */
  readonly pollMs?: number;
}

/** Polls until the execution is terminal (or the signal aborts); returns the final graph. */
export async function follow(
  target: Target,
  executionArn: string,
  graph: ExecutionGraph,
  definition: StateMachineDefinition,
  options: FollowOptions,
): Promise<ExecutionGraph> {
  const projects = projectStates(definition);
  let lastId = 0;
  for (;;) {
    const events = await eventsAfter(target, executionArn, lastId);
    graph.apply(toGraphEvents(events));
    lastId = events.reduce((max, e) => Math.max(max, e.id ?? 0), lastId);
    const done = isTerminal(graph.status) && graph.redriveCount >= (options.minRedriveCount ?? 0);
    const builds = done ? [] : await runningBuilds(target, graph, projects);
    options.onUpdate({ events, builds });
    if (done || options.signal?.aborted) return graph;
    await sleep(options.pollMs ?? target.pollMs, options.signal);
  }
}

/** Project name → the top-level state whose Task (or whose Map's inner Task) runs it. */
export function projectStates(definition: StateMachineDefinition): Map<string, string> {
  const map = new Map<string, string>();
  for (const { name, state, parents } of allStates(definition)) {
    const project = (state.Parameters as { ProjectName?: unknown } | undefined)?.ProjectName;
    if (state.Type === 'Task' && CODEBUILD_SYNC.test(state.Resource ?? '') && typeof project === 'string')
      map.set(project, parents[0] ?? name);
  }
  return map;
}

function runningIds(graph: ExecutionGraph): Map<string, string> {
  const ids = new Map<string, string>();
  const add = (state: StateView): void => {
    if (state.status !== 'RUNNING') return;
    if (state.buildId && state.type === 'Task') ids.set(state.buildId, state.name);
    for (const iteration of state.iterations)
      if (iteration?.status === 'RUNNING' && iteration.buildId) ids.set(iteration.buildId, state.name);
  };
  graph.states.forEach(add);
  return ids;
}

/** Builds named in the history (TaskSubmitted, as on AWS) of the states running now. */
async function runningBuilds(
  target: Target,
  graph: ExecutionGraph,
  projects: ReadonlyMap<string, string>,
): Promise<RunningBuild[]> {
  const ids = runningIds(graph);
  if (ids.size === 0) return [];
  const { builds } = await target.codebuild.send(new BatchGetBuildsCommand({ ids: [...ids.keys()].slice(0, 100) }));
  return (builds ?? [])
    .filter((b) => b.buildStatus === 'IN_PROGRESS')
    .map((b) => runningBuild(b, ids.get(b.id ?? '') || projects.get(b.projectName ?? '') || ''));
}

function runningBuild(build: Build, state: string): RunningBuild {
  return {
    id: build.id ?? '',
    state,
    projectName: build.projectName ?? '',
    buildNumber: build.buildNumber,
    phase: build.currentPhase ?? 'SUBMITTED',
    status: build.buildStatus ?? 'IN_PROGRESS',
    logLink: build.logs?.deepLink,
  };
}

/** Waits `ms`, or less when `signal` aborts (it resolves then: the caller sees the abort itself). */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((done) => {
    const timer = setTimeout(finish, ms);
    function finish(): void {
      clearTimeout(timer);
      signal?.removeEventListener('abort', finish);
      done();
    }
    signal?.addEventListener('abort', finish, { once: true });
  });
}
