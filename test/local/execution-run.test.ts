import { ExecutionHistory } from '../../local/execution-run';
import type { HistoryEvent, HistoryEventInit } from '../../local/history';

const event = (type: string): HistoryEventInit => ({ timestamp: 0, type }) as HistoryEventInit;

describe('ExecutionHistory', () => {
  test('numbers events from the ones it was given, chains each thread, and reports what it added after all of it', () => {
    const saved: Array<{ total: number; added: number[] }> = [];
    const history = new ExecutionHistory(
      [{ timestamp: 0, type: 'ExecutionStarted', id: 1, previousEventId: 0 } as HistoryEvent],
      (all, added) => saved.push({ total: all.length, added: added.map((e) => e.id) }),
    );

    history.append('top', [event('MapStateStarted')]);
    history.append('iteration:0', [event('MapIterationStarted'), event('TaskStateEntered')]);
    history.append('iteration:1', [event('MapIterationStarted')]);
    history.append('iteration:0', [event('TaskStateExited')]);

    expect(history.events.map((e) => [e.id, e.previousEventId])).toEqual([
      [1, 0],
      [2, 1],
      [3, 2],
      [4, 3],
      [5, 2],
      [6, 4],
    ]);
    expect(saved).toEqual([
      { total: 2, added: [2] },
      { total: 4, added: [3, 4] },
      { total: 5, added: [5] },
      { total: 6, added: [6] },
    ]);
  });

  test("a Map that starts forgets the earlier Map's iterations: its iteration 0 chains to the top level, not into the old one", () => {
    const history = new ExecutionHistory([], () => undefined);
    history.append('top', [event('MapStateStarted')]);
    history.append('iteration:0', [event('MapIterationStarted')]);
    history.append('top', [event('MapStateExited')]);

    history.append('top', [event('MapStateStarted')]);
    history.append('iteration:0', [event('MapIterationStarted')]);

    expect(history.events.at(-1)).toMatchObject({ id: 5, previousEventId: 4 });
  });
});
