import '../local/quiet-sdk';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, statfsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import { startLocalS3, type LocalS3 } from '../local/s3';

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
  benchDirectories.add(path);
  return { path, inMemory: storesInMemory };
}
let storesInMemory: boolean | undefined;
/** Every store and scratch folder made, for an interrupted bench to remove (removeBenchDirectoriesOnInterrupt). */
const benchDirectories = new Set<string>();

/** A new scratch folder in the temporary folder (the fetch builds' checkouts), removed by an interrupted bench too. */
export function makeScratchDirectory(prefix: string): string {
  const path = mkdtempSync(join(tmpdir(), prefix));
  benchDirectories.add(path);
  return path;
}

/** A folder made elsewhere (a local runtime's, local/example-runtime.ts), for an interrupted bench to remove too. */
export function registerBenchDirectory(path: string): void {
  benchDirectories.add(path);
}

/** Child processes that outlive a section's step (the scale section's), stopped by an interrupt. */
const benchChildren = new Set<ChildProcess>();

/** Counts `child` among the processes an interrupt stops, until it exits. */
export function registerBenchChild(child: ChildProcess): void {
  benchChildren.add(child);
  child.once('exit', () => benchChildren.delete(child));
}

/** How long the remover of an interrupted bench waits for the bench's children to die. */
const CHILDREN_EXIT_WAIT_MS = 200;

/**
 * Removes every store and scratch folder this process made, which an interrupted bench would
 * otherwise leave in /dev/shm, holding RAM until removed or a reboot, and in /tmp (checkouts of
 * 700 MB). From a process of its own, started detached (in a process group of its own)
 * so that it outlives this one: `rm -rf` of each folder after 0.2 s, time for the stopped children
 * to die (a local S3 still serving a request could write into its store again). Run from the
 * signal handler, which must return at once: under tsx the parent process relays the signal and
 * SIGKILLs this one unless it reacts within ~60 ms, and removing a full bench's stores (several
 * GB in /dev/shm) takes longer; killed mid-removal, it used to leave them.
 */
function removeBenchDirectoriesDetached(): void {
  const paths = [...benchDirectories];
  benchDirectories.clear();
  if (paths.length === 0) return;
  // The paths are arguments ("$@"), never shell text.
  spawn('sh', ['-c', `sleep ${CHILDREN_EXIT_WAIT_MS / 1000}; exec rm -rf -- "$@"`, 'remove-bench-folders', ...paths], { detached: true, stdio: 'ignore' }).unref();
}

/**
 * On SIGINT or SIGTERM (Ctrl-C, a timeout): stops the registered child processes (the local S3,
 * the scale section, combine children, the overhead's script; the scale child removes its own
 * folders the same way), has every store and scratch folder of this process removed by a process
 * that outlives it (removeBenchDirectoriesDetached), and exits at once. Every delivery is handled:
 * a Ctrl-C reaches a process twice, from the terminal and through tsx.
 */
export function removeBenchDirectoriesOnInterrupt(): void {
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      if (benchDirectories.size > 0 || benchChildren.size > 0) {
        console.error(`${signal}: stopping ${benchChildren.size} child process(es); removing ${benchDirectories.size} folder(s)`);
      }
      for (const child of benchChildren) child.kill('SIGTERM');
      removeBenchDirectoriesDetached();
      process.exit(signal === 'SIGINT' ? 130 : 143);
    });
  }
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
  if (directory === undefined || bucket === undefined) throw new Error('usage: tsx bench/s3-process.ts <directory> <bucket>');
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
