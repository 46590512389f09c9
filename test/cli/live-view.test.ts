import type { HistoryEvent } from '@aws-sdk/client-sfn';
import { Terminal } from '@xterm/headless';
import { toGraphEvents } from '../../cli/follow';
import { ExecutionGraph } from '../../cli/graph';
import type { Io } from '../../cli/io';
import { LiveView } from '../../cli/view';
import { placeholdersIn, readDefinitionText, substitute } from '../../workflows/definition';

/**
 * The live graph on a terminal, read back from a terminal emulator (xterm.js, headless) that
 * interprets the cursor movements as a terminal does: what a person sees, not the bytes written.
 */

function definition() {
  const text = readDefinitionText();
  return JSON.parse(substitute(text, Object.fromEntries(placeholdersIn(text).map((name) => [name, `local-${name}`]))));
}

const t0 = Date.parse('2026-12-07T10:00:00Z');
const event = (id: number, type: string, details: Partial<HistoryEvent> = {}): HistoryEvent => ({
  id,
  previousEventId: id - 1,
  timestamp: new Date(t0 + id * 1000),
  type: type as HistoryEvent['type'],
  ...details,
});
const STEPS: HistoryEvent[][] = [
  [
    event(1, 'ExecutionStarted'),
    event(2, 'TaskStateEntered', { stateEnteredEventDetails: { name: 'ValidateInput', input: '{}' } }),
  ],
  [
    event(3, 'TaskStateExited', { stateExitedEventDetails: { name: 'ValidateInput', output: '{}' } }),
    event(4, 'ChoiceStateEntered', { stateEnteredEventDetails: { name: 'RedeployOrBuild', input: '{}' } }),
    event(5, 'ChoiceStateExited', { stateExitedEventDetails: { name: 'RedeployOrBuild', output: '{}' } }),
    event(6, 'MapStateEntered', { stateEnteredEventDetails: { name: 'FetchSources', input: '{}' } }),
  ],
  [
    event(7, 'MapStateSucceeded'),
    event(8, 'MapStateExited', { stateExitedEventDetails: { name: 'FetchSources', output: '{}' } }),
  ],
];

/** An Io on a 100×40 terminal; stdout and stderr are the same terminal, as in a shell. */
function terminal(): { io: Io; screen: () => Promise<string[]> } {
  const term = new Terminal({ cols: 100, rows: 40, convertEol: true, allowProposedApi: true });
  let written = Promise.resolve();
  const write = (text: string): void => {
    written = written.then(() => new Promise<void>((done) => term.write(text, done)));
  };
  return {
    io: { out: write, err: write, isTTY: true, columns: 100 },
    async screen() {
      await written;
      const buffer = term.buffer.active;
      const lines: string[] = [];
      for (let i = 0; i < buffer.length; i += 1) lines.push(buffer.getLine(i)?.translateToString(true) ?? '');
      while (lines.length > 0 && lines.at(-1) === '') lines.pop();
      return lines;
    },
  };
}

it('prints what the process logs while the graph is live above the graph, and leaves one graph on screen', async () => {
  const { io, screen } = terminal();
  const graph = new ExecutionGraph(definition());
  const view = new LiveView(graph, { executionName: 'acceptance-1' }, io);
  // As in a process on a terminal, the console writes to the same terminal as the view.
  const { log, error } = console;
  console.log = (text: string) => io.out(`${text}\n`);
  console.error = (text: string) => io.err(`${text}\n`);
  const processConsole = console.log;
  try {
    graph.apply(toGraphEvents(STEPS[0]!));
    view.update({ events: STEPS[0]!, builds: [] });
    // What the local runtime's tasks print between two polls when the runtime runs in this process.
    console.log('source app: main is 9a68897; reusing s3://stepdeploy-example-artifacts/sources/app/9a68897.zip');
    console.error('event delivery failed (Execution Status Change): boom');
    graph.apply(toGraphEvents(STEPS[1]!));
    view.update({ events: STEPS[1]!, builds: [] });
    console.log('source config: main is 6a22c4f; fetching it');
    graph.apply(toGraphEvents(STEPS[2]!));
    view.update({ events: STEPS[2]!, builds: [] });
  } finally {
    view.finish();
    expect(console.log).toBe(processConsole);
    Object.assign(console, { log, error });
  }

  const lines = await screen();
  const header = lines.filter((l) => l.startsWith('execution acceptance-1'));
  expect(header).toHaveLength(1);
  const top = lines.indexOf(header[0]!);
  expect(lines.slice(0, top)).toEqual([
    'source app: main is 9a68897; reusing s3://stepdeploy-example-artifacts/sources/app/9a68897.zip',
    'event delivery failed (Execution Status Change): boom',
    'source config: main is 6a22c4f; fetching it',
  ]);
  expect(lines.filter((l) => /ValidateInput/.test(l))).toHaveLength(1);
  expect(lines[top + 1]).toMatch(/✓ ValidateInput\s+succeeded/);
  expect(lines[top + 2]).toMatch(/✓ RedeployOrBuild\s+succeeded/);
  expect(lines[top + 3]).toMatch(/✓ FetchSources\s+succeeded/);
});
