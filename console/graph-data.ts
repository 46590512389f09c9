import { buildIdOf, iterationLabel, parse } from '../cli/graph';
import type { StateMachineDefinition } from '../workflows/definition';
import type { GraphEdge, IterationNode, StateRun, StateShape, SubGraph } from './api-types';

/**
 * The execution page's graph data, from the definition and the history events alone (the shapes of
 * DescribeStateMachineForExecution and GetExecutionHistory), so AWS and the local runtime read the
 * same way: the states and transitions of each level, a Map's ItemProcessor nested in it, and each
 * Map iteration's run of its inner states.
 *
 * Which iteration an event belongs to is not in the event: Step Functions chains the events of one
 * iteration through previousEventId from its MapIterationStarted (whose mapIteration*EventDetails
 * give the Map's name and the item's index), so each event takes the place of the event before it.
 */

/** The states of one level and their transitions (Next, Default, Choices, Catch); a Map's ItemProcessor inside it. */
export function graphOf(definition: StateMachineDefinition): SubGraph {
  const nodes: StateShape[] = [];
  const edges: GraphEdge[] = [];
  for (const [name, state] of Object.entries(definition.States)) {
    const s = state as typeof state & { Catch?: Array<{ Next?: string; ErrorEquals?: string[] }> };
    const processor = s.ItemProcessor ?? s.Iterator;
    nodes.push({
      name,
      type: s.Type,
      ...(s.Comment !== undefined ? { comment: s.Comment } : {}),
      end: s.End === true || s.Type === 'Succeed' || s.Type === 'Fail',
      ...(processor ? { inner: graphOf(processor) } : {}),
    });
    if (s.Next) edges.push({ from: name, to: s.Next });
    if (s.Default) edges.push({ from: name, to: s.Default, label: 'default' });
    for (const choice of s.Choices ?? []) if (choice.Next) edges.push({ from: name, to: choice.Next, label: 'choice' });
    for (const c of s.Catch ?? [])
      if (c.Next) edges.push({ from: name, to: c.Next, label: (c.ErrorEquals ?? []).join(', ') });
  }
  return { nodes, edges };
}

/** What the walk needs of a history event: SDK events (Date) and local ones (epoch ms) both fit. */
export interface HistoryEventLike {
  readonly id?: number;
  readonly previousEventId?: number;
  readonly type?: string;
  readonly timestamp?: Date | number;
}

