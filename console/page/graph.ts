import { html } from 'htm/preact';
import type { GraphNode, StateRun, StateShape } from '../api-types';
import { durationBetween } from './format';
import {
  aggregate,
  type ChosenIterations,
  innerRuns,
  type Layout,
  mapKey,
  pendingRun,
  type Point,
  type Selection,
  shownIteration,
} from './layout';

/**
 * The execution's definition as a graph, drawn as SVG where layout.ts put it. Each state is coloured
 * by its status; a Map holds its ItemProcessor's states, coloured by one iteration, which the user
 * chooses in the Map's box (one per source or hook). Every label is a text node: names and labels
 * from the execution stay text.
 */

interface Handlers {
  readonly selected?: Selection;
  readonly chosen: ChosenIterations;
  readonly onSelect: (selection: Selection) => void;
  readonly onChoose: (key: string, index: number) => void;
}

function path(points: ReadonlyArray<Point>): string {
  return points.map((p, i) => `${i === 0 ? 'M' : 'L'}${p.x.toFixed(1)},${p.y.toFixed(1)}`).join(' ');
}

function sameWithin(a: ReadonlyArray<string> | undefined, b: ReadonlyArray<string>): boolean {
  const left = a ?? [];
  return left.length === b.length && left.every((name, i) => name === b[i]);
}

export function Graph(props: Handlers & { nodes: ReadonlyArray<GraphNode>; layout: Layout }) {
  const { nodes, layout: laid } = props;
  return html`<svg
    class="graph"
    viewBox=${`0 0 ${laid.width} ${laid.height}`}
    width=${laid.width}
    height=${laid.height}
    role="img"
    aria-label="execution graph"
  >
    <defs>
      <marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto">
        <path d="M0,0 L10,5 L0,10 z" class="arrow" />
      </marker>
    </defs>
    <${Level} ...${props} shapes=${nodes} runs=${new Map(nodes.map((n) => [n.name, n]))} layout=${laid} within=${[]} />
  </svg>`;
}

/** One level of the graph: the top level, or a Map's sub-graph as its shown iteration ran it. */
function Level(
  props: Handlers & {
    shapes: ReadonlyArray<StateShape>;
    runs: ReadonlyMap<string, StateRun>;
    layout: Layout;
    within: ReadonlyArray<string>;
  },
) {
  const { shapes, runs, layout: laid, within, selected, onSelect } = props;
  return html`
    ${laid.edges.map(
      ({ edge, points }) =>
        html`<path class=${`edge${edge.label && edge.label !== 'default' && edge.label !== 'choice' ? ' edge-catch' : ''}`} d=${path(points)} marker-end="url(#arrow)" />`,
    )}
    ${shapes.map((shape) => {
      const box = laid.boxes.get(shape.name);
      if (!box) return null;
      const run = runs.get(shape.name) ?? pendingRun(shape.name);
      const isSelected = selected?.state === shape.name && sameWithin(selected.within, within);
      const kind = within.length === 0 ? 'node' : 'node inner-node';
      const ended = run.endedAt ?? (run.status === 'RUNNING' ? undefined : run.startedAt);
      return html`<g
        class=${`${kind} node-${run.status.toLowerCase()}${shape.inner ? ' map' : ''}${isSelected ? ' selected' : ''}`}
        data-state=${shape.name}
        data-status=${run.status}
        transform=${`translate(${box.x},${box.y})`}
        onClick=${(event: Event) => {
          event.stopPropagation();
          onSelect({ state: shape.name, ...(within.length > 0 ? { within } : {}) });
        }}
      >
        <rect class="node-box" width=${box.width} height=${box.height} rx="6" />
        <text class="node-name" x="12" y="19">${shape.name}</text>
        <text class="node-meta" x="12" y="35">
          ${shape.type} · ${run.status.toLowerCase()}${run.startedAt ? ` · ${durationBetween(run.startedAt, ended)}` : ''}
        </text>
        <title>${shape.comment ?? shape.name}</title>
        ${shape.inner ? html`<${MapBody} ...${props} shape=${shape} run=${run} width=${box.width} />` : null}
      </g>`;
    })}
  `;
}

/** A Map's iteration chooser, its iterations by status, and its sub-graph. */
function MapBody(
  props: Handlers & {
    shape: StateShape;
    run: StateRun;
    layout: Layout;
    within: ReadonlyArray<string>;
    width: number;
  },
) {
  const { shape, run, within, chosen, onChoose } = props;
  const inner = props.layout.inner.get(shape.name);
  if (!inner || !shape.inner) return null;
  const key = mapKey(within, shape.name);
  const shown = shownIteration(run, key, chosen);
  const stop = (event: Event) => event.stopPropagation();
  return html`
    <foreignObject x="12" y="44" width=${props.width - 24} height="28">
      <div class="map-chooser">
        <label>
          <span>iteration</span>
          <select
            class="iteration-select"
            data-map=${key}
            disabled=${run.iterations.length === 0}
            value=${shown ? String(shown.index) : ''}
            onClick=${stop}
            onChange=${(event: Event) => onChoose(key, Number((event.target as HTMLSelectElement).value))}
          >
            ${run.iterations.map(
              (i) =>
                html`<option value=${String(i.index)} data-status=${i.status}>${i.label} · ${i.status.toLowerCase()}</option>`,
            )}
          </select>
        </label>
        <span class="aggregate">${aggregate(run.iterations)}</span>
      </div>
    </foreignObject>
    <g
      class="map-body"
      data-map=${key}
      data-iteration=${shown?.label ?? ''}
      transform=${`translate(${inner.x},${inner.y})`}
    >
      <rect class="map-body-box" width=${inner.layout.width} height=${inner.layout.height} rx="4" />
      <${Level}
        ...${props}
        shapes=${shape.inner.nodes}
        runs=${innerRuns(shape, run, key, chosen)}
        layout=${inner.layout}
        within=${[...within, shape.name]}
      />
    </g>
  `;
}
