import { spawn, execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HeadObjectCommand, NotFound, S3Client } from '@aws-sdk/client-s3';
import { mockClient } from 'aws-sdk-client-mock';
import type { PlannedSource } from '../../shared/contracts';
import {
  AmbiguousBranchError,
  SourceBranchMovedError,
  SourceBranchNotFoundError,
} from '../../tasks/resolve-source/errors';
import { parseRepositoryToken } from '../../tasks/resolve-source/handler';
import { branchReader } from '../../tasks/resolve-source/remote-refs';
import {
  pinnedVersion,
  resolveSource,
  SNAPSHOT_EXPIRY_MARGIN_DAYS,
  type ResolveSourceDeps,
} from '../../tasks/resolve-source/resolve-source';
import { expiryDate } from '../../tasks/shared/s3';

const GIT_ENV = {
  ...process.env,
  GIT_AUTHOR_NAME: 'resolve test',
  GIT_AUTHOR_EMAIL: 'test@stepdeploy.invalid',
  GIT_COMMITTER_NAME: 'resolve test',
  GIT_COMMITTER_EMAIL: 'test@stepdeploy.invalid',
  GIT_CONFIG_NOSYSTEM: '1',
  GIT_CONFIG_GLOBAL: '/dev/null',
};

function git(cwd: string, args: string[]): string {
  return execFileSync('git', args, { cwd, encoding: 'utf8', env: GIT_ENV, stdio: ['ignore', 'pipe', 'pipe'] }).trim();
}

/** A bare repository `<root>/app.git` with main, feature/x and feature/x-two, one commit each. */
function makeRepository(root: string): { bare: string; commits: Record<string, string> } {
  const work = join(root, 'work');
  const bare = join(root, 'app.git');
  execFileSync('git', ['init', '-q', '--bare', '-b', 'main', bare], { env: GIT_ENV });
  execFileSync('git', ['init', '-q', '-b', 'main', work], { env: GIT_ENV });
  const commits: Record<string, string> = {};
  for (const branch of ['main', 'feature/x', 'feature/x-two']) {
    git(work, ['checkout', '-q', '-B', branch]);
    writeFileSync(join(work, 'file.txt'), branch);
    git(work, ['add', '.']);
    git(work, ['commit', '-q', '-m', branch]);
    commits[branch] = git(work, ['rev-parse', 'HEAD']);
    git(work, ['push', '-q', bare, `HEAD:refs/heads/${branch}`]);
  }
  return { bare, commits };
}

