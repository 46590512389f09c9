import type { GraphNode, IterationNode, StateRun } from '../../console/api-types';
import { graphOf } from '../../console/graph-data';
import {
  aggregate,
  type Box,
  defaultIteration,
  defaultSelection,
  type Layout,
  layout,
  selectedRun,
} from '../../console/page/layout';
import { readDefinitionText, type StateMachineDefinition } from '../../workflows/definition';
import { NESTED_MAPS } from '../helpers/definitions';

/** Where the execution page draws each state, and which iteration colours a Map's sub-graph. */

const pipeline = graphOf(JSON.parse(readDefinitionText()) as StateMachineDefinition);

function overlap(a: Box, b: Box): boolean {
  return a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height;
}

/** On the box's border or inside it (dagre ends an edge where it meets the box). */
function onBox(p: { x: number; y: number }, b: Box): boolean {
  return p.x >= b.x - 1 && p.x <= b.x + b.width + 1 && p.y >= b.y - 1 && p.y <= b.y + b.height + 1;
}

function expectNoOverlap(laid: Layout): void {
  const boxes = [...laid.boxes];
  for (const [i, [name, box]] of boxes.entries())
    for (const [other, second] of boxes.slice(i + 1))
      expect([name, other, overlap(box, second)]).toEqual([name, other, false]);
}

function expectInside(inner: { x: number; y: number; layout: Layout }, box: Box): void {
  expect(inner.x).toBeGreaterThanOrEqual(0);
  expect(inner.y).toBeGreaterThan(0);
  expect(inner.x + inner.layout.width).toBeLessThanOrEqual(box.width);
  expect(inner.y + inner.layout.height).toBeLessThanOrEqual(box.height);
}

describe('layout', () => {
  const laid = layout(pipeline);
  const fetch = laid.inner.get('FetchSources')!;
  const box = (name: string) => fetch.layout.boxes.get(name)!;

  test("FetchSources' box holds its sub-graph, and no top-level box overlaps another", () => {
    expectInside(fetch, laid.boxes.get('FetchSources')!);
    expectNoOverlap(laid);
    expect(laid.inner.get('PostDeployHooks')!.layout.boxes.has('RunHook')).toBe(true);
    expect(laid.inner.has('BuildTemplates')).toBe(false);
  });

  test('the Choice inside the iterator: its three ways out side by side below it, joining again at DescribeSnapshot', () => {
    const choice = box('SnapshotStored');
    const ways = ['FetchSource', 'ReuseSnapshot', 'FetchSourceThroughConnection'].map(box);

    expectNoOverlap(fetch.layout);
    expect(choice.y).toBeGreaterThan(box('ResolveSource').y);
    for (const way of ways) {
      expect(way.y).toBe(ways[0]!.y);
      expect(way.y).toBeGreaterThan(choice.y + choice.height);
    }
    for (const from of ['FetchSource', 'FetchSourceThroughConnection'])
      expect(box('DescribeSnapshot').y).toBeGreaterThan(box(from).y + box(from).height);
    // Each way out leaves the Choice's box and ends on its target's, going down.
    const out = fetch.layout.edges.filter((e) => e.edge.from === 'SnapshotStored');
    expect(out.map((e) => e.edge.to).sort()).toEqual(['FetchSource', 'FetchSourceThroughConnection', 'ReuseSnapshot']);
    for (const { edge, points } of out) {
      expect(onBox(points[0]!, choice)).toBe(true);
      expect(onBox(points.at(-1)!, box(edge.to))).toBe(true);
      expect(points.at(-1)!.y).toBeGreaterThan(points[0]!.y);
    }
  });

  test('a Map inside a Map: each box holds the next level', () => {
    const nested = graphOf(NESTED_MAPS);
    const outer = layout(nested);
    const environments = outer.inner.get('Environments')!;
    const hosts = environments.layout.inner.get('Hosts')!;

    expectInside(environments, outer.boxes.get('Environments')!);
    expectInside(hosts, environments.layout.boxes.get('Hosts')!);
    expect(hosts.layout.boxes.has('Ping')).toBe(true);
    expect(environments.layout.boxes.get('Done')!.y).toBeGreaterThan(
      environments.layout.boxes.get('Hosts')!.y + environments.layout.boxes.get('Hosts')!.height,
    );
  });
});

