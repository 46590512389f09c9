import { existsSync } from 'node:fs';
import { GetObjectCommand, paginateListObjectsV2 } from '@aws-sdk/client-s3';
import { loadConfig } from '../../shared/config';
import type { DeploymentRecord } from '../../shared/contracts';
import { usageError } from '../errors';
import { ExitCode } from '../exit-codes';
import { println, type Io } from '../io';
import type { Target } from '../target';

/** `status`: what is deployed where, from `deployments/<environment>/current.json` in the artifacts bucket. */

export interface EnvironmentStatus {
  readonly environment: string;
  readonly deployed: DeploymentRecord | null;
  /** With `--history`: the newest entries of `deployments/<environment>/history/`, newest first. */
  readonly history?: ReadonlyArray<DeploymentRecord>;
}

export interface StatusOptions {
  readonly env?: string;
  readonly json?: boolean;
  readonly history?: boolean;
  /** How many history entries per environment (1-1000). */
  readonly limit?: number;
}

/** How many history entries `status --history` and the console show per environment by default. */
export const HISTORY_ENTRIES = 20;

function isNotFound(err: unknown): boolean {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
  return e.name === 'NoSuchKey' || e.name === 'NotFound' || e.$metadata?.httpStatusCode === 404;
}

/** The config's environments; without a config, the ones the bucket has records for. */
async function environmentsOf(target: Target, bucket: string, configPath: string): Promise<string[]> {
  if (existsSync(configPath)) return Object.keys(loadConfig(configPath).environments);
  const found: string[] = [];
  const pages = paginateListObjectsV2(
    { client: target.s3 },
    { Bucket: bucket, Prefix: 'deployments/', Delimiter: '/' },
  );
  for await (const page of pages) {
    for (const p of page.CommonPrefixes ?? []) if (p.Prefix) found.push(p.Prefix.slice('deployments/'.length, -1));
  }
  return found;
}

/** The keys of `deployments/<environment>/history/`, oldest first (a history key starts with the deploy time). */
export async function historyKeys(target: Target, bucket: string, environment: string): Promise<string[]> {
  const keys: string[] = [];
  const pages = paginateListObjectsV2(
    { client: target.s3 },
    { Bucket: bucket, Prefix: `deployments/${environment}/history/` },
  );
  for await (const page of pages) for (const object of page.Contents ?? []) if (object.Key) keys.push(object.Key);
  return keys.sort();
}

/** The newest `limit` entries of an environment's deployment history, newest first. */
export async function readHistory(
  target: Target,
  bucket: string,
  environment: string,
  limit = HISTORY_ENTRIES,
): Promise<DeploymentRecord[]> {
  const newest = (await historyKeys(target, bucket, environment)).reverse().slice(0, limit);
  return Promise.all(
    newest.map(async (Key) => {
      const object = await target.s3.send(new GetObjectCommand({ Bucket: bucket, Key }));
      return JSON.parse(await object.Body!.transformToString()) as DeploymentRecord;
    }),
  );
}

export async function readStatus(target: Target, configPath: string, env?: string): Promise<EnvironmentStatus[]> {
  const bucket = target.bucket();
  const environments = await environmentsOf(target, bucket, configPath);
  if (env !== undefined && existsSync(configPath) && !environments.includes(env)) {
    throw usageError(
      `--env ${JSON.stringify(env)} is not a configured environment; one of: ${environments.join(', ')}`,
    );
  }
  const wanted = env !== undefined ? [env] : environments;
  return Promise.all(
    wanted.map(async (environment): Promise<EnvironmentStatus> => {
      try {
        const object = await target.s3.send(
          new GetObjectCommand({ Bucket: bucket, Key: `deployments/${environment}/current.json` }),
        );
        return { environment, deployed: JSON.parse(await object.Body!.transformToString()) as DeploymentRecord };
      } catch (err) {
        if (isNotFound(err)) return { environment, deployed: null };
        throw err;
      }
    }),
  );
}

function ago(iso: string, now: number): string {
  const minutes = Math.round((now - Date.parse(iso)) / 60_000);
  if (minutes < 1) return 'just now';
  if (minutes < 120) return `${minutes} min ago`;
  const hours = Math.round(minutes / 60);
  return hours < 48 ? `${hours} h ago` : `${Math.round(hours / 24)} days ago`;
}

/** "(a rollback to the build of X)", ", requested by R", ", approved by A ("comment")": what marks a deployment. */
function marks(record: DeploymentRecord): { rollback: string; by: string; approved: string } {
  const comment = record.approval?.comment ? ` (${JSON.stringify(record.approval.comment)})` : '';
  return {
    rollback: record.redeployOf ? ` (a rollback to the build of ${record.redeployOf})` : '',
    by: record.requestedBy ? `, requested by ${record.requestedBy}` : '',
    approved: record.approval ? `, approved by ${record.approval.approvedBy}${comment}` : '',
  };
}

export function statusLines(statuses: ReadonlyArray<EnvironmentStatus>, now = Date.now()): string[] {
  const width = Math.max(...statuses.map((s) => s.environment.length));
  const lines: string[] = [];
  for (const { environment, deployed, history } of statuses) {
    if (!deployed) lines.push(`${environment.padEnd(width)}  nothing deployed yet`);
    else {
      const { rollback, by, approved } = marks(deployed);
      lines.push(
        `${environment.padEnd(width)}  deployed ${deployed.deployedAt} (${ago(deployed.deployedAt, now)}) by execution ${deployed.execution}${rollback}${by}${approved}`,
      );
      const nameWidth = Math.max(...deployed.sources.map((s) => s.name.length));
      const branchWidth = Math.max(...deployed.sources.map((s) => s.branch.length));
      for (const source of deployed.sources)
        lines.push(`  ${source.name.padEnd(nameWidth)}  ${source.branch.padEnd(branchWidth)}  ${source.commit}`);
    }
    if (history !== undefined) lines.push(...historyLines(history));
  }
  return lines;
}

/** One line per deployment, newest first: when, which execution, each source's branch@commit, its marks. */
export function historyLines(history: ReadonlyArray<DeploymentRecord>): string[] {
  if (history.length === 0) return ['  history: none'];
  const lines = [`  history (${history.length} newest first):`];
  const executionWidth = Math.max(...history.map((h) => h.execution.length));
  for (const record of history) {
    const { rollback, by, approved } = marks(record);
    const sources = record.sources.map((s) => `${s.name}=${s.branch}@${s.commit.slice(0, 7)}`).join(' ');
    lines.push(
      `    ${record.deployedAt}  ${record.execution.padEnd(executionWidth)}  ${sources}${rollback}${by}${approved}`,
    );
  }
  return lines;
}

export async function runStatus(target: Target, configPath: string, options: StatusOptions, io: Io): Promise<ExitCode> {
  if (options.limit !== undefined && !options.history)
    throw usageError('--limit counts history entries: use it with --history');
  const read = await readStatus(target, configPath, options.env);
  const statuses = options.history
    ? await Promise.all(
        read.map(async (status) => ({
          ...status,
          history: await readHistory(target, target.bucket(), status.environment, options.limit),
        })),
      )
    : read;
  if (options.json) println(io, JSON.stringify(statuses, null, 2));
  else if (statuses.length === 0) println(io, `no deployments recorded in s3://${target.bucket()}/deployments/`);
  else for (const line of statusLines(statuses)) println(io, line);
  return ExitCode.Ok;
}