/** Real git's smart HTTP server (git http-backend as CGI), protocol v2 included. */
async function serveOverHttp(
  projectRoot: string,
  authorization?: string,
): Promise<{ server: Server; base: string; requests: string[] }> {
  const requests: string[] = [];
  const backend = join(execFileSync('git', ['--exec-path'], { encoding: 'utf8' }).trim(), 'git-http-backend');
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    requests.push(`${req.method} ${url.pathname}`);
    // A private repository, as GitHub answers one: 401 without the right credentials.
    if (authorization !== undefined && req.headers.authorization !== authorization) {
      res.writeHead(401, { 'WWW-Authenticate': 'Basic realm="GitHub"' }).end();
      return;
    }
    const cgi = spawn(backend, [], {
      env: {
        ...GIT_ENV,
        GIT_PROJECT_ROOT: projectRoot,
        GIT_HTTP_EXPORT_ALL: '1',
        PATH_INFO: url.pathname,
        QUERY_STRING: url.search.slice(1),
        REQUEST_METHOD: req.method ?? 'GET',
        CONTENT_TYPE: req.headers['content-type'] ?? '',
        GIT_PROTOCOL: String(req.headers['git-protocol'] ?? ''),
        REMOTE_ADDR: '127.0.0.1',
      },
    });
    req.pipe(cgi.stdin);
    const chunks: Buffer[] = [];
    cgi.stdout.on('data', (c: Buffer) => chunks.push(c));
    cgi.on('close', () => {
      const out = Buffer.concat(chunks);
      const split = out.indexOf('\r\n\r\n');
      const head = out.subarray(0, split).toString('latin1');
      const headers: Record<string, string> = {};
      let status = 200;
      for (const line of head.split('\r\n')) {
        const [name, ...rest] = line.split(':');
        if (name === undefined || rest.length === 0) continue;
        if (name.toLowerCase() === 'status') status = Number(rest.join(':').trim().split(' ')[0]);
        else headers[name] = rest.join(':').trim();
      }
      res.writeHead(status, headers).end(out.subarray(split + 4));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, requests };
}

const s3Mock = mockClient(S3Client);
let root: string;
let repo: { bare: string; commits: Record<string, string> };
let lines: string[];

function deps(overrides: Partial<ResolveSourceDeps> = {}): ResolveSourceDeps {
  return {
    s3: new S3Client({ region: 'us-east-1' }),
    bucket: 'artifacts',
    readBranch: branchReader(),
    log: (l) => lines.push(l),
    ...overrides,
  };
}

function source(overrides: Partial<PlannedSource> = {}): PlannedSource {
  return {
    name: 'app',
    branch: 'main',
    repository: repo.bare,
    sourceType: 'LOCAL_GIT',
    path: '.',
    credentialsSecret: null,
    commit: null,
    ...overrides,
  };
}

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'stepdeploy-resolve-'));
  repo = makeRepository(root);
});
afterAll(() => rmSync(root, { recursive: true, force: true }));
beforeEach(() => {
  lines = [];
  s3Mock.reset();
  s3Mock.on(HeadObjectCommand).rejects(new NotFound({ message: 'not found', $metadata: { httpStatusCode: 404 } }));
});

