import dagre from '@dagrejs/dagre';
import { html } from 'htm/preact';
import type { GraphEdge, GraphNode } from '../api-types';
import { durationBetween } from './format';

/**
 * The execution's definition as a graph: laid out by dagre (top to bottom), drawn as SVG. Each
 * state is coloured by its status; a Map state lists its iterations (one per source or hook), each
 * selectable. Every label is an SVG text node: names and labels from the execution stay text.
 */

const WIDTH = 240;
const HEIGHT = 44;
const ROW = 20;

export interface Selection {
  readonly state: string;
  readonly iteration?: number;
}

interface Layout {
  readonly width: number;
  readonly height: number;
  readonly boxes: ReadonlyMap<string, { x: number; y: number; width: number; height: number }>;
  readonly edges: ReadonlyArray<{ edge: GraphEdge; points: ReadonlyArray<{ x: number; y: number }> }>;
}

function heightOf(node: GraphNode): number {
  return HEIGHT + (node.type === 'Map' ? Math.max(1, node.iterations.length) * ROW + 6 : 0);
}

export function layout(nodes: ReadonlyArray<GraphNode>, edges: ReadonlyArray<GraphEdge>): Layout {
  const g = new dagre.graphlib.Graph({ multigraph: true });
  g.setGraph({ rankdir: 'TB', nodesep: 30, ranksep: 36, marginx: 12, marginy: 12 });
  g.setDefaultEdgeLabel(() => ({}));
  for (const node of nodes) g.setNode(node.name, { width: WIDTH, height: heightOf(node) });
  edges.forEach((edge, i) => {
    if (g.hasNode(edge.from) && g.hasNode(edge.to)) g.setEdge(edge.from, edge.to, {}, `e${i}`);
  });
  dagre.layout(g);
  const boxes = new Map<string, { x: number; y: number; width: number; height: number }>();
  for (const name of g.nodes()) {
    const n = g.node(name);
    boxes.set(name, { x: n.x - n.width / 2, y: n.y - n.height / 2, width: n.width, height: n.height });
  }
  const laid = g.edges().map((e) => {
    const index = Number((e.name ?? 'e0').slice(1));
    return { edge: edges[index]!, points: g.edge(e).points ?? [] };
  });
  const graph = g.graph();
  return { width: graph.width ?? 0, height: graph.height ?? 0, boxes, edges: laid };
}

function short(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

function path(points: ReadonlyArray<{ x: number; y: number }>): string {
  return points.map((p, i) => `${i === 0 ? 'M' : 'L'}${p.x.toFixed(1)},${p.y.toFixed(1)}`).join(' ');
}

export function Graph(props: {
  nodes: ReadonlyArray<GraphNode>;
  layout: Layout;
  selected?: Selection;
  onSelect: (selection: Selection) => void;
}) {
  const { nodes, layout: laid, selected, onSelect } = props;
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
    ${laid.edges.map(
      ({ edge, points }) =>
        html`<path class=${`edge${edge.label && edge.label !== 'default' ? ' edge-catch' : ''}`} d=${path(points)} marker-end="url(#arrow)" />`,
    )}
    ${nodes.map((node) => {
      const box = laid.boxes.get(node.name);
      if (!box) return null;
      const isSelected = selected?.state === node.name && selected.iteration === undefined;
      return html`<g
        class=${`node node-${node.status.toLowerCase()}${isSelected ? ' selected' : ''}`}
        data-state=${node.name}
        data-status=${node.status}
        transform=${`translate(${box.x},${box.y})`}
        onClick=${() => onSelect({ state: node.name })}
      >
        <rect class="node-box" width=${box.width} height=${box.height} rx="6" />
        <text class="node-name" x="12" y="19">${node.name}</text>
        <text class="node-meta" x="12" y="35">
          ${node.type} · ${node.status.toLowerCase()}${node.startedAt ? ` · ${durationBetween(node.startedAt, node.endedAt ?? (node.status === 'RUNNING' ? undefined : node.startedAt))}` : ''}
        </text>
        ${node.iterations.map((it, row) => {
          const chosen = selected?.state === node.name && selected.iteration === it.index;
          return html`<g
            class=${`iteration node-${it.status.toLowerCase()}${chosen ? ' selected' : ''}`}
            data-iteration=${it.label}
            data-status=${it.status}
            transform=${`translate(8,${HEIGHT + row * ROW})`}
            onClick=${(event: Event) => {
              event.stopPropagation();
              onSelect({ state: node.name, iteration: it.index });
            }}
          >
            <rect class="iteration-box" width=${box.width - 16} height=${ROW - 3} rx="3" />
            <text x="8" y="13">${short(it.label, 24)}${it.current && it.status === 'RUNNING' ? ` · ${it.current}` : ''}</text>
            <title>${it.label}: ${it.status.toLowerCase()}</title>
          </g>`;
        })}
      </g>`;
    })}
  </svg>`;
}
