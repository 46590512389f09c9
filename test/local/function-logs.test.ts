import { type FunctionLogSource, withFunctionLogs } from '../../local/function-logs';

/** A task's console output goes to its invocation's sink, across awaits, and nobody else's is touched. */

const tick = (ms: number): Promise<void> => new Promise((done) => setTimeout(done, ms));

// First in the file: the console is routed on the first invocation, so the spy below is what it wraps.
it('leaves console calls made outside an invocation where they were going', async () => {
  const log = jest.spyOn(console, 'log').mockImplementation(() => undefined);
  const sink = jest.fn();
  try {
    await withFunctionLogs({ functionName: 'p-notify' }, sink, async () => console.log('from the task'));
    console.log('from the CLI');

    expect(sink.mock.calls).toEqual([['from the task', { functionName: 'p-notify' }]]);
    expect(log.mock.calls).toEqual([['from the CLI']]);
  } finally {
    log.mockRestore();
  }
});

it('routes each concurrent invocation to its own sink, a message per call, across awaits', async () => {
  const seen: Array<[string, FunctionLogSource]> = [];
  const sink = (line: string, source: FunctionLogSource): void => {
    seen.push([line, source]);
  };
  const task = async (name: string, wait: number): Promise<string> => {
    console.log('%s before', name);
    await tick(wait);
    console.error(`${name} after\nsecond line`);
    return name;
  };

  const results = await Promise.all([
    withFunctionLogs({ functionName: 'p-resolve-source', stateName: 'ResolveSource' }, sink, () => task('a', 20)),
    withFunctionLogs({ functionName: 'p-notify' }, sink, () => task('b', 1)),
  ]);

  expect(results).toEqual(['a', 'b']);
  const a = { functionName: 'p-resolve-source', stateName: 'ResolveSource' };
  const b = { functionName: 'p-notify' };
  expect(seen).toEqual([
    ['a before', a],
    ['b before', b],
    ['b after\nsecond line', b],
    ['a after\nsecond line', a],
  ]);
});