describe('resolveSource with a repository on this machine (git ls-remote)', () => {
  it('pins the fetch to the commit the branch points to when no snapshot is stored', async () => {
    await expect(resolveSource(source({ branch: 'feature/x' }), deps())).resolves.toEqual({
      commit: repo.commits['feature/x'],
      sourceVersion: repo.commits['feature/x'],
      snapshotStored: false,
      snapshotKey: null,
    });
    expect(s3Mock.commandCalls(HeadObjectCommand)[0]!.args[0].input).toEqual({
      Bucket: 'artifacts',
      Key: `sources/app/${repo.commits['feature/x']}.zip`,
    });
  });

  it('reuses the stored snapshot of that commit', async () => {
    s3Mock.on(HeadObjectCommand).resolves({ ContentLength: 10, ETag: '"e"' });
    const resolved = await resolveSource(source(), deps());
    expect(resolved).toEqual({
      commit: repo.commits.main,
      sourceVersion: repo.commits.main,
      snapshotStored: true,
      snapshotKey: `sources/app/${repo.commits.main}.zip`,
    });
    expect(lines.join('\n')).toContain(`reusing s3://artifacts/sources/app/${repo.commits.main}.zip`);
  });

  describe('a stored snapshot near the end of its lifecycle', () => {
    const now = Date.parse('2026-12-05T12:00:00Z');
    const day = 24 * 60 * 60 * 1000;
    // As S3 sends x-amz-expiration: an RFC 1123 date, and the rule's id.
    const expiringIn = (days: number): string =>
      `expiry-date="${new Date(now + days * day).toUTCString()}", rule-id="expire-source-snapshots"`;

    it('is fetched again, pinned to the commit, when the bucket expires it within 16 days, and the log says when', async () => {
      s3Mock.on(HeadObjectCommand).resolves({ ContentLength: 10, ETag: '"e"', Expiration: expiringIn(3) });
      const resolved = await resolveSource(source(), deps({ now: () => now }));
      expect(resolved).toEqual({
        commit: repo.commits.main,
        sourceVersion: repo.commits.main,
        snapshotStored: false,
        snapshotKey: null,
      });
      expect(lines.join('\n')).toContain(
        `s3://artifacts/sources/app/${repo.commits.main}.zip expires on 2026-12-08T12:00:00.000Z, within ${SNAPSHOT_EXPIRY_MARGIN_DAYS} days (a redrive could outlive it): fetching it again`,
      );
    });

    it('is reused when its expiry is 16 days away or more', async () => {
      for (const days of [SNAPSHOT_EXPIRY_MARGIN_DAYS, 40]) {
        s3Mock.on(HeadObjectCommand).resolves({ ContentLength: 10, ETag: '"e"', Expiration: expiringIn(days) });
        await expect(resolveSource(source(), deps({ now: () => now }))).resolves.toMatchObject({
          snapshotStored: true,
        });
      }
      s3Mock
        .on(HeadObjectCommand)
        .resolves({ ContentLength: 10, ETag: '"e"', Expiration: expiringIn(SNAPSHOT_EXPIRY_MARGIN_DAYS - 0.001) });
      await expect(resolveSource(source(), deps({ now: () => now }))).resolves.toMatchObject({ snapshotStored: false });
    });

    it("reads S3's x-amz-expiration header, and nothing from a header without a date", () => {
      expect(
        expiryDate('expiry-date="Wed, 23 Dec 2026 00:00:00 GMT", rule-id="picture-deletion-rule"')?.toISOString(),
      ).toBe('2026-12-23T00:00:00.000Z');
      expect(expiryDate(undefined)).toBeUndefined();
      expect(expiryDate('NotImplemented')).toBeUndefined();
      expect(expiryDate('expiry-date="soon", rule-id="x"')).toBeUndefined();
    });
  });

  it('fails with SourceBranchNotFoundError naming the branch, the repository and the fix when the branch does not exist', async () => {
    const missing = resolveSource(source({ branch: 'feature' }), deps());
    await expect(missing).rejects.toBeInstanceOf(SourceBranchNotFoundError);
    await expect(missing).rejects.toThrow(
      `source app: branch "feature" does not exist in ${repo.bare}; push it, or start the deployment with another branch`,
    );
  });

  it('falls back to fetching the branch when the repository cannot be read', async () => {
    const resolved = await resolveSource(source({ repository: join(root, 'nowhere.git') }), deps());
    expect(resolved).toEqual({ commit: null, sourceVersion: 'main', snapshotStored: false, snapshotKey: null });
    expect(lines.join('\n')).toMatch(/git ls-remote .*nowhere\.git failed: .*; fetching branch main/);
    expect(s3Mock.commandCalls(HeadObjectCommand)).toHaveLength(0);
  });

  it.each(['$(touch pwned)', 'x;touch pwned', '`touch pwned`', '--upload-pack=touch pwned', '-x'])(
    'never hands the hostile branch %j to git',
    async (branch) => {
      const cwd = process.cwd();
      const scratch = mkdtempSync(join(tmpdir(), 'stepdeploy-hostile-'));
      process.chdir(scratch);
      try {
        await expect(resolveSource(source({ branch }), deps())).rejects.toThrow(
          `source app: branch ${JSON.stringify(branch)}`,
        );
        expect(existsSync(join(scratch, 'pwned'))).toBe(false);
      } finally {
        process.chdir(cwd);
        rmSync(scratch, { recursive: true, force: true });
      }
    },
  );
});

