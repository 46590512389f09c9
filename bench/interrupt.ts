import { spawn, type ChildProcess } from 'node:child_process';

/**
 * What an interrupted bench (Ctrl-C, a timeout) must not leave behind: the folders it made (stores
 * in /dev/shm, scratch folders and local runtimes' folders in /tmp) and the child processes it
 * started. Each is registered where it is made; the handler stops and removes them.
 */

/** Every store and scratch folder made, for an interrupted bench to remove (removeBenchDirectoriesOnInterrupt). */
const benchDirectories = new Set<string>();

/** A folder for an interrupted bench to remove: a store or scratch folder (s3-process.ts), a local runtime's (bench-runtime.ts). */
export function registerBenchDirectory(path: string): void {
  benchDirectories.add(path);
}

/** Child processes the bench started and that have not exited, stopped by an interrupt. */
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
  spawn('sh', ['-c', `sleep ${CHILDREN_EXIT_WAIT_MS / 1000}; exec rm -rf -- "$@"`, 'remove-bench-folders', ...paths], {
    detached: true,
    stdio: 'ignore',
  }).unref();
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
        console.error(
          `${signal}: stopping ${benchChildren.size} child process(es); removing ${benchDirectories.size} folder(s)`,
        );
      }
      for (const child of benchChildren) child.kill('SIGTERM');
      removeBenchDirectoriesDetached();
      process.exit(signal === 'SIGINT' ? 130 : 143);
    });
  }
}
