import { graphOf, type HistoryEventLike, mapIterations } from '../../console/graph-data';
import { readDefinitionText, type StateMachineDefinition } from '../../workflows/definition';
import { NESTED_MAPS } from '../helpers/definitions';

/** The execution page's graph data: a Map's ItemProcessor as a sub-graph, each iteration's inner states. */

// The placeholders sit inside JSON strings: the definition parses as it is.
const pipeline = JSON.parse(readDefinitionText()) as StateMachineDefinition;

/** History events as GetExecutionHistory returns them: ids in order, each chained to the one it names. */
function history() {
  const events: Array<HistoryEventLike & Record<string, unknown>> = [];
  return {
    events,
    add(type: string, previousEventId: number, details: Record<string, unknown> = {}): number {
      const id = events.length + 1;
      const key = type.startsWith('MapIteration')
        ? `mapIteration${type.slice('MapIteration'.length)}EventDetails`
        : type.endsWith('StateEntered')
          ? 'stateEnteredEventDetails'
          : type.endsWith('StateExited')
            ? 'stateExitedEventDetails'
            : `${type[0]!.toLowerCase()}${type.slice(1)}EventDetails`;
      events.push({ id, previousEventId, type, timestamp: new Date(1_000 * id), [key]: details });
      return id;
    },
  };
}

/** One inner state run to its end: entered, (a task scheduled), exited. Returns the last event's id. */
function pass(h: ReturnType<typeof history>, type: string, name: string, after: number, input = '{}'): number {
  const entered = h.add(`${type}StateEntered`, after, { name, input });
  const last = type === 'Task' ? h.add('TaskSucceeded', h.add('TaskScheduled', entered), { output: '{}' }) : entered;
  return h.add(`${type}StateExited`, last, { name, output: `{"${name}":true}` });
}

const source = (name: string, branch: string) => JSON.stringify({ source: { name, branch } });

describe('graphOf', () => {
  test("draws FetchSources' ItemProcessor inside it: the Choice with its three ways out", () => {
    const { nodes } = graphOf(pipeline);
    const fetch = nodes.find((n) => n.name === 'FetchSources')!;

    expect(fetch.inner!.nodes.map((n) => [n.name, n.type, n.end])).toEqual([
      ['ResolveSource', 'Task', false],
      ['SnapshotStored', 'Choice', false],
      ['ReuseSnapshot', 'Pass', true],
      ['FetchSource', 'Task', false],
      ['FetchSourceThroughConnection', 'Task', false],
      ['DescribeSnapshot', 'Pass', true],
    ]);
    expect(fetch.inner!.edges.filter((e) => e.from === 'SnapshotStored')).toEqual([
      { from: 'SnapshotStored', to: 'FetchSource', label: 'default' },
      { from: 'SnapshotStored', to: 'ReuseSnapshot', label: 'choice' },
      { from: 'SnapshotStored', to: 'FetchSourceThroughConnection', label: 'choice' },
    ]);
    expect(nodes.find((n) => n.name === 'PostDeployHooks')!.inner!.nodes.map((n) => n.name)).toEqual(['RunHook']);
    expect(nodes.find((n) => n.name === 'BuildTemplates')!.inner).toBeUndefined();
  });
});

