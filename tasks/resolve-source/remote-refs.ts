import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { listServerRefs } from 'isomorphic-git';
import nodeHttp from 'isomorphic-git/http/node';
import { HTTP_GIT_SOURCE_TYPES, type SourceType } from '../../shared/config';

/**
 * The commit a branch points to in a remote repository, read without cloning it — what
 * `git ls-remote <repository> refs/heads/<branch>` prints.
 *
 * - `found`: the repository answered with the branch's commit;
 * - `missing`: the repository answered, and has no such branch;
 * - `unknown`: no answer (no credentials for a private repository, a network error, a source type
 *   this cannot read). The caller fetches by branch as before: resolution only saves work.
 */
export type BranchLookup =
  | { readonly kind: 'found'; readonly commit: string }
  | { readonly kind: 'missing' }
  | { readonly kind: 'unknown'; readonly reason: string };

/** HTTPS credentials for a private repository: a token, and the user name to send with it when the provider's default does not fit. */
export interface RepositoryToken {
  readonly token: string;
  /** e.g. a Bitbucket app password's account name, a GitLab deploy token's name. @default the provider's token user (TOKEN_USER) */
  readonly username?: string;
}

export type ReadBranch = (
  repository: string,
  sourceType: SourceType,
  branch: string,
  credentials?: RepositoryToken,
) => Promise<BranchLookup>;

const COMMIT = /^[0-9a-f]{40}$/;
const LS_REMOTE_TIMEOUT_MS = 20_000;

/**
 * The user name each provider expects with a token over HTTPS basic auth (GitHub: any, by
 * convention x-access-token; GitLab: oauth2 for OAuth and personal tokens; Bitbucket: x-token-auth
 * for access tokens).
 */
const TOKEN_USER: Readonly<Partial<Record<SourceType, string>>> = {
  GITHUB: 'x-access-token',
  GITHUB_ENTERPRISE: 'x-access-token',
  GITLAB: 'oauth2',
  GITLAB_SELF_MANAGED: 'oauth2',
  BITBUCKET: 'x-token-auth',
};

export interface ReadBranchDeps {
  /** isomorphic-git's HTTP client; tests give a recorded server. @default isomorphic-git/http/node */
  readonly http?: Parameters<typeof listServerRefs>[0]['http'];
  /** How long the HTTPS lookup may take before it counts as no answer. @default HTTP_TIMEOUT_MS */
  readonly timeoutMs?: number;
}

/** Well inside ResolveSource's 60 s TimeoutSeconds. */
export const HTTP_TIMEOUT_MS = 15_000;

export function branchReader(deps: ReadBranchDeps = {}): ReadBranch {
  return async (repository, sourceType, branch, credentials) => {
    const ref = `refs/heads/${branch}`;
    if (sourceType === 'LOCAL_GIT') return lsRemoteLocal(repository, ref);
    if (HTTP_GIT_SOURCE_TYPES.has(sourceType) && /^https?:\/\//.test(repository)) {
      const user = credentials?.username ?? TOKEN_USER[sourceType] ?? 'x-access-token';
      const headers = credentials
        ? { Authorization: `Basic ${Buffer.from(`${user}:${credentials.token}`).toString('base64')}` }
        : undefined;
      return lsRefsHttp(repository, ref, deps, headers);
    }
    return { kind: 'unknown', reason: `${sourceType} repositories are not resolved before the fetch` };
  };
}

/**
 * git's smart HTTP protocol v2 `ls-refs` with a ref-prefix: the server sends one ref, not all of
 * them, and no pack. Without credentials this answers for public repositories; a private one
 * answers 401 and the lookup is `unknown`. (CodeCommit needs SigV4-signed git credentials: not
 * read here; its GetBranch API would be.)
 */
async function lsRefsHttp(
  repository: string,
  ref: string,
  deps: ReadBranchDeps,
  headers?: Record<string, string>,
): Promise<BranchLookup> {
  const timeoutMs = deps.timeoutMs ?? HTTP_TIMEOUT_MS;
  let timer: NodeJS.Timeout | undefined;
  // isomorphic-git's HTTP client has no timeout: a host that hangs must not hold the Task until its own timeout.
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs / 1000} s`)), timeoutMs);
  });
  try {
    const listing = listServerRefs({
      http: deps.http ?? nodeHttp,
      url: repository,
      protocolVersion: 2,
      prefix: ref,
      ...(headers ? { headers } : {}),
    });
    listing.catch(() => undefined);
    const refs = await Promise.race([listing, timeout]);
    // The prefix refs/heads/a also matches refs/heads/a/b: keep the exact ref.
    return lookupOf(refs.filter((r) => r.ref === ref).map((r) => r.oid));
  } catch (err) {
    return { kind: 'unknown', reason: `${repository} did not list its branches: ${(err as Error).message}` };
  } finally {
    clearTimeout(timer);
  }
}

/**
 * A repository on this machine (the local runtime): real git, no shell. The branch passed the
 * branch-name rule already and sits after `--` inside `refs/heads/…`, so git can never read it as
 * an option.
 */
function lsRemoteLocal(repository: string, ref: string): Promise<BranchLookup> {
  const path = repository.startsWith('file://') ? fileURLToPath(repository) : repository;
  return new Promise((resolve) => {
    execFile(
      'git',
      ['ls-remote', '--', path, ref],
      { timeout: LS_REMOTE_TIMEOUT_MS, env: { ...process.env, GIT_TERMINAL_PROMPT: '0' }, maxBuffer: 1024 * 1024 },
      (error, stdout, stderr) => {
        if (error) {
          resolve({
            kind: 'unknown',
            reason: `git ls-remote ${path} failed: ${stderr.trim().split('\n')[0] || error.message}`,
          });
          return;
        }
        const commits = stdout
          .split('\n')
          .map((line) => line.split('\t'))
          .filter(([, name]) => name === ref)
          .map(([oid]) => oid ?? '');
        resolve(lookupOf(commits));
      },
    );
  });
}

function lookupOf(commits: ReadonlyArray<string>): BranchLookup {
  const [commit] = commits;
  if (commit === undefined) return { kind: 'missing' };
  if (!COMMIT.test(commit))
    return { kind: 'unknown', reason: `the repository answered ${JSON.stringify(commit)}, not a commit id` };
  return { kind: 'found', commit };
}
