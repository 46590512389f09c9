import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openStaging } from '../../../tasks/combine-sources/staging';

/**
 * The local runtime runs every combine in one process, so concurrent executions open staging
 * folders side by side under one pid: a combine's clean-up of stale folders must never take
 * a folder another combine of this process has just created and not yet registered.
 */
it('many combines opening staging folders at once in one process: every folder is still there while open', async () => {
  const tmp = await mkdtemp(join(tmpdir(), 'combine-staging-'));
  try {
    // Started one event-loop turn apart, so that some clean up while others are between creating
    // their folder and recording it.
    const opening: Array<Promise<Awaited<ReturnType<typeof openStaging>>>> = [];
    for (let i = 0; i < 200; i += 1) {
      opening.push(openStaging(tmp));
      await new Promise((resolve) => setImmediate(resolve));
    }
    const opened = await Promise.all(opening);

    expect(opened.filter((s) => !existsSync(s.path)).map((s) => s.path)).toEqual([]);
    await Promise.all(opened.map((s) => s.dispose()));
    expect(opened.some((s) => existsSync(s.path))).toBe(false);
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
});