function iteration(index: number, label: string, status: string, states: StateRun[] = []): IterationNode {
  return { index, label, status, states };
}

function run(name: string, status: string, fields: Partial<StateRun> = {}): StateRun {
  return { name, status, attempts: 1, iterations: [], ...fields };
}

describe('iterations', () => {
  test('shown until one is chosen: the first failed, else the first running, else the first', () => {
    expect(
      defaultIteration([iteration(0, 'a', 'SUCCEEDED'), iteration(1, 'b', 'FAILED'), iteration(2, 'c', 'FAILED')])
        ?.index,
    ).toBe(1);
    expect(defaultIteration([iteration(0, 'a', 'SUCCEEDED'), iteration(1, 'b', 'RUNNING')])?.index).toBe(1);
    expect(defaultIteration([iteration(0, 'a', 'SUCCEEDED'), iteration(1, 'b', 'SUCCEEDED')])?.index).toBe(0);
    expect(defaultIteration([])).toBeUndefined();
  });

  test('aggregate: succeeded out of all, then the others by status', () => {
    expect(
      aggregate([iteration(0, 'a', 'SUCCEEDED'), iteration(1, 'b', 'SUCCEEDED'), iteration(2, 'c', 'FAILED')]),
    ).toBe('2/3 succeeded · 1 failed');
    expect(aggregate([iteration(0, 'a', 'RUNNING'), iteration(1, 'b', 'TIMED_OUT')])).toBe(
      '0/2 succeeded · 1 running · 1 timed out',
    );
    expect(aggregate([])).toBe('no iteration yet');
  });

  const fetchShape = pipeline.nodes.find((n) => n.name === 'FetchSources')!;
  const nodes: GraphNode[] = pipeline.nodes.map((shape) =>
    shape.name === 'FetchSources'
      ? {
          ...shape,
          ...run('FetchSources', 'FAILED'),
          iterations: [
            iteration(0, 'app @ main', 'SUCCEEDED', [run('FetchSource', 'SUCCEEDED', { buildId: 'fetch:1' })]),
            iteration(1, 'config @ main', 'FAILED', [
              run('ResolveSource', 'SUCCEEDED'),
              run('FetchSource', 'FAILED', { error: 'States.TaskFailed', buildId: 'fetch:2' }),
            ]),
          ],
        }
      : { ...shape, ...run(shape.name, shape.name === 'ValidateInput' ? 'SUCCEEDED' : 'PENDING') },
  );

  test("selecting an inner state shows the shown iteration's run of it; choosing another iteration shows that one's", () => {
    const selection = { state: 'FetchSource', within: ['FetchSources'] };

    expect(selectedRun(nodes, selection, {})).toMatchObject({
      shape: { name: 'FetchSource', type: 'Task' },
      run: { status: 'FAILED', error: 'States.TaskFailed', buildId: 'fetch:2' },
      trail: ['FetchSources', 'config @ main'],
    });
    expect(selectedRun(nodes, selection, { FetchSources: 0 })).toMatchObject({
      run: { status: 'SUCCEEDED', buildId: 'fetch:1' },
      trail: ['FetchSources', 'app @ main'],
    });
    // A state that iteration never entered is pending in it.
    expect(
      selectedRun(nodes, { state: 'ResolveSource', within: ['FetchSources'] }, { FetchSources: 0 })!.run.status,
    ).toBe('PENDING');
    expect(selectedRun(nodes, { state: 'FetchSources' }, {})).toMatchObject({ shape: fetchShape, trail: [] });
    expect(selectedRun(nodes, { state: 'Nowhere', within: ['FetchSources'] }, {})).toBeUndefined();
  });

  test('until the user selects: the failed state inside the failed iteration', () => {
    expect(defaultSelection(nodes, {})).toEqual({ state: 'FetchSource', within: ['FetchSources'] });
    // Showing the iteration that succeeded, nothing inside failed: the Map itself.
    expect(defaultSelection(nodes, { FetchSources: 0 })).toEqual({ state: 'FetchSources' });
    expect(
      defaultSelection(
        nodes.map((n) => ({ ...n, status: 'SUCCEEDED' })),
        {},
      ),
    ).toBeUndefined();
  });
});
