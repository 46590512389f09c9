import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { GetObjectCommand, HeadObjectCommand, paginateListObjectsV2 } from '@aws-sdk/client-s3';
import type { Build } from '../../local/codebuild';
import type { EventBridgeEvent } from '../../local/events';
import type { HistoryEvent } from '../../local/history';
import type { LocalRuntime } from '../../local/runtime';
import { FETCH_ITERATION_STATES } from '../../workflows/definition';

/**
 * Helpers for the reliability tests (test/reliability/): reading what the local runtime did —
 * history, builds, S3 — and causing real failures: an HTTP endpoint that answers what the test
 * says, a commit pushed to an example repository, a deploy buildspec that can be held.
 */

const PROJECT_ROOT = resolve(__dirname, '..', '..');

/** Names of the states entered, in order (Map iterations included). */
export function enteredStates(events: ReadonlyArray<HistoryEvent>): string[] {
  return events
    .filter((e) => e.type.endsWith('StateEntered'))
    .map((e) => (e.stateEnteredEventDetails as { name: string }).name);
}

/** The top-level states entered, in order: what a person sees in the console graph. */
export function topLevelStatesEntered(events: ReadonlyArray<HistoryEvent>): string[] {
  return enteredStates(events).filter((s) => !([...FETCH_ITERATION_STATES, 'RunHook'] as string[]).includes(s));
}

/** The history from the last ExecutionRedriven event on (it included). */
export function afterLastRedrive(events: ReadonlyArray<HistoryEvent>): HistoryEvent[] {
  const at = events.map((e) => e.type).lastIndexOf('ExecutionRedriven');
  if (at === -1) throw new Error('the execution was never redriven');
  return events.slice(at);
}

/** The errors of each failed attempt of a top-level Task state, in order. */
export function taskFailures(events: ReadonlyArray<HistoryEvent>, stateName: string): string[] {
  const errors: string[] = [];
  let state: string | undefined;
  for (const e of events) {
    if (e.type.endsWith('StateEntered')) state = (e.stateEnteredEventDetails as { name: string }).name;
    if (e.type === 'TaskFailed' && state === stateName)
      errors.push((e.taskFailedEventDetails as { error: string }).error);
  }
  return errors;
}

/** How many times a Task state was scheduled (first attempt and every retry). */
export function taskAttempts(events: ReadonlyArray<HistoryEvent>, stateName: string): number {
  let count = 0;
  let state: string | undefined;
  for (const e of events) {
    if (e.type.endsWith('StateEntered')) state = (e.stateEnteredEventDetails as { name: string }).name;
    if (e.type === 'TaskScheduled' && state === stateName) count += 1;
  }
  return count;
}

/** The execution-status events notify received for one execution: [status, redriveCount]. */
export function executionStatuses(events: ReadonlyArray<EventBridgeEvent>, execution: string): Array<[string, number]> {
  return events
    .filter((e) => e['detail-type'] === 'Step Functions Execution Status Change' && e.detail.name === execution)
    .map((e) => [String(e.detail.status), Number(e.detail.redriveCount)]);
}

