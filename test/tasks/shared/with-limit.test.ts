import { withLimit } from '../../../tasks/shared/with-limit';

/** A task that resolves when told to, recording how many run at once. */
function gate() {
  let running = 0;
  let peak = 0;
  const started: number[] = [];
  const release = new Map<number, () => void>();
  const run = async (item: number): Promise<string> => {
    started.push(item);
    running += 1;
    peak = Math.max(peak, running);
    await new Promise<void>((resolve) => release.set(item, resolve));
    running -= 1;
    return `done ${item}`;
  };
  return { run, started, release, peak: () => peak };
}

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('withLimit', () => {
  it('runs at most `limit` at a time and answers the results in the order of the items', async () => {
    const g = gate();

    const all = withLimit([1, 2, 3, 4, 5], 2, g.run);
    await tick();
    expect(g.started).toEqual([1, 2]);
    for (const item of [2, 1, 5, 3, 4]) {
      g.release.get(item)?.();
      await tick();
    }
    for (const item of [3, 4, 5]) g.release.get(item)?.();

    await expect(all).resolves.toEqual(['done 1', 'done 2', 'done 3', 'done 4', 'done 5']);
    expect(g.peak()).toBe(2);
  });

  it('starts no new item after one fails, and rejects with its error', async () => {
    const started: number[] = [];

    const all = withLimit([1, 2, 3, 4], 1, async (item) => {
      started.push(item);
      if (item === 2) throw new Error('item 2 failed');
      return item;
    });

    await expect(all).rejects.toThrow('item 2 failed');
    expect(started).toEqual([1, 2]);
  });

  it('answers an empty list for no items', async () => {
    await expect(withLimit([], 4, async () => 1)).resolves.toEqual([]);
  });
});
