import type { S3Client } from '@aws-sdk/client-s3';
import { branchNameViolation } from '../../shared/branch-name';
import type { SourceType } from '../../shared/config';
import type { PlannedSource, ResolvedSource } from '../../shared/contracts';
import { headObject } from '../shared/s3';
import { AmbiguousBranchError, SourceBranchMovedError, SourceBranchNotFoundError } from './errors';
import type { ReadBranch, RepositoryToken } from './remote-refs';

export interface ResolveSourceDeps {
  readonly s3: S3Client;
  readonly bucket: string;
  readonly readBranch: ReadBranch;
  /** The token in a Secrets Manager secret, by secret name (cached per container). */
  readonly tokenFrom?: (secretName: string) => Promise<RepositoryToken>;
  /** Where a line about the outcome goes (CloudWatch Logs on Lambda). @default console.log */
  readonly log?: (line: string) => void;
  /** The time now, against which a snapshot's expiry is judged. @default Date.now */
  readonly now?: () => number;
}

/**
 * A stored snapshot that the bucket's lifecycle expires within this long is fetched again rather
 * than reused: the fetch build writes it anew, and its expiry starts over. Reused, it could
 * expire under this execution: CombineConfigAndCode reads it, and so does that state again when
 * the execution is redriven, which Step Functions allows up to 14 days after the execution
 * stopped; this definition stops an execution within 24 hours (TimeoutSeconds 86400), and a day
 * more covers S3 counting lifecycle days from midnight UTC. That covers a redrive within 14 days
 * of the execution's first stop; each redrive that fails again opens 14 more days, which no
 * fixed margin covers. With the default expiry of `sources/` (180 days,
 * infra/artifacts-bucket.ts, which refuses one of this margin or less) a snapshot is reused for
 * its first 164 days.
 */
export const SNAPSHOT_EXPIRY_MARGIN_DAYS = 16;
const DAY_MS = 24 * 60 * 60 * 1000;

/**
 * The token of a source that names a credentialsSecret. A secret that cannot be read does not
 * fail the deployment (the fetch build has its own credentials): it is logged, loudly, and the
 * repository is read without it.
 */
async function credentialsFor(
  source: PlannedSource,
  deps: ResolveSourceDeps,
  log: (line: string) => void,
): Promise<RepositoryToken | undefined> {
  if (source.credentialsSecret === null) return undefined;
  if (deps.tokenFrom === undefined) {
    log(`source ${source.name}: no way to read secrets here; credentialsSecret ${source.credentialsSecret} not used`);
    return undefined;
  }
  try {
    return await deps.tokenFrom(source.credentialsSecret);
  } catch (err) {
    log(`source ${source.name}: WARNING ${(err as Error).message}; reading ${source.repository} without credentials`);
    return undefined;
  }
}

export function snapshotKeyOf(source: string, commit: string): string {
  return `sources/${source}/${commit}.zip`;
}

/**
 * ResolveSource: the commit a source's branch points to, before anything is cloned, and whether
 * its snapshot `sources/<source>/<commit>.zip` is already stored — a second deployment of the
 * same commit then skips the fetch build. The fetch build, when it runs, is pinned to the
 * resolved commit, so that the snapshot is of the commit resolved here even if the branch
 * moves in between.
 *
 * When the repository cannot be read from here (private repository without credentials for
 * this function, CodeCommit, a network error) the fetch build runs at the branch, as it would
 * without this state: resolution saves work, it is never needed for a deployment to proceed.
 */
