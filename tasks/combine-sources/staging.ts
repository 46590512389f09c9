import { randomUUID } from 'node:crypto';
import { mkdir, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { isProcessAlive } from '../../shared/process';

/**
 * The folder a combine stages snapshots in. Removing it in `finally` is not enough: a Lambda that
 * times out is stopped mid-combine, and the next invocation in the same execution environment
 * finds /tmp still full of the last one's snapshots. So each combine first removes the staging
 * folders nobody uses any more — only folders of this prefix, and only those of a process that is
 * gone, or of this process but not open here (Lambda's restarted runtime may get the same pid).
 * A folder of another live process (local runtime, tests) is left alone.
 */

const PREFIX = 'stepdeploy-combine-';
const OWNED = /^stepdeploy-combine-(\d+)-/;
const open = new Set<string>();

export interface Staging {
  readonly path: string;
  dispose(): Promise<void>;
}

export async function openStaging(tmpDir: string): Promise<Staging> {
  await removeStale(tmpDir);
  // Named and recorded as open before it exists: mkdtemp would create it first, and another
  // combine of this process (the local runtime runs them side by side) cleaning up in between
  // would take it for a stale folder of this pid and remove it (ENOENT mid-combine).
  const path = join(tmpDir, `${PREFIX}${process.pid}-${randomUUID()}`);
  open.add(path);
  try {
    await mkdir(path, { mode: 0o700 });
  } catch (err) {
    open.delete(path);
    throw err;
  }
  return {
    path,
    async dispose() {
      open.delete(path);
      await rm(path, { recursive: true, force: true });
    },
  };
}

async function removeStale(tmpDir: string): Promise<void> {
  const entries = await readdir(tmpDir, { withFileTypes: true });
  for (const entry of entries) {
    const pid = OWNED.exec(entry.name)?.[1];
    if (!entry.isDirectory() || pid === undefined) continue;
    const path = join(tmpDir, entry.name);
    if (open.has(path) || (Number(pid) !== process.pid && isProcessAlive(Number(pid)))) continue;
    await rm(path, { recursive: true, force: true });
  }
}
