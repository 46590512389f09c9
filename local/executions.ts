import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  type Stats,
  statSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import type { HistoryEvent } from './history';

/**
 * Executions and their history persist under `.stepdeploy/executions/<pipeline>/<name>/`, so a
 * restarted runtime still lists, describes and redrives them. One folder per state machine, as on
 * AWS each has its own executions: configs kept side by side share `.stepdeploy/`, and a runtime
 * must never list, mark or redrive another pipeline's executions.
 */

export type ExecutionStatus = 'RUNNING' | 'SUCCEEDED' | 'FAILED' | 'TIMED_OUT' | 'ABORTED' | 'PENDING_REDRIVE';

export interface ExecutionRecord {
  readonly executionArn: string;
  readonly stateMachineArn: string;
  readonly name: string;
  status: ExecutionStatus;
  readonly startDate: number;
  stopDate?: number;
  /** JSON text, as DescribeExecution returns it. */
  readonly input: string;
  output?: string;
  error?: string;
  cause?: string;
  redriveCount: number;
  redriveDate?: number;
  /** The top-level state entered last, and its input: where a redrive restarts. */
  lastTopLevelState?: { readonly name: string; readonly input: unknown };
  /**
   * Task states inside a Map that succeeded, with their results, in the order they ended: a
   * redrive of the Map replays them instead of running them again (see LocalStateMachine.redrive).
   * Only while the top-level state they are in has not ended (a redrive keeps only the state it
   * restarts). A success is the task's own result, recorded before the state's ResultSelector
   * and ResultPath run: were those to fail the state, the redrive would replay the result and
   * fail the same way.
   */
  nestedSuccesses?: NestedSuccess[];
}

/** One Task state inside a Map (or Parallel) that succeeded: what it was given, what it returned. */
export interface NestedSuccess {
  /** The top-level state it is nested in. */
  readonly top: string;
  readonly state: string;
  /** Its effective parameters, as JSON text. */
  readonly input: string;
  readonly result: unknown;
  /** What it submitted (`.sync`, `.waitForTaskToken`: TaskSubmitted's output), if anything. */
  readonly submitted?: unknown;
}

export const TERMINAL_STATUSES: ReadonlyArray<ExecutionStatus> = ['SUCCEEDED', 'FAILED', 'TIMED_OUT', 'ABORTED'];

function writeJsonAtomic(path: string, value: unknown): void {
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(value, null, 1));
  renameSync(tmp, path);
}

/** What a record file was when it was read: a change by any process (a write renames a new file in) changes it. */
function sameFile(a: Stats, b: { readonly mtimeMs: number; readonly size: number; readonly ino: number }): boolean {
  return a.mtimeMs === b.mtimeMs && a.size === b.size && a.ino === b.ino;
}

interface CachedRecord {
  readonly mtimeMs: number;
  readonly size: number;
  readonly ino: number;
  readonly record: ExecutionRecord;
}

export class ExecutionStore {
  /**
   * Records as last read, by name, with their file's identity: ListExecutions (every poll of the
   * console's list, of `watch`, of `executions`) stats each file and parses only the ones that
   * changed, instead of reading every execution every time.
   */
  private readonly cache = new Map<string, CachedRecord>();

  constructor(private readonly root: string) {
    mkdirSync(root, { recursive: true });
  }

  private dir(name: string): string {
    return join(this.root, name);
  }

  exists(name: string): boolean {
    return existsSync(join(this.dir(name), 'execution.json'));
  }

  saveRecord(record: ExecutionRecord): void {
    mkdirSync(this.dir(record.name), { recursive: true });
    writeJsonAtomic(join(this.dir(record.name), 'execution.json'), record);
  }

  saveHistory(name: string, events: ReadonlyArray<HistoryEvent>): void {
    mkdirSync(this.dir(name), { recursive: true });
    writeJsonAtomic(join(this.dir(name), 'history.json'), events);
  }

  loadRecord(name: string): ExecutionRecord | undefined {
    if (!this.exists(name)) return undefined;
    return JSON.parse(readFileSync(join(this.dir(name), 'execution.json'), 'utf8')) as ExecutionRecord;
  }

  loadHistory(name: string): HistoryEvent[] {
    const path = join(this.dir(name), 'history.json');
    if (!existsSync(path)) return [];
    return JSON.parse(readFileSync(path, 'utf8')) as HistoryEvent[];
  }

  /**
   * Every readable record of this state machine. One that cannot be read (a torn or hand-edited
   * file) or that names another state machine is skipped with a warning: one bad entry never
   * hides the others.
   */
  records(stateMachineArn: string, warn: (message: string) => void): ExecutionRecord[] {
    const records: ExecutionRecord[] = [];
    for (const entry of readdirSync(this.root, { withFileTypes: true })) {
      if (!entry.isDirectory()) continue;
      const name = entry.name;
      const file = join(this.dir(name), 'execution.json');
      let record: ExecutionRecord;
      try {
        const stat = statSync(file, { throwIfNoEntry: false });
        if (stat === undefined) continue;
        const cached = this.cache.get(name);
        if (cached !== undefined && sameFile(stat, cached)) record = cached.record;
        else {
          record = JSON.parse(readFileSync(file, 'utf8')) as ExecutionRecord;
          this.cache.set(name, { mtimeMs: stat.mtimeMs, size: stat.size, ino: stat.ino, record });
        }
      } catch (err) {
        warn(`skipping execution ${name}: ${file} cannot be read (${(err as Error).message})`);
        continue;
      }
      if (record?.stateMachineArn !== stateMachineArn || record.name !== name) {
        warn(
          `skipping execution ${name}: ${file} belongs to ${String(record?.stateMachineArn)}, not ${stateMachineArn}`,
        );
        continue;
      }
      // A copy: a caller that changes a record (failOrphans) saves it, and the cache stays what the file says.
      records.push({ ...record });
    }
    return records;
  }
}

/**
 * Before executions lived in a folder per pipeline they lived in `<parent>/<name>/`: move those
 * of `stateMachineArn` into its folder, so an upgrade keeps them (listable and redrivable), and
 * leave every other pipeline's where it is for that pipeline's runtime to adopt.
 */
export function adoptLegacyExecutions(parent: string, directory: string, stateMachineArn: string): string[] {
  if (!existsSync(parent)) return [];
  const adopted: string[] = [];
  for (const entry of readdirSync(parent, { withFileTypes: true })) {
    const file = join(parent, entry.name, 'execution.json');
    if (!entry.isDirectory() || !existsSync(file)) continue;
    try {
      const record = JSON.parse(readFileSync(file, 'utf8')) as Partial<ExecutionRecord>;
      if (record.stateMachineArn !== stateMachineArn || existsSync(join(directory, entry.name))) continue;
    } catch {
      continue; // unreadable: not provably this pipeline's
    }
    mkdirSync(directory, { recursive: true });
    renameSync(join(parent, entry.name), join(directory, entry.name));
    adopted.push(entry.name);
  }
  return adopted;
}