describe('resolveSource over git smart HTTP (protocol v2 ls-refs)', () => {
  let http: Awaited<ReturnType<typeof serveOverHttp>>;
  beforeAll(async () => {
    http = await serveOverHttp(root);
  });
  afterAll(async () => {
    http.server.closeAllConnections();
    await new Promise<void>((resolve) => http.server.close(() => resolve()));
  });

  it('reads the exact branch, not another branch it is a prefix of', async () => {
    const resolved = await resolveSource(
      source({ branch: 'feature/x', repository: `${http.base}/app.git`, sourceType: 'GITLAB_SELF_MANAGED' }),
      deps(),
    );
    expect(resolved.commit).toBe(repo.commits['feature/x']);
    // Discovery, then one ls-refs command: no pack, no clone.
    expect(http.requests).toEqual(['GET /app.git/info/refs', 'POST /app.git/git-upload-pack']);
  });

  it('answers SourceBranchNotFoundError when the server lists no such branch', async () => {
    await expect(
      resolveSource(
        source({ branch: 'feature', repository: `${http.base}/app.git`, sourceType: 'GITLAB_SELF_MANAGED' }),
        deps(),
      ),
    ).rejects.toBeInstanceOf(SourceBranchNotFoundError);
  });

  it('falls back to the branch when the server refuses (a private repository without credentials)', async () => {
    const refusing = createServer((_req, res) =>
      res.writeHead(401, { 'WWW-Authenticate': 'Basic realm="git"' }).end('auth required'),
    );
    await new Promise<void>((resolve) => refusing.listen(0, '127.0.0.1', resolve));
    try {
      const url = `http://127.0.0.1:${(refusing.address() as AddressInfo).port}/private.git`;
      const resolved = await resolveSource(source({ repository: url, sourceType: 'GITHUB_ENTERPRISE' }), deps());
      expect(resolved).toEqual({ commit: null, sourceVersion: 'main', snapshotStored: false, snapshotKey: null });
      expect(lines.join('\n')).toContain(`${url} did not list its branches`);
    } finally {
      refusing.close();
    }
  });
});

describe('resolveSource on a private repository with credentialsSecret', () => {
  const TOKEN = 'test-token-not-a-secret';
  let http: Awaited<ReturnType<typeof serveOverHttp>>;
  beforeAll(async () => {
    http = await serveOverHttp(root, `Basic ${Buffer.from(`x-access-token:${TOKEN}`).toString('base64')}`);
  });
  afterAll(async () => {
    http.server.closeAllConnections();
    await new Promise<void>((resolve) => http.server.close(() => resolve()));
  });
  const privateSource = (): PlannedSource =>
    source({
      repository: `${http.base}/app.git`,
      sourceType: 'GITHUB_ENTERPRISE',
      credentialsSecret: 'stepdeploy/github-read',
    });

  it("reads the branch with the token from the named secret (GitHub's x-access-token basic auth)", async () => {
    const asked: string[] = [];
    const resolved = await resolveSource(
      privateSource(),
      deps({
        tokenFrom: async (name) => {
          asked.push(name);
          return { token: TOKEN };
        },
      }),
    );
    expect(asked).toEqual(['stepdeploy/github-read']);
    expect(resolved.commit).toBe(repo.commits.main);
  });

  it('sends the user name the secret names instead of the provider default (a Bitbucket app password, a GitLab deploy token)', async () => {
    const other = await serveOverHttp(root, `Basic ${Buffer.from(`deploy-bot:${TOKEN}`).toString('base64')}`);
    try {
      const resolved = await resolveSource(
        source({
          repository: `${other.base}/app.git`,
          sourceType: 'BITBUCKET',
          credentialsSecret: 'stepdeploy/bitbucket-read',
        }),
        deps({ tokenFrom: async () => ({ token: TOKEN, username: 'deploy-bot' }) }),
      );
      expect(resolved.commit).toBe(repo.commits.main);
    } finally {
      other.server.closeAllConnections();
      other.server.close();
    }
  });

  it.each([
    ['tok', { token: 'tok' }],
    ['{"token": "tok"}', { token: 'tok' }],
    ['{"token": "tok", "username": "deploy-bot"}', { token: 'tok', username: 'deploy-bot' }],
    ['{"username": "deploy-bot"}', undefined],
    ['{not json', undefined],
    ['', undefined],
  ])('reads the secret value %j as %j', (value, expected) => {
    expect(parseRepositoryToken(value)).toEqual(expected);
  });

  it('without the token the repository refuses, and the fetch build resolves the branch', async () => {
    const resolved = await resolveSource(
      source({ repository: `${http.base}/app.git`, sourceType: 'GITHUB_ENTERPRISE' }),
      deps(),
    );
    expect(resolved).toEqual({ commit: null, sourceVersion: 'main', snapshotStored: false, snapshotKey: null });
  });

  it('an unreadable secret is a warning in the log, never the token, and the deployment goes on', async () => {
    const resolved = await resolveSource(
      privateSource(),
      deps({
        tokenFrom: async () =>
          Promise.reject(
            new Error('cannot read the repository credentials secret stepdeploy/github-read: AccessDeniedException'),
          ),
      }),
    );
    expect(resolved.sourceVersion).toBe('main');
    expect(lines[0]).toBe(
      `source app: WARNING cannot read the repository credentials secret stepdeploy/github-read: AccessDeniedException; reading ${http.base}/app.git without credentials`,
    );
    expect(lines.join('\n')).not.toContain(TOKEN);
  });
});