describe('mapIterations', () => {
  test('each iteration runs its own inner states: one fails at FetchSource, the other is aborted', () => {
    const h = history();
    const started = h.add('ExecutionStarted', 0);
    const map = h.add('MapStateStarted', h.add('MapStateEntered', started, { name: 'FetchSources', input: '[]' }));
    const app = h.add('MapIterationStarted', map, { name: 'FetchSources', index: 0 });
    const config = h.add('MapIterationStarted', map, { name: 'FetchSources', index: 1 });
    // Both iterations interleave; only the chain tells whose event is whose.
    let a = pass(h, 'Task', 'ResolveSource', app, source('app', 'main'));
    let c = pass(h, 'Task', 'ResolveSource', config, source('config', 'main'));
    a = pass(h, 'Choice', 'SnapshotStored', a);
    c = pass(h, 'Choice', 'SnapshotStored', c);
    c = h.add('TaskScheduled', h.add('TaskStateEntered', c, { name: 'FetchSourceThroughConnection', input: '{}' }));
    a = h.add('TaskStateEntered', a, { name: 'FetchSource', input: '{"source":"app"}' });
    a = h.add('TaskSubmitted', h.add('TaskScheduled', a), { output: JSON.stringify({ Build: { Id: 'fetch:1' } }) });
    a = h.add('TaskFailed', a, {
      error: 'States.TaskFailed',
      cause: JSON.stringify({ Id: 'fetch:1', BuildStatus: 'FAILED' }),
    });
    a = h.add('MapIterationFailed', a, { name: 'FetchSources', index: 0 });
    h.add('ExecutionFailed', h.add('MapStateFailed', a), { error: 'States.TaskFailed' });

    const [first, second] = mapIterations(pipeline, h.events).get('FetchSources')!;

    const statuses = (i: typeof first) => Object.fromEntries(i!.states.map((s) => [s.name, s.status]));
    expect(first).toMatchObject({ index: 0, label: 'app @ main', status: 'FAILED', buildId: 'fetch:1' });
    expect(statuses(first)).toEqual({
      ResolveSource: 'SUCCEEDED',
      SnapshotStored: 'SUCCEEDED',
      ReuseSnapshot: 'PENDING',
      FetchSource: 'FAILED',
      FetchSourceThroughConnection: 'PENDING',
      DescribeSnapshot: 'PENDING',
    });
    expect(first!.states.find((s) => s.name === 'FetchSource')).toMatchObject({
      error: 'States.TaskFailed',
      input: '{"source":"app"}',
      buildId: 'fetch:1',
      attempts: 1,
      startedAt: expect.any(Number),
      endedAt: expect.any(Number),
    });
    expect(first!.states.find((s) => s.name === 'ResolveSource')!.output).toBe('{"ResolveSource":true}');
    expect(second).toMatchObject({ index: 1, label: 'config @ main', status: 'ABORTED' });
    expect(statuses(second)).toMatchObject({ SnapshotStored: 'SUCCEEDED', FetchSourceThroughConnection: 'ABORTED' });
  });

  test('while it runs, an iteration shows the state it is in; a redrive entering the Map again starts afresh', () => {
    const h = history();
    const map = h.add(
      'MapStateStarted',
      h.add('MapStateEntered', h.add('ExecutionStarted', 0), { name: 'FetchSources' }),
    );
    const it = h.add('MapIterationStarted', map, { name: 'FetchSources', index: 0 });
    h.add('TaskStateEntered', it, { name: 'ResolveSource', input: source('app', 'main') });

    expect(mapIterations(pipeline, h.events).get('FetchSources')).toMatchObject([
      {
        status: 'RUNNING',
        current: 'ResolveSource',
        states: expect.arrayContaining([
          {
            name: 'ResolveSource',
            status: 'RUNNING',
            attempts: 0,
            iterations: [],
            input: expect.any(String),
            startedAt: expect.any(Number),
          },
        ]),
      },
    ]);

    const failed = h.add('ExecutionFailed', h.events.length, { error: 'X' });
    h.add('MapStateEntered', h.add('ExecutionRedriven', failed), { name: 'FetchSources' });
    expect(mapIterations(pipeline, h.events).get('FetchSources')).toEqual([]);
  });

  test('a Map inside a Map: each outer iteration has its own inner iterations, with the same indexes', () => {
    const h = history();
    const outer = h.add(
      'MapStateStarted',
      h.add('MapStateEntered', h.add('ExecutionStarted', 0), { name: 'Environments' }),
    );
    const runOuter = (index: number, pings: Array<'ok' | 'fail'>) => {
      const o = h.add('MapIterationStarted', outer, { name: 'Environments', index });
      const hosts = h.add('MapStateStarted', h.add('MapStateEntered', o, { name: 'Hosts' }));
      let last = hosts;
      pings.forEach((result, i) => {
        const inner = h.add('MapIterationStarted', hosts, { name: 'Hosts', index: i });
        const entered = h.add('TaskStateEntered', inner, { name: 'Ping', input: `{"host":${i}}` });
        const scheduled = h.add('TaskScheduled', entered);
        const end =
          result === 'ok'
            ? h.add('TaskStateExited', h.add('TaskSucceeded', scheduled, { output: '{}' }), { name: 'Ping' })
            : h.add('TaskFailed', scheduled, { error: 'PingError', cause: `host ${i} down` });
        last = h.add(result === 'ok' ? 'MapIterationSucceeded' : 'MapIterationFailed', end, {
          name: 'Hosts',
          index: i,
        });
      });
      return { o, last };
    };
    const zero = runOuter(0, ['ok', 'ok']);
    const one = runOuter(1, ['ok', 'fail']);
    const exited = h.add('MapStateExited', h.add('MapStateSucceeded', zero.last), { name: 'Hosts' });
    h.add('MapIterationSucceeded', pass(h, 'Pass', 'Done', exited), { name: 'Environments', index: 0 });
    h.add('MapIterationFailed', h.add('MapStateFailed', one.last), { name: 'Environments', index: 1 });

    const outerIterations = mapIterations(NESTED_MAPS, h.events).get('Environments')!;

    expect(outerIterations.map((i) => [i.index, i.status])).toEqual([
      [0, 'SUCCEEDED'],
      [1, 'FAILED'],
    ]);
    const hostsOf = (i: number) => outerIterations[i]!.states.find((s) => s.name === 'Hosts')!;
    expect(hostsOf(0).status).toBe('SUCCEEDED');
    expect(hostsOf(0).iterations.map((i) => [i.index, i.status, i.states[0]!.status])).toEqual([
      [0, 'SUCCEEDED', 'SUCCEEDED'],
      [1, 'SUCCEEDED', 'SUCCEEDED'],
    ]);
    expect(hostsOf(1).status).toBe('FAILED');
    expect(hostsOf(1).iterations.map((i) => [i.index, i.status, i.states[0]!.status])).toEqual([
      [0, 'SUCCEEDED', 'SUCCEEDED'],
      [1, 'FAILED', 'FAILED'],
    ]);
    expect(hostsOf(1).iterations[1]!.states[0]).toMatchObject({ error: 'PingError', cause: 'host 1 down' });
    expect(outerIterations[0]!.states.find((s) => s.name === 'Done')!.status).toBe('SUCCEEDED');
    expect(outerIterations[1]!.states.find((s) => s.name === 'Done')!.status).toBe('PENDING');
  });

  test('without the name and index in the details, the previousEventId chain still places the iteration', () => {
    const h = history();
    const map = h.add(
      'MapStateStarted',
      h.add('MapStateEntered', h.add('ExecutionStarted', 0), { name: 'FetchSources' }),
    );
    const it = h.add('MapIterationStarted', map);
    h.add('MapIterationSucceeded', pass(h, 'Pass', 'DescribeSnapshot', it));

    expect(mapIterations(pipeline, h.events).get('FetchSources')).toMatchObject([{ index: 0, status: 'SUCCEEDED' }]);
  });
});
