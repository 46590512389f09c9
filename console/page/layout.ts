import dagre from '@dagrejs/dagre';
import type { GraphEdge, IterationNode, StateRun, StateShape, SubGraph } from '../api-types';

/**
 * Where the execution graph's boxes and arrows go, and which Map iteration colours a Map's inner
 * states: plain functions of the graph data (no DOM), so they are tested without a browser.
 *
 * A Map is drawn as the Step Functions console draws it: a box holding its ItemProcessor's states.
 * Each level is laid out by dagre on its own, innermost first, and a Map's box is made as large as
 * its sub-graph; a Choice's ways out are ordinary edges of its level, so they lay out like any other.
 */

export const NODE_WIDTH = 240;
export const NODE_HEIGHT = 44;
/** A Map's name and status, then the row with its iteration chooser and aggregate. */
export const MAP_HEADER = 76;
export const MAP_PADDING = 14;
/** The chooser and the aggregate need this much, whatever the sub-graph. */
const MAP_MIN_WIDTH = 460;

export interface Box {
  readonly x: number;
  readonly y: number;
  readonly width: number;
  readonly height: number;
}

export interface Point {
  readonly x: number;
  readonly y: number;
}

export interface Layout {
  readonly width: number;
  readonly height: number;
  /** Each state's box, by name, in this level's coordinates. */
  readonly boxes: ReadonlyMap<string, Box>;
  readonly edges: ReadonlyArray<{ readonly edge: GraphEdge; readonly points: ReadonlyArray<Point> }>;
  /** A Map's sub-graph and where it starts inside the Map's box. */
  readonly inner: ReadonlyMap<string, { readonly x: number; readonly y: number; readonly layout: Layout }>;
}

export function layout(graph: SubGraph): Layout {
  const inner = new Map<string, { x: number; y: number; layout: Layout }>();
  const g = new dagre.graphlib.Graph({ multigraph: true });
  g.setGraph({ rankdir: 'TB', nodesep: 30, ranksep: 36, marginx: 12, marginy: 12 });
  g.setDefaultEdgeLabel(() => ({}));
  for (const node of graph.nodes) {
    if (!node.inner) {
      g.setNode(node.name, { width: NODE_WIDTH, height: NODE_HEIGHT });
      continue;
    }
    const sub = layout(node.inner);
    const width = Math.max(MAP_MIN_WIDTH, sub.width + 2 * MAP_PADDING);
    inner.set(node.name, { x: (width - sub.width) / 2, y: MAP_HEADER, layout: sub });
    g.setNode(node.name, { width, height: MAP_HEADER + sub.height + MAP_PADDING });
  }
  graph.edges.forEach((edge, i) => {
    if (g.hasNode(edge.from) && g.hasNode(edge.to)) g.setEdge(edge.from, edge.to, {}, `e${i}`);
  });
  dagre.layout(g);
  const boxes = new Map<string, Box>();
  for (const name of g.nodes()) {
    const n = g.node(name);
    boxes.set(name, { x: n.x - n.width / 2, y: n.y - n.height / 2, width: n.width, height: n.height });
  }
  const edges = g.edges().map((e) => ({
    edge: graph.edges[Number((e.name ?? 'e0').slice(1))] as GraphEdge,
    points: g.edge(e).points ?? [],
  }));
  const laid = g.graph();
  return { width: laid.width ?? 0, height: laid.height ?? 0, boxes, edges, inner };
}

/** The graph's shape as a string: the layout is computed again only when it changes. */
export function shapeKey(nodes: ReadonlyArray<StateShape>): string {
  return nodes.map((n) => (n.inner ? `${n.name}{${shapeKey(n.inner.nodes)}}` : n.name)).join(',');
}

const FAILED = new Set(['FAILED', 'TIMED_OUT']);

/** The iteration shown until the user chooses one: the first failed, else the first running, else the first. */
export function defaultIteration(iterations: ReadonlyArray<IterationNode>): IterationNode | undefined {
  return (
    iterations.find((i) => FAILED.has(i.status)) ?? iterations.find((i) => i.status === 'RUNNING') ?? iterations[0]
  );
}