describe('what FetchSource builds, and when S3 or the git host do not answer', () => {
  it.each([
    ['GITHUB', 'refs/heads/feature/x^{c0ffee}'],
    ['GITHUB_ENTERPRISE', 'refs/heads/feature/x^{c0ffee}'],
    ['BITBUCKET', 'refs/heads/feature/x^{c0ffee}'],
    ['CODECOMMIT', 'refs/heads/feature/x^{c0ffee}'],
    ['GITLAB', 'c0ffee'],
    ['GITLAB_SELF_MANAGED', 'c0ffee'],
    ['LOCAL_GIT', 'c0ffee'],
  ] as const)(
    'pins a %s fetch to %s (branch and commit where CodeBuild takes both: it then downloads that branch only)',
    (sourceType, expected) => {
      expect(pinnedVersion({ branch: 'feature/x', sourceType }, 'c0ffee')).toBe(expected);
    },
  );

  it('fetches (pinned to the commit) when S3 cannot say whether the snapshot is stored, with a warning', async () => {
    s3Mock
      .on(HeadObjectCommand)
      .rejects(Object.assign(new Error('Access Denied'), { name: 'AccessDenied', $metadata: { httpStatusCode: 403 } }));
    const resolved = await resolveSource(source(), deps());
    expect(resolved).toEqual({
      commit: repo.commits.main,
      sourceVersion: repo.commits.main,
      snapshotStored: false,
      snapshotKey: null,
    });
    expect(lines[0]).toBe(
      `source app: WARNING cannot tell whether s3://artifacts/sources/app/${repo.commits.main}.zip is stored (AccessDenied); fetching it`,
    );
  });

  it('gives up on a git host that never answers, and the fetch build resolves the branch', async () => {
    const silent = createServer(() => undefined);
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    try {
      const url = `http://127.0.0.1:${(silent.address() as AddressInfo).port}/app.git`;
      const started = Date.now();
      const resolved = await resolveSource(
        source({ repository: url, sourceType: 'GITHUB_ENTERPRISE' }),
        deps({ readBranch: branchReader({ timeoutMs: 300 }) }),
      );
      // A 0.3 s timeout; the bound only catches a hang, with slack for a loaded machine.
      expect(Date.now() - started).toBeLessThan(20_000);
      expect(resolved.sourceVersion).toBe('main');
      expect(lines.join('\n')).toContain(`${url} did not list its branches: no answer within 0.3 s`);
    } finally {
      silent.closeAllConnections();
      silent.close();
    }
  });
});

it('does not try CodeCommit (its git needs SigV4 credentials): the fetch build resolves the branch', async () => {
  const resolved = await resolveSource(
    source({ repository: 'https://git-codecommit.eu-west-1.amazonaws.com/v1/repos/app', sourceType: 'CODECOMMIT' }),
    deps(),
  );
  expect(resolved).toEqual({ commit: null, sourceVersion: 'main', snapshotStored: false, snapshotKey: null });
  expect(lines).toEqual([
    'source app: CODECOMMIT repositories are not resolved before the fetch; fetching branch main',
  ]);
});