export async function resolveSource(source: PlannedSource, deps: ResolveSourceDeps): Promise<ResolvedSource> {
  const log = deps.log ?? ((line: string) => console.log(line));
  // ValidateInput checked the branch already; checked again because it reaches git's arguments.
  const violation = branchNameViolation(source.branch);
  if (violation !== undefined)
    throw new Error(`source ${source.name}: branch ${JSON.stringify(source.branch)} ${violation}`);

  const credentials = await credentialsFor(source, deps, log);
  const lookup = await deps.readBranch(source.repository, source.sourceType, source.branch, credentials);
  if (lookup.kind === 'missing') {
    throw new SourceBranchNotFoundError(
      `source ${source.name}: branch ${JSON.stringify(source.branch)} does not exist in ${source.repository}; ` +
        'push it, or start the deployment with another branch',
    );
  }
  if (lookup.kind === 'unknown' && source.commit !== null) {
    // The fetch build checks out the pinned commit of the branch (refs/heads/<branch>^{<commit>} where
    // CodeBuild takes it); not reused from a stored snapshot, which would skip that check.
    log(`source ${source.name}: ${lookup.reason}; fetching ${source.branch} at the pinned commit ${source.commit}`);
    return {
      commit: null,
      sourceVersion: pinnedVersion(source, source.commit),
      snapshotStored: false,
      snapshotKey: null,
    };
  }
  if (lookup.kind === 'unknown') {
    if (PULL_REQUEST_TYPES.has(source.sourceType) && PULL_REQUEST_VERSION.test(source.branch)) {
      throw new AmbiguousBranchError(
        `source ${source.name}: branch ${JSON.stringify(source.branch)} of ${source.repository} cannot be fetched by its name: ` +
          `CodeBuild reads "pr/<number>" as a pull request of a GitHub repository, and the branch could not be pinned to its commit (${lookup.reason}); ` +
          'give stepdeploy read access to the repository (credentialsSecret in stepdeploy.config.yml), or deploy a branch with another name',
      );
    }
    log(`source ${source.name}: ${lookup.reason}; fetching branch ${source.branch}`);
    return { commit: null, sourceVersion: source.branch, snapshotStored: false, snapshotKey: null };
  }
  if (source.commit !== null && source.commit !== lookup.commit) {
    throw new SourceBranchMovedError(
      `source ${source.name}: this deployment is pinned to commit ${source.commit} of branch ${JSON.stringify(source.branch)}, ` +
        `but the branch is now at ${lookup.commit} in ${source.repository}: a later push moved it, and its own deployment ships it; ` +
        'start a deployment without the pin to deploy the branch as it is',
    );
  }
  const snapshotKey = snapshotKeyOf(source.name, lookup.commit);
  const snapshot = await storedSnapshot(deps, snapshotKey, source, log);
  const stored = snapshot.kind === 'stored';
  const outcome = stored
    ? `reusing s3://${deps.bucket}/${snapshotKey}`
    : snapshot.kind === 'expiring'
      ? `s3://${deps.bucket}/${snapshotKey} expires on ${snapshot.expires.toISOString()}, within ${SNAPSHOT_EXPIRY_MARGIN_DAYS} days (a redrive could outlive it): fetching it again`
      : 'fetching it';
  log(`source ${source.name}: ${source.branch} is ${lookup.commit}; ${outcome}`);
  const sourceVersion = pinnedVersion(source, lookup.commit);
  return { commit: lookup.commit, sourceVersion, snapshotStored: stored, snapshotKey: stored ? snapshotKey : null };
}

type StoredSnapshot = { readonly kind: 'stored' | 'absent' } | { readonly kind: 'expiring'; readonly expires: Date };

/**
 * Whether the snapshot is stored, and far enough from its expiry to be reused (see
 * SNAPSHOT_EXPIRY_MARGIN_DAYS). An S3 error other than "not found" (throttling, a 403) means
 * "fetch it": the fetch build writes the same key, so nothing is lost but the time saved.
 */
async function storedSnapshot(
  deps: ResolveSourceDeps,
  key: string,
  source: PlannedSource,
  log: (line: string) => void,
): Promise<StoredSnapshot> {
  let head: Awaited<ReturnType<typeof headObject>>;
  try {
    head = await headObject(deps.s3, deps.bucket, key);
  } catch (err) {
    log(
      `source ${source.name}: WARNING cannot tell whether s3://${deps.bucket}/${key} is stored (${(err as Error).name}); fetching it`,
    );
    return { kind: 'absent' };
  }
  if (head === undefined) return { kind: 'absent' };
  const now = deps.now?.() ?? Date.now();
  if (head.expires !== undefined && head.expires.getTime() - now < SNAPSHOT_EXPIRY_MARGIN_DAYS * DAY_MS)
    return { kind: 'expiring', expires: head.expires };
  return { kind: 'stored' };
}

/** Source types whose CodeBuild source version `pr/<number>` means a pull request (ProjectSourceVersion, CodeBuild API reference). */
const PULL_REQUEST_TYPES: ReadonlySet<SourceType> = new Set(['GITHUB', 'GITHUB_ENTERPRISE']);
const PULL_REQUEST_VERSION = /^pr\/\d+$/;

/** Source types whose CodeBuild source version may be `refs/heads/<branch>^{<commit>}`. */
const REF_AND_COMMIT_TYPES: ReadonlySet<SourceType> = new Set([
  'GITHUB',
  'GITHUB_ENTERPRISE',
  'BITBUCKET',
  'CODECOMMIT',
]);

/**
 * The version FetchSource builds: the commit, with its branch where CodeBuild takes both
 * (`refs/heads/<branch>^{<commit>}`: CodeBuild then downloads that branch only, not the whole
 * repository, to find the commit — "Source version sample", CodeBuild user guide). GitLab and
 * local repositories take the commit id alone.
 */
export function pinnedVersion(source: Pick<PlannedSource, 'branch' | 'sourceType'>, commit: string): string {
  return REF_AND_COMMIT_TYPES.has(source.sourceType) ? `refs/heads/${source.branch}^{${commit}}` : commit;
}