/** `2/3 succeeded · 1 failed`: a Map's iterations by status. */
export function aggregate(iterations: ReadonlyArray<IterationNode>): string {
  if (iterations.length === 0) return 'no iteration yet';
  const counts = new Map<string, number>();
  for (const i of iterations) counts.set(i.status, (counts.get(i.status) ?? 0) + 1);
  const others = [...counts]
    .filter(([status]) => status !== 'SUCCEEDED')
    .map(([status, n]) => `${n} ${status.toLowerCase().replace('_', ' ')}`);
  return [`${counts.get('SUCCEEDED') ?? 0}/${iterations.length} succeeded`, ...others].join(' · ');
}

/** A state on the page: its name and the Maps it sits in, outermost first. */
export interface Selection {
  readonly state: string;
  readonly within?: ReadonlyArray<string>;
}

/** The iteration the user chose per Map, keyed by mapKey. */
export type ChosenIterations = Readonly<Record<string, number>>;

export function mapKey(within: ReadonlyArray<string>, map: string): string {
  return [...within, map].join('/');
}

/** The iteration of this Map whose statuses colour its sub-graph: the chosen one, else the default. */
export function shownIteration(
  run: Pick<StateRun, 'iterations'>,
  key: string,
  chosen: ChosenIterations,
): IterationNode | undefined {
  return run.iterations.find((i) => i.index === chosen[key]) ?? defaultIteration(run.iterations);
}

/** A state of the sub-graph as no iteration ran it (yet). */
export function pendingRun(name: string): StateRun {
  return { name, status: 'PENDING', attempts: 0, iterations: [] };
}

/** The runs of a Map's inner states in its shown iteration (pending ones before any iteration ran). */
export function innerRuns(
  shape: StateShape,
  run: Pick<StateRun, 'iterations'>,
  key: string,
  chosen: ChosenIterations,
): Map<string, StateRun> {
  const iteration = shownIteration(run, key, chosen);
  const runs = new Map<string, StateRun>();
  for (const node of shape.inner?.nodes ?? [])
    runs.set(node.name, iteration?.states.find((s) => s.name === node.name) ?? pendingRun(node.name));
  return runs;
}

export interface Selected {
  readonly shape: StateShape;
  readonly run: StateRun;
  /** The enclosing Maps and their shown iterations: `FetchSources`, `app @ main`. */
  readonly trail: ReadonlyArray<string>;
}

/** The shape and run a selection points at, through the shown iteration of each Map it sits in. */
export function selectedRun(
  nodes: ReadonlyArray<StateShape & StateRun>,
  selection: Selection,
  chosen: ChosenIterations,
): Selected | undefined {
  let shapes: ReadonlyArray<StateShape> = nodes;
  let runs = new Map<string, StateRun>(nodes.map((n) => [n.name, n]));
  const trail: string[] = [];
  const within: string[] = [];
  const path = [...(selection.within ?? []), selection.state];
  for (const [i, name] of path.entries()) {
    const shape = shapes.find((s) => s.name === name);
    const run = runs.get(name);
    if (!shape || !run) return undefined;
    if (i === path.length - 1) return { shape, run, trail };
    const key = mapKey(within, name);
    trail.push(name, shownIteration(run, key, chosen)?.label ?? 'no iteration yet');
    runs = innerRuns(shape, run, key, chosen);
    shapes = shape.inner?.nodes ?? [];
    within.push(name);
  }
  return undefined;
}

/**
 * What the details show until the user selects a state: the state that failed, else the one running,
 * looked for inside a Map's shown iteration too, so a failed source shows its own error and build.
 */
export function defaultSelection(
  nodes: ReadonlyArray<StateShape & StateRun>,
  chosen: ChosenIterations,
): Selection | undefined {
  const pick = (shapes: ReadonlyArray<StateShape>, runs: ReadonlyMap<string, StateRun>) =>
    shapes.find((s) => FAILED.has(runs.get(s.name)?.status ?? '')) ??
    shapes.find((s) => runs.get(s.name)?.status === 'RUNNING');
  let runs: ReadonlyMap<string, StateRun> = new Map(nodes.map((n) => [n.name, n]));
  let shape = pick(nodes, runs);
  if (!shape) return undefined;
  let selection: Selection = { state: shape.name };
  const within: string[] = [];
  while (shape.inner) {
    const run = runs.get(shape.name) ?? pendingRun(shape.name);
    runs = innerRuns(shape, run, mapKey(within, shape.name), chosen);
    const next: StateShape | undefined = pick(shape.inner.nodes, runs);
    if (!next) break;
    within.push(shape.name);
    selection = { state: next.name, within: [...within] };
    shape = next;
  }
  return selection;
}
