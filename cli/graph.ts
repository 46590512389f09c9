import type { StateMachineDefinition } from '../workflows/definition';

/**
 * The execution graph as people read it: the top-level states of the definition in order, each
 * with status and duration, Map states with one row per iteration (labelled by source or hook).
 * Built only from Step Functions history events (GetExecutionHistory's shape), so it reads an
 * execution on AWS and on the local runtime the same way.
 */

export type StateStatus = 'PENDING' | 'RUNNING' | 'SUCCEEDED' | 'FAILED' | 'TIMED_OUT' | 'ABORTED';

export interface IterationView {
  readonly index: number;
  label: string;
  status: StateStatus;
  startedAt?: number;
  endedAt?: number;
  /** The inner state running now (e.g. FetchSource). */
  current?: string;
  /** CodeBuild build id of the iteration's current or last build. */
  buildId?: string;
}

/** A CodeBuild build an execution ran, in the order the history shows them. */
export interface BuildRef {
  readonly id: string;
  /** The top-level state (e.g. BuildTemplates, FetchSources). */
  readonly state: string;
  /** The Map iteration it ran in (e.g. `app @ main`), if any. */
  readonly iteration?: IterationView;
}

export interface StateView {
  readonly name: string;
  readonly type: string;
  readonly comment?: string;
  status: StateStatus;
  startedAt?: number;
  endedAt?: number;
  attempts: number;
  error?: string;
  cause?: string;
  /** CodeBuild build id of the current or last attempt, from the task's submitted/succeeded output. */
  buildId?: string;
  readonly iterations: IterationView[];
}

/** What the graph needs of a history event: AWS SDK events (Date) and local ones (epoch ms) both fit. */
export interface GraphEvent {
  readonly id?: number;
  readonly previousEventId?: number;
  readonly type?: string;
  readonly timestamp?: Date | number;
  readonly [details: string]: unknown;
}

interface Details {
  name?: string;
  input?: string;
  output?: string;
  index?: number;
  error?: string;
  cause?: string;
}

function millis(t: Date | number | undefined): number {
  if (t instanceof Date) return t.getTime();
  return t ?? Date.now();
}