describe('a GitHub branch named pr/<number> that cannot be pinned', () => {
  const unreadable: ResolveSourceDeps['readBranch'] = async () => ({
    kind: 'unknown',
    reason: 'https://github.com/acme/app.git did not list its branches: HTTP 401',
  });

  it.each(['GITHUB', 'GITHUB_ENTERPRISE'] as const)(
    'fails on %s instead of letting CodeBuild build pull request 12',
    async (sourceType) => {
      const failure = resolveSource(
        source({ repository: 'https://github.com/acme/app.git', sourceType, branch: 'pr/12' }),
        deps({ readBranch: unreadable }),
      );

      await expect(failure).rejects.toThrow(AmbiguousBranchError);
      await expect(failure).rejects.toThrow(
        'source app: branch "pr/12" of https://github.com/acme/app.git cannot be fetched by its name: CodeBuild reads "pr/<number>" as a pull request',
      );
      await expect(failure).rejects.toThrow(
        '(https://github.com/acme/app.git did not list its branches: HTTP 401); give stepdeploy read access to the repository (credentialsSecret',
      );
    },
  );

  it.each([
    ['GITLAB', 'pr/12'],
    ['GITHUB', 'pr/12-fix'],
    ['GITHUB', 'team/pr/12'],
  ] as const)(
    'fetches %s branch %s by its name, which CodeBuild does not read as a pull request',
    async (sourceType, branch) => {
      const resolved = await resolveSource(
        source({ repository: 'https://github.com/acme/app.git', sourceType, branch }),
        deps({ readBranch: unreadable }),
      );

      expect(resolved).toEqual({ commit: null, sourceVersion: branch, snapshotStored: false, snapshotKey: null });
    },
  );
});

describe("a source pinned to a commit (a push's deployment)", () => {
  it('deploys the pinned commit while it is the branch head, reusing its snapshot', async () => {
    s3Mock.on(HeadObjectCommand).resolves({ ContentLength: 10, ETag: '"e"' });

    const resolved = await resolveSource(source({ branch: 'feature/x', commit: repo.commits['feature/x']! }), deps());

    expect(resolved).toEqual({
      commit: repo.commits['feature/x'],
      sourceVersion: repo.commits['feature/x'],
      snapshotStored: true,
      snapshotKey: `sources/app/${repo.commits['feature/x']}.zip`,
    });
  });

  it('fails SourceBranchMovedError when the branch has moved on: no commit the branch does not hold now ships', async () => {
    const other = repo.commits.main!;

    const resolving = resolveSource(source({ branch: 'feature/x', commit: other }), deps());

    await expect(resolving).rejects.toThrow(SourceBranchMovedError);
    await expect(resolving).rejects.toThrow(
      `source app: this deployment is pinned to commit ${other} of branch "feature/x", but the branch is now at ${repo.commits['feature/x']}`,
    );
    expect(s3Mock.commandCalls(HeadObjectCommand)).toHaveLength(0);
  });

  it('fails SourceBranchNotFoundError when the pushed branch was deleted since', async () => {
    await expect(resolveSource(source({ branch: 'gone', commit: repo.commits.main! }), deps())).rejects.toThrow(
      SourceBranchNotFoundError,
    );
  });

  it('fetches a repository it cannot read at the branch and the pinned commit, never from a stored snapshot', async () => {
    s3Mock.on(HeadObjectCommand).resolves({ ContentLength: 10, ETag: '"e"' });
    const commit = 'c'.repeat(40);

    const resolved = await resolveSource(
      source({
        repository: 'https://git-codecommit.eu-west-1.amazonaws.com/v1/repos/app',
        sourceType: 'CODECOMMIT',
        commit,
      }),
      deps(),
    );

    expect(resolved).toEqual({
      commit: null,
      sourceVersion: `refs/heads/main^{${commit}}`,
      snapshotStored: false,
      snapshotKey: null,
    });
    expect(s3Mock.commandCalls(HeadObjectCommand)).toHaveLength(0);
  });
});
