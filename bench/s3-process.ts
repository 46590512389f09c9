import '../local/quiet-sdk';
import { spawn } from 'node:child_process';
import { mkdtempSync, statfsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import { startLocalS3, type LocalS3 } from '../local/s3';
import { registerBenchChild, registerBenchDirectory } from './interrupt';

/** RAM-backed file system the local S3 keeps its objects in when it is there with this much room. */
const MEMORY_STORE = '/dev/shm';
/**
 * Free room in it for the stores to go there: the fixture repository (~1.4 GB with its work tree)
 * and the local S3's objects (up to ~4 GB at the sizes: snapshots, artifacts, the
 * baselines' uploads).
 */
const MEMORY_STORE_MIN_BYTES = 8 * 1024 ** 3;

/**
 * A new folder for the storage of a remote service, the local S3's objects or the git server's
 * repositories: in RAM (tmpfs at /dev/shm) when the machine has one with 8 GB free, else in the
 * temporary folder. Decided once per process, at the first call, so that every store of a bench
 * is on the same side: the room the fixture takes no longer decides where the local S3 goes. A
 * remote service's storage does not compete with the client's disk: on disk here, the store's
 * writes (three files per object, and every byte of every upload) shared one virtual disk with
 * the checkouts and git, and one PUT of baseline (b) cost 3.2 ms instead of 2.2 ms. Both
 * baselines and the pipeline read and write the same stores, wherever they are. The report says
 * which one a run used.
 */
export function makeStoreDirectory(prefix: string): { readonly path: string; readonly inMemory: boolean } {
  storesInMemory ??= memoryStoreHasRoom();
  const path = mkdtempSync(join(storesInMemory ? MEMORY_STORE : tmpdir(), prefix));
  registerBenchDirectory(path);
  return { path, inMemory: storesInMemory };
}
let storesInMemory: boolean | undefined;

/** A new scratch folder in the temporary folder (the fetch builds' checkouts), removed by an interrupted bench too. */
export function makeScratchDirectory(prefix: string): string {
  const path = mkdtempSync(join(tmpdir(), prefix));
  registerBenchDirectory(path);
  return path;
}

function memoryStoreHasRoom(): boolean {
  try {
    const fs = statfsSync(MEMORY_STORE);
    return fs.bavail * fs.bsize >= MEMORY_STORE_MIN_BYTES;
  } catch {
    // No such file system here (ENOENT): the temporary folder.
    return false;
  }
}

/**
 * The local S3 in a process of its own, as S3 is a service of its own: in the bench's process
 * it would share one event loop with the clients it serves (the fetch build's upload, the PUTs
 * of baseline (b)), and each would wait for the other. `tsx bench/s3-process.ts <dir> <bucket>`
 * prints the endpoint on its first line and serves until stdin closes or it is killed.
 */
export function startLocalS3Process(directory: string, bucket: string): Promise<LocalS3> {
  const child = spawn(process.execPath, ['--import', 'tsx', __filename, directory, bucket], {
    cwd: join(__dirname, '..'),
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  registerBenchChild(child);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`the local S3 process exited (${code}) before it listened`)));
    createInterface({ input: child.stdout }).once('line', (line) => {
      const port = Number(new URL(line).port);
      resolve({
        endpoint: line,
        port,
        close: async () => {
          child.stdin.end();
          await exited;
        },
      });
    });
  });
}

async function main(): Promise<void> {
  const [directory, bucket] = process.argv.slice(2);
  if (directory === undefined || bucket === undefined)
    throw new Error('usage: tsx bench/s3-process.ts <directory> <bucket>');
  const s3 = await startLocalS3({ directory, buckets: [bucket] });
  process.stdout.write(`${s3.endpoint}\n`);
  // The parent closes stdin (or exits) to stop this server.
  process.stdin.resume();
  process.stdin.once('end', () => void s3.close().then(() => process.exit(0)));
}

if (require.main === module) {
  main().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}