/** A history event's JSON text (input, output, cause), or undefined when it is not JSON. */
export function parse(text: string | undefined): unknown {
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** `app @ main` for a source item, the hook's name for a hook item, `#index` otherwise. */
export function iterationLabel(input: unknown, index: number): string {
  const item = input as { source?: { name?: unknown; branch?: unknown }; hook?: { name?: unknown } } | undefined;
  const source = item?.source;
  if (typeof source?.name === 'string' && source.name !== '')
    return typeof source.branch === 'string' && source.branch !== ''
      ? `${source.name} @ ${source.branch}`
      : source.name;
  if (typeof item?.hook?.name === 'string' && item.hook.name !== '') return item.hook.name;
  return `#${index}`;
}

/** A CodeBuild task's `{ Build }`, or the Deploy task's Lambda response (`Payload.buildId`). */
export function buildIdOf(output: unknown): string | undefined {
  const { Build, Payload } = (output ?? {}) as { Build?: { Id?: unknown }; Payload?: { buildId?: unknown } };
  if (typeof Build?.Id === 'string') return Build.Id;
  return typeof Payload?.buildId === 'string' ? Payload.buildId : undefined;
}

export class ExecutionGraph {
  readonly states: StateView[];
  /** Every build seen in the history (TaskSubmitted, TaskSucceeded, a failed build's cause). */
  readonly builds: BuildRef[] = [];
  status: StateStatus = 'RUNNING';
  /** How many times the execution was redriven, as far as the history read so far shows. */
  redriveCount = 0;
  error?: string;
  cause?: string;
  startedAt?: number;
  endedAt?: number;
  private readonly byName = new Map<string, StateView>();
  /** Event id → the top-level state and iteration it belongs to. */
  private readonly owner = new Map<number, { state?: StateView; iteration?: IterationView }>();
  private readonly seen = new Set<number>();

  /** The top-level state entered last: a state off the default path is shown after it once entered. */
  private lastEntered?: StateView;

  constructor(private readonly definition: StateMachineDefinition) {
    this.states = [];
    const visited = new Set<string>();
    let name: string | undefined = definition.StartAt;
    while (name !== undefined && !visited.has(name) && definition.States[name]) {
      visited.add(name);
      const state: StateMachineDefinition['States'][string] = definition.States[name]!;
      const view = pendingView(name, state);
      this.states.push(view);
      this.byName.set(name, view);
      // A Choice shows its default path; a branch it takes instead appears when entered (AwaitApproval).
      name = state.End ? undefined : state.Type === 'Choice' ? (state.Default as string | undefined) : state.Next;
    }
  }

  /** A top-level state off the default path, added after the state entered before it. */
  private branchState(name: string): StateView | undefined {
    const state = this.definition.States[name];
    if (!state) return undefined;
    const view = pendingView(name, state);
    const after = this.lastEntered ? this.states.indexOf(this.lastEntered) : -1;
    this.states.splice(after + 1, 0, view);
    this.byName.set(name, view);
    return view;
  }

  state(name: string): StateView | undefined {
    return this.byName.get(name);
  }

  /** Applies events in order; an event seen before (by id) is ignored, so polling can overlap. */
  apply(events: ReadonlyArray<GraphEvent>): void {
    for (const event of events) {
      if (event.id !== undefined) {
        if (this.seen.has(event.id)) continue;
        this.seen.add(event.id);
      }
      this.applyOne(event);
    }
  }

  private applyOne(event: GraphEvent): void {
    const type = event.type ?? '';
    const at = millis(event.timestamp);
    const details = (Object.entries(event).find(([k]) => k.endsWith('EventDetails'))?.[1] ?? {}) as Details;
    const parent = event.previousEventId !== undefined ? this.owner.get(event.previousEventId) : undefined;
    let owner = parent ?? {};

    if (type === 'ExecutionStarted') {
      this.startedAt = at;
    } else if (type === 'ExecutionRedriven') {
      this.redriveCount = (details as { redriveCount?: number }).redriveCount ?? this.redriveCount + 1;
      this.status = 'RUNNING';
      this.error = this.cause = undefined;
      this.endedAt = undefined;
    } else if (type.startsWith('Execution')) {
      this.finish(type, at, details);
    } else if (type.endsWith('StateEntered')) {
      const top =
        details.name && !parent?.iteration
          ? (this.byName.get(details.name) ?? this.branchState(details.name))
          : undefined;
      if (top && !parent?.iteration) {
        this.lastEntered = top;
        owner = { state: top };
        Object.assign(top, {
          status: 'RUNNING',
          startedAt: at,
          endedAt: undefined,
          error: undefined,
          cause: undefined,
        });
        if (top.type === 'Map') top.iterations.length = 0;
      } else if (parent?.iteration) {
        parent.iteration.current = details.name;
        const input = parse(details.input);
        if (parent.iteration.label.startsWith('#'))
          parent.iteration.label = iterationLabel(input, parent.iteration.index);
      }
    } else if (type === 'MapIterationStarted') {
      const map = details.name ? this.byName.get(details.name) : parent?.state;
      if (map) {
        const index = details.index ?? map.iterations.length;
        const iteration: IterationView = { index, label: `#${index}`, status: 'RUNNING', startedAt: at };
        map.iterations[index] = iteration;
        owner = { state: map, iteration };
      }
    } else if (type === 'MapIterationSucceeded' || type === 'MapIterationFailed' || type === 'MapIterationAborted') {
      const map = details.name ? this.byName.get(details.name) : parent?.state;
      const iteration = map?.iterations[details.index ?? -1] ?? parent?.iteration;
      if (iteration) {
        iteration.status =
          type === 'MapIterationSucceeded' ? 'SUCCEEDED' : type === 'MapIterationFailed' ? 'FAILED' : 'ABORTED';
        iteration.endedAt = at;
        iteration.current = undefined;
      }
    } else if (type === 'TaskScheduled' && owner.state && !owner.iteration) {
      owner.state.attempts += 1;
    } else if (type === 'TaskSubmitted' || type === 'TaskSucceeded') {
      this.noteBuild(buildIdOf(parse(details.output)), owner);
    } else if ((type === 'TaskFailed' || type === 'TaskTimedOut') && owner.state) {
      Object.assign(owner.state, { error: details.error, cause: details.cause });
      (owner.iteration ?? owner.state).endedAt = at;
      // A failed .sync build puts the Build as JSON in the cause.
      this.noteBuild(buildIdOf(parse(details.cause)), owner);
    } else if (type.endsWith('StateExited') && owner.state && !owner.iteration) {
      Object.assign(owner.state, { status: 'SUCCEEDED', endedAt: at });
    }
    if (event.id !== undefined) this.owner.set(event.id, owner);
  }

  private noteBuild(buildId: string | undefined, owner: { state?: StateView; iteration?: IterationView }): void {
    if (!buildId || !owner.state) return;
    (owner.iteration ?? owner.state).buildId = buildId;
    if (!this.builds.some((b) => b.id === buildId))
      this.builds.push({ id: buildId, state: owner.state.name, iteration: owner.iteration });
  }

  private finish(type: string, at: number, details: Details): void {
    const status: Record<string, StateStatus> = {
      ExecutionSucceeded: 'SUCCEEDED',
      ExecutionFailed: 'FAILED',
      ExecutionTimedOut: 'TIMED_OUT',
      ExecutionAborted: 'ABORTED',
    };
    this.status = status[type] ?? this.status;
    this.endedAt = at;
    if (details.error !== undefined) this.error = details.error;
    if (details.cause !== undefined) this.cause = details.cause;
    // The state still running is where the execution stopped: it takes the execution's status.
    for (const state of this.states) {
      if (state.status !== 'RUNNING') continue;
      state.status = this.status === 'SUCCEEDED' ? 'SUCCEEDED' : this.status;
      state.endedAt = at;
      state.error ??= this.error;
      state.cause ??= this.cause;
      for (const iteration of state.iterations) {
        if (iteration?.status === 'RUNNING') Object.assign(iteration, { status: 'ABORTED', endedAt: at });
      }
    }
  }
}

export function durationOf(view: { startedAt?: number; endedAt?: number }, now = Date.now()): number | undefined {
  if (view.startedAt === undefined) return undefined;
  return (view.endedAt ?? now) - view.startedAt;
}

export function formatDuration(ms: number | undefined): string {
  if (ms === undefined) return '';
  if (ms < 1000) return `${ms}ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)}s`;
  const minutes = Math.floor(ms / 60_000);
  return `${minutes}m${String(Math.round((ms % 60_000) / 1000)).padStart(2, '0')}s`;
}

/** A state as the graph shows it before the execution reaches it. */
function pendingView(name: string, state: StateMachineDefinition['States'][string]): StateView {
  return { name, type: state.Type, comment: state.Comment, status: 'PENDING', attempts: 0, iterations: [] };
}