interface Details {
  name?: string;
  index?: number;
  input?: string;
  output?: string;
  error?: string;
  cause?: string;
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

interface Run extends Mutable<Omit<StateRun, 'iterations'>> {
  readonly type: string;
  readonly scope: Scope;
  readonly processor?: StateMachineDefinition;
  iterations: Iteration[];
}

interface Iteration extends Mutable<Omit<IterationNode, 'states'>> {
  readonly scope: Scope;
  readonly map: Run;
}

/** One level's states: the top level, or one iteration's inner states. */
interface Scope {
  readonly states: Map<string, Run>;
  readonly iteration?: Iteration;
}

interface Place {
  readonly scope: Scope;
  readonly state?: Run;
}

const FAILED_TASK: Readonly<Record<string, string>> = {
  TaskFailed: 'FAILED',
  TaskStartFailed: 'FAILED',
  TaskSubmitFailed: 'FAILED',
  TaskTimedOut: 'TIMED_OUT',
};

function scopeOf(definition: StateMachineDefinition, iteration?: Iteration): Scope {
  const states = new Map<string, Run>();
  const scope: Scope = { states, ...(iteration ? { iteration } : {}) };
  for (const [name, state] of Object.entries(definition.States)) {
    const processor = state.ItemProcessor ?? state.Iterator;
    states.set(name, {
      name,
      type: state.Type,
      status: 'PENDING',
      attempts: 0,
      scope,
      iterations: [],
      ...(processor ? { processor } : {}),
    });
  }
  return scope;
}

function millis(t: Date | number | undefined): number | undefined {
  return t instanceof Date ? t.getTime() : t;
}

function detailsOf(event: HistoryEventLike): Details {
  const entry = Object.entries(event).find(([key]) => key.endsWith('EventDetails'));
  return (entry?.[1] ?? {}) as Details;
}

/** The Map named `name` (or, without a name, the nearest Map) at `place` or in a level enclosing it. */
function mapAt(place: Place, name: string | undefined): Run | undefined {
  if (place.state?.processor && (name === undefined || place.state.name === name)) return place.state;
  for (let scope: Scope | undefined = place.scope; scope; scope = scope.iteration?.map.scope) {
    const enclosing = scope.iteration?.map;
    if (enclosing && (name === undefined || enclosing.name === name)) return enclosing;
    const found = name === undefined ? undefined : scope.states.get(name);
    if (found?.processor) return found;
  }
  return undefined;
}

/** A state of this level, or of a level enclosing it (a Map's next state after its iterations). */
function stateAt(scope: Scope, name: string): Run | undefined {
  for (let s: Scope | undefined = scope; s; s = s.iteration?.map.scope) {
    const found = s.states.get(name);
    if (found) return found;
  }
  return undefined;
}

/** Ends what still runs in `map`'s iterations: they were aborted (the Map or the execution ended). */
function abortRunning(map: Run, at: number | undefined): void {
  for (const iteration of map.iterations) {
    if (!iteration) continue;
    if (iteration.status === 'RUNNING') Object.assign(iteration, { status: 'ABORTED', endedAt: at });
    for (const state of iteration.scope.states.values()) {
      if (state.status === 'RUNNING') Object.assign(state, { status: 'ABORTED', endedAt: at });
      abortRunning(state, at);
    }
  }
}

/**
 * Each Map's iterations (Maps at any depth: a Map inside a Map has its iterations per outer
 * iteration), with the run of each inner state. The top-level Maps are keyed by name.
 */
export function mapIterations(
  definition: StateMachineDefinition,
  events: ReadonlyArray<HistoryEventLike>,
): Map<string, IterationNode[]> {
  const top = scopeOf(definition);
  const places = new Map<number, Place>();
  const topPlace: Place = { scope: top };
  for (const event of events) {
    const type = event.type ?? '';
    const at = millis(event.timestamp);
    const details = detailsOf(event);
    const before = (event.previousEventId !== undefined ? places.get(event.previousEventId) : undefined) ?? topPlace;
    let place: Place = before;

    if (type.startsWith('Execution')) {
      place = topPlace;
      if (type === 'ExecutionFailed' || type === 'ExecutionAborted' || type === 'ExecutionTimedOut')
        for (const state of top.states.values()) abortRunning(state, at);
    } else if (type.endsWith('StateEntered') && details.name) {
      const state = stateAt(before.scope, details.name);
      if (state) {
        Object.assign(state, {
          status: 'RUNNING',
          startedAt: at,
          endedAt: undefined,
          attempts: 0,
          error: undefined,
          cause: undefined,
          buildId: undefined,
          input: details.input,
          output: undefined,
          iterations: [],
        });
        const iteration = state.scope.iteration;
        if (iteration) {
          iteration.current = state.name;
          if (iteration.label.startsWith('#')) iteration.label = iterationLabel(parse(details.input), iteration.index);
        }
        place = { scope: state.scope, state };
      }
    } else if (type === 'MapIterationStarted') {
      const map = mapAt(before, details.name);
      if (map?.processor) {
        const index = details.index ?? map.iterations.length;
        const iteration = {
          index,
          label: `#${index}`,
          status: 'RUNNING',
          startedAt: at,
          map,
        } as Omit<Iteration, 'scope'> as Iteration;
        Object.assign(iteration, { scope: scopeOf(map.processor, iteration) });
        map.iterations[index] = iteration;
        place = { scope: iteration.scope };
      }
    } else if (type === 'MapIterationSucceeded' || type === 'MapIterationFailed' || type === 'MapIterationAborted') {
      const inside = before.scope.iteration;
      const map = mapAt(before, details.name);
      const iteration =
        (details.index !== undefined ? map?.iterations[details.index] : undefined) ??
        (inside && inside.map === map ? inside : undefined);
      if (map && iteration) {
        const status =
          type === 'MapIterationSucceeded' ? 'SUCCEEDED' : type === 'MapIterationFailed' ? 'FAILED' : 'ABORTED';
        Object.assign(iteration, { status, endedAt: at });
        if (status !== 'SUCCEEDED')
          for (const state of iteration.scope.states.values()) {
            abortRunning(state, at);
            // The state still running is where the iteration stopped.
            if (state.status === 'RUNNING') Object.assign(state, { status, endedAt: at });
          }
        place = { scope: map.scope, state: map };
      }
    } else if (before.state) {
      const state = before.state;
      if (type === 'MapStateFailed' || type === 'MapStateAborted') {
        abortRunning(state, at);
        Object.assign(state, { status: type === 'MapStateFailed' ? 'FAILED' : 'ABORTED', endedAt: at });
      } else if (type === 'TaskScheduled') {
        Object.assign(state, { status: 'RUNNING', attempts: state.attempts + 1, endedAt: undefined });
      } else if (type === 'TaskSubmitted' || type === 'TaskSucceeded') {
        noteBuild(state, buildIdOf(parse(details.output)));
      } else if (FAILED_TASK[type]) {
        Object.assign(state, { status: FAILED_TASK[type], endedAt: at, error: details.error, cause: details.cause });
        // A failed .sync build puts the Build as JSON in the cause.
        noteBuild(state, buildIdOf(parse(details.cause)));
      } else if (type.endsWith('StateExited')) {
        Object.assign(state, { status: 'SUCCEEDED', endedAt: at, output: details.output });
      }
    }
    if (event.id !== undefined) places.set(event.id, place);
  }
  const out = new Map<string, IterationNode[]>();
  for (const state of top.states.values()) if (state.processor) out.set(state.name, iterationsOf(state));
  return out;
}

function noteBuild(state: Run, buildId: string | undefined): void {
  if (!buildId) return;
  state.buildId = buildId;
  const iteration = state.scope.iteration;
  if (iteration) iteration.buildId = buildId;
}

function iterationsOf(map: Run): IterationNode[] {
  return map.iterations
    .filter((i): i is Iteration => i !== undefined)
    .map(({ scope, map: _map, ...iteration }) => ({
      ...iteration,
      states: [...scope.states.values()].map(runOf),
    }));
}

function runOf(run: Run): StateRun {
  const { scope: _scope, processor: _processor, type: _type, iterations, ...fields } = run;
  return { ...fields, iterations: run.processor ? iterationsOf(run) : [] };
}