export async function waitFor<T>(
  what: string,
  probe: () => T | undefined | false | Promise<T | undefined | false>,
  timeoutMs = 20_000,
  intervalMs = 25,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** Rejects when `promise` takes longer than `ms`: a hang fails the test with a message, not a jest timeout. */
export async function within<T>(ms: number, what: string, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not end within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

// ---- S3 ----

export async function readJson<T = any>(runtime: LocalRuntime, key: string): Promise<T> {
  const out = await runtime.s3Client.send(new GetObjectCommand({ Bucket: runtime.bucket, Key: key }));
  return JSON.parse(await out.Body!.transformToString()) as T;
}

export async function readBytes(runtime: LocalRuntime, key: string): Promise<Buffer> {
  const out = await runtime.s3Client.send(new GetObjectCommand({ Bucket: runtime.bucket, Key: key }));
  return Buffer.from(await out.Body!.transformToByteArray());
}

/** The object's ETag, or undefined when there is none. */
export async function etagOf(runtime: LocalRuntime, key: string): Promise<string | undefined> {
  try {
    return (await runtime.s3Client.send(new HeadObjectCommand({ Bucket: runtime.bucket, Key: key }))).ETag;
  } catch (err) {
    if ((err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404) return undefined;
    throw err;
  }
}

export async function listKeys(runtime: LocalRuntime, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  for await (const page of paginateListObjectsV2(
    { client: runtime.s3Client },
    { Bucket: runtime.bucket, Prefix: prefix },
  ))
    keys.push(...(page.Contents ?? []).map((o) => o.Key!));
  return keys.sort();
}

// ---- local builds ----

/** Every local build, from `.stepdeploy/builds/<id>/build.json`. */
/** The local builds, oldest first (their folders are named by random ids, so the listing order means nothing). */
export function localBuilds(home: string): Build[] {
  const dir = join(home, 'builds');
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true })
    .filter((d) => d.isDirectory() && existsSync(join(dir, d.name, 'build.json')))
    .map((d) => JSON.parse(readFileSync(join(dir, d.name, 'build.json'), 'utf8')) as Build)
    .sort((a, b) => a.StartTime - b.StartTime);
}

export function buildDirCount(home: string): number {
  const dir = join(home, 'builds');
  return existsSync(dir) ? readdirSync(dir, { withFileTypes: true }).filter((d) => d.isDirectory()).length : 0;
}

export function variableOf(build: Build, name: string): string | undefined {
  return build.Environment.EnvironmentVariables.find((v) => v.Name === name)?.Value;
}

/** The largest number of intervals [start, end) that overlap at one instant. */
export function maxInFlight(intervals: ReadonlyArray<{ start: number; end: number }>): number {
  const edges = intervals.flatMap((i) => [
    { at: i.start, delta: 1 },
    { at: i.end, delta: -1 },
  ]);
  // An end at the same instant as a start is not an overlap: ends first.
  edges.sort((a, b) => a.at - b.at || a.delta - b.delta);
  let now = 0;
  let max = 0;
  for (const e of edges) {
    now += e.delta;
    max = Math.max(max, now);
  }
  return max;
}

// ---- real causes of failure ----

export interface ControlledEndpoint {
  readonly url: string;
  /** What the endpoint answers now: a status, or 'hang' (never answers). */
  answer: number | 'hang';
  readonly requests: Array<{ method: string; path: string; at: number }>;
  /** Drops the connections of the requests left hanging: their clients see the socket close. */
  hangUp(): void;
  close(): Promise<void>;
}

/** An HTTP endpoint on 127.0.0.1 that answers what the test sets (a hook target, a Slack webhook). */
export async function controlledEndpoint(initial: number | 'hang' = 200): Promise<ControlledEndpoint> {
  const hanging = new Set<ServerResponse>();
  const endpoint = {
    url: '',
    answer: initial,
    requests: [] as Array<{ method: string; path: string; at: number }>,
    hangUp: () => undefined,
    close: async () => undefined,
  } as ControlledEndpoint;
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    endpoint.requests.push({ method: req.method ?? '', path: req.url ?? '', at: Date.now() });
    req.resume();
    if (endpoint.answer === 'hang') {
      hanging.add(res);
      return;
    }
    res.writeHead(endpoint.answer, { 'content-type': 'text/plain' });
    res.end(`status ${endpoint.answer}\n`);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  Object.assign(endpoint, {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    hangUp: () => {
      for (const res of hanging) res.socket?.destroy();
      hanging.clear();
    },
    close: () =>
      new Promise<void>((r) => {
        hanging.clear();
        server.closeAllConnections();
        server.close(() => r());
      }),
  });
  return endpoint;
}

const GIT_IDENTITY = {
  GIT_AUTHOR_NAME: 'reliability test',
  GIT_AUTHOR_EMAIL: 'test@stepdeploy.invalid',
  GIT_COMMITTER_NAME: 'reliability test',
  GIT_COMMITTER_EMAIL: 'test@stepdeploy.invalid',
  GIT_CONFIG_NOSYSTEM: '1',
  GIT_CONFIG_GLOBAL: '/dev/null',
};

function git(cwd: string, args: string[]): string {
  return execFileSync('git', args, {
    cwd,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...GIT_IDENTITY },
  }).trim();
}

/**
 * Pushes one commit to `branch` of a bare repository (creating the branch from `from` when it does
 * not exist), as a colleague pushing would. Answers the new commit id.
 */
export function pushCommit(
  bareRepo: string,
  branch: string,
  file: string,
  content: string | Buffer,
  from = 'main',
): string {
  const work = mkdtempSync(join(tmpdir(), 'stepdeploy-push-'));
  try {
    git(work, ['clone', '--quiet', bareRepo, '.']);
    const exists = git(work, ['ls-remote', '--heads', 'origin', branch]) !== '';
    git(work, ['checkout', '--quiet', '-B', branch, `origin/${exists ? branch : from}`]);
    writeFileSync(join(work, file), content);
    git(work, ['add', '--all']);
    git(work, ['commit', '--quiet', '-m', `test: change ${file} on ${branch}`]);
    git(work, ['push', '--quiet', 'origin', `HEAD:refs/heads/${branch}`]);
    return git(work, ['rev-parse', 'HEAD']);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** The commit a branch of a bare repository points at now. */
export function headOf(bareRepo: string, branch: string): string {
  return git(bareRepo, ['rev-parse', `refs/heads/${branch}`]);
}

/**
 * One of the project's buildspecs (`build` or `deploy`) with extra commands first in pre_build:
 * e.g. a sleep that makes each deploy last long enough to see overlaps, or a loop that holds the
 * build while a marker file exists. Answers the path of the written buildspec.
 */
export function buildspecWith(which: 'build' | 'deploy', dir: string, commands: ReadonlyArray<string>): string {
  const original = readFileSync(join(PROJECT_ROOT, 'buildspecs', `${which}.yml`), 'utf8');
  const marker = '  pre_build:\n    commands:\n';
  if (!original.includes(marker)) throw new Error(`buildspecs/${which}.yml has no pre_build commands to extend`);
  const extra = commands.map((c) => `      - '${c.replace(/'/g, "''")}'\n`).join('');
  const path = join(dir, `${which}-test.yml`);
  // A function: in a replacement string "$$" would turn into "$".
  writeFileSync(
    path,
    original.replace(marker, () => `${marker}${extra}`),
  );
  return path;
}
