import { execFileSync } from 'node:child_process';
import { parseCodeCommit } from '../../tasks/receive-push/providers/codecommit';
import {
  executionNameFor,
  MAX_WEBHOOK_BODY_BYTES,
  receiveCodeCommitEvent,
  receiveWebhook,
} from '../../tasks/receive-push/receive-push';
import { signatureProblem, signBody } from '../../tasks/receive-push/signature';
import { repositoryKey } from '../../tasks/receive-push/triggers';
import { executionNameViolation } from '../../shared/execution-name';
import {
  bitbucketPush,
  branchChange,
  COMMIT,
  config,
  fakeDeps,
  githubPush,
  gitlabPush,
  octokitSignatures,
  octokitVerify,
  SECRET,
  signed,
} from './receive-push/fixtures';

describe('a GitHub push', () => {
  test('to a feature branch starts acceptance: that branch, pinned to the pushed commit, named after the delivery', async () => {
    const deps = fakeDeps();

    const response = await receiveWebhook(signed('github', githubPush()), deps);

    expect(response.statusCode).toBe(200);
    const name = `acceptance-0123456-${executionNameFor('acceptance', { repositoryUrls: [], branch: 'feature/login', commit: COMMIT, pusher: '' }, 'github', 'd-1').split('-').at(-1)}`;
    expect(deps.started).toEqual([
      {
        name,
        input: {
          environment: 'acceptance',
          branches: { app: 'feature/login' },
          commits: { app: COMMIT },
          requestedBy: 'push by alice (github)',
        },
      },
    ]);
    expect(JSON.parse(response.body)).toEqual({
      started: [{ environment: 'acceptance', execution: name, branch: 'feature/login', commit: COMMIT }],
      alreadyStarted: [],
      ignored: [],
    });
  });

  test('to main starts acceptance and preproduction; production has no trigger', async () => {
    const deps = fakeDeps();

    await receiveWebhook(signed('github', githubPush({ ref: 'refs/heads/main' })), deps);

    expect(deps.started.map((s) => s.input.environment)).toEqual(['acceptance', 'preproduction']);
    for (const { name } of deps.started) expect(executionNameViolation(name)).toBeUndefined();
  });

  test('delivered twice (a redelivery or a replay) starts one execution', async () => {
    const deps = fakeDeps();
    const request = signed('github', githubPush());

    await receiveWebhook(request, deps);
    const again = await receiveWebhook(request, deps);

    expect(deps.started).toHaveLength(1);
    expect(JSON.parse(again.body)).toEqual({
      started: [],
      alreadyStarted: [{ environment: 'acceptance', execution: deps.started[0]!.name }],
      ignored: [],
    });
  });

  test('another delivery of another push of the same branch starts another execution', async () => {
    const deps = fakeDeps();

    await receiveWebhook(signed('github', githubPush()), deps);
    await receiveWebhook(signed('github', githubPush(), { 'x-github-delivery': 'd-2' }), deps);

    expect(new Set(deps.started.map((s) => s.name)).size).toBe(2);
  });

  test('an excluded branch, a repository no source is, and a branch no trigger takes start nothing, saying why', async () => {
    const deps = fakeDeps();

    const excluded = await receiveWebhook(signed('github', githubPush({ ref: 'refs/heads/wip/x' })), deps);
    const elsewhere = await receiveWebhook(
      signed('github', githubPush({ repository: { clone_url: 'https://github.com/acme/other.git' } })),
      deps,
    );

    expect(deps.started).toEqual([]);
    expect(JSON.parse(excluded.body).ignored).toEqual(['no trigger of app takes branch "wip/x"']);
    expect(JSON.parse(elsewhere.body).ignored).toEqual([
      'no configured github source is the repository "https://github.com/acme/other.git"',
    ]);
  });

  test.each([
    ['a ping', { 'x-github-event': 'ping' }, githubPush(), 'a ping event: the webhook reaches stepdeploy'],
    ['another event', { 'x-github-event': 'issues' }, githubPush(), 'a "issues" event, not a push'],
    ['a tag push', {}, githubPush({ ref: 'refs/tags/v1' }), 'a tag push ("refs/tags/v1"): only branch pushes deploy'],
    [
      'a branch deletion',
      {},
      githubPush({ deleted: true, after: '0'.repeat(40) }),
      'a branch deletion ("refs/heads/feature/login")',
    ],
    ['a note ref', {}, githubPush({ ref: 'refs/notes/commits' }), 'a push to "refs/notes/commits", not to a branch'],
  ])('%s answers 200 with the reason and starts nothing', async (_what, headers, payload, reason) => {
    const deps = fakeDeps();

    const response = await receiveWebhook(signed('github', payload, headers), deps);

    expect(response.statusCode).toBe(200);
    expect(JSON.parse(response.body).ignored).toEqual([reason]);
    expect(deps.started).toEqual([]);
    expect(deps.lines).toEqual([`github delivery ignored: ${reason}`]);
  });
});

describe('branch names the input rules refuse: nothing starts, the reason is logged', () => {
  test.each([
    ['feature/a$b', 'branch "feature/a$b" contains "$"; only A-Z a-z 0-9 . _ / - are allowed'],
    ['--upload-pack=x', 'branch "--upload-pack=x" contains "="; only A-Z a-z 0-9 . _ / - are allowed'],
    ['-x', 'branch "-x" must not start with "-" (it would read as a command-line option)'],
    ['feature/\u0430pp', 'branch "feature/\\u0430pp" contains U+0430; only A-Z a-z 0-9 . _ / - are allowed'],
    ['a..b', 'branch "a..b" must not contain ".."'],
    ['x'.repeat(300), `branch "${'x'.repeat(200)}" must be at most 200 characters (got 300)`],
  ])('%j', async (branch, reason) => {
    const deps = fakeDeps();

    const response = await receiveWebhook(signed('github', githubPush({ ref: `refs/heads/${branch}` })), deps);

    expect(response.statusCode).toBe(200);
    expect(JSON.parse(response.body).ignored).toEqual([reason]);
    expect(deps.started).toEqual([]);
    expect(deps.lines).toContain(`github push not deployed: ${reason}`);
  });

  test('a commit that is not a full commit id', async () => {
    const deps = fakeDeps();

    const response = await receiveWebhook(signed('github', githubPush({ after: 'HEAD~1' })), deps);

    expect(JSON.parse(response.body).ignored).toEqual([
      'acceptance: commits.app: "HEAD~1" must be a full commit id: 40 (or 64) lowercase hexadecimal digits',
    ]);
    expect(deps.started).toEqual([]);
  });

  test('a pusher name with control and bidirectional characters is cleaned, not refused', async () => {
    const deps = fakeDeps();

    await receiveWebhook(signed('github', githubPush({ pusher: { name: 'mal\u202elory\n\u0000' } })), deps);

    expect(deps.started[0]!.input.requestedBy).toBe('push by mallory (github)');
  });
});

describe('signatures', () => {
  test.each([
    [
      'no signature',
      { 'x-hub-signature-256': undefined },
      'no X-Hub-Signature-256 header: set the secret on the webhook',
    ],
    [
      'another secret',
      { 'x-hub-signature-256': signBody(JSON.stringify(githubPush()), 'other') },
      'X-Hub-Signature-256 does not match the body',
    ],
    [
      'a SHA-1 signature',
      { 'x-hub-signature-256': `sha1=${'a'.repeat(40)}` },
      'X-Hub-Signature-256 is not "sha256=" followed by 64 hexadecimal digits',
    ],
    [
      'a short signature',
      { 'x-hub-signature-256': 'sha256=abcd' },
      'X-Hub-Signature-256 is not "sha256=" followed by 64 hexadecimal digits',
    ],
  ])('GitHub with %s: 401 and nothing started', async (_what, headers, message) => {
    const deps = fakeDeps();
    const request = signed('github', githubPush());

    const response = await receiveWebhook(
      { ...request, headers: { ...request.headers, ...headers } as Record<string, string | undefined> },
      deps,
    );

    expect(response).toEqual({ statusCode: 401, body: JSON.stringify({ message }) });
    expect(deps.started).toEqual([]);
  });

  test('a body changed after signing: 401', async () => {
    const deps = fakeDeps();
    const request = signed('github', githubPush());
    const tampered = Buffer.from(request.body.toString().replace('feature/login', 'main'));

    const response = await receiveWebhook({ ...request, body: tampered }, deps);

    expect(response.statusCode).toBe(401);
    expect(deps.started).toEqual([]);
  });

  test('GitLab with a wrong or missing token, Bitbucket with a wrong signature: 401', async () => {
    const deps = fakeDeps();

    const wrongToken = await receiveWebhook(signed('gitlab', gitlabPush(), { 'x-gitlab-token': 'guess' }), deps);
    const noToken = signed('gitlab', gitlabPush());
    const missing = await receiveWebhook(
      { ...noToken, headers: { ...noToken.headers, 'x-gitlab-token': undefined } },
      deps,
    );
    const bitbucket = await receiveWebhook(
      signed('bitbucket', bitbucketPush([branchChange('main', COMMIT)]), {}, 'not-the-secret'),
      deps,
    );

    expect([wrongToken.statusCode, missing.statusCode, bitbucket.statusCode]).toEqual([401, 401, 401]);
    expect(deps.started).toEqual([]);
  });

  test('ours equal those of @octokit/webhooks-methods, and it verifies ours, over varied bodies', () => {
    const bodies = ['{}', JSON.stringify(githubPush()), 'caf\u00e9 \u{1F680} \u0000 \u202e', 'x'.repeat(70_000)];

    const theirs = octokitSignatures(SECRET, bodies);

    expect(bodies.map((b) => signBody(b, SECRET))).toEqual(theirs);
    expect(
      octokitVerify(
        SECRET,
        bodies.map((b) => [b, signBody(b, SECRET)]),
      ),
    ).toEqual(bodies.map(() => true));
    for (const [i, body] of bodies.entries()) {
      expect(
        signatureProblem('github', { 'x-hub-signature-256': theirs[i] }, Buffer.from(body), SECRET),
      ).toBeUndefined();
      expect(
        signatureProblem('bitbucket', { 'x-hub-signature': theirs[i] }, Buffer.from(body), SECRET),
      ).toBeUndefined();
    }
  });

  test('ours equal openssl dgst -hmac', () => {
    const body = JSON.stringify(githubPush());

    const openssl = execFileSync('openssl', ['dgst', '-sha256', '-hmac', SECRET], { input: body, encoding: 'utf8' });

    expect(signBody(body, SECRET)).toBe(`sha256=${openssl.trim().split(' ').at(-1)}`);
  });

  test('compared in constant time: timingSafeEqual is what decides', () => {
    const crypto = require('node:crypto') as typeof import('node:crypto');
    const spy = jest.spyOn(crypto, 'timingSafeEqual');
    try {
      const body = Buffer.from('{}');
      signatureProblem('github', { 'x-hub-signature-256': signBody(body, 'other') }, body, SECRET);
      signatureProblem('gitlab', { 'x-gitlab-token': 'guess' }, body, SECRET);
      expect(spy).toHaveBeenCalledTimes(2);
    } finally {
      spy.mockRestore();
    }
  });
});

describe('the request itself', () => {
  test('a body over the limit: 413 before the secret is even read', async () => {
    const secret = jest.fn(async () => SECRET);
    const deps = fakeDeps({ secret });
    const request = signed('github', githubPush());

    const response = await receiveWebhook({ ...request, body: Buffer.alloc(MAX_WEBHOOK_BODY_BYTES + 1, 0x20) }, deps);

    expect(response.statusCode).toBe(413);
    expect(secret).not.toHaveBeenCalled();
    expect(deps.started).toEqual([]);
  });

  test.each([
    ['/webhooks/svn', 'POST', 404],
    ['/', 'POST', 404],
    ['/webhooks/github', 'GET', 405],
  ])('%s by %s: %i', async (path, method, status) => {
    const response = await receiveWebhook({ ...signed('github', githubPush()), path, method }, fakeDeps());
    expect(response.statusCode).toBe(status);
  });

  test('a provider this pipeline has no secret for: 404', async () => {
    const response = await receiveWebhook(signed('gitlab', gitlabPush()), fakeDeps({ secret: async () => undefined }));
    expect(response.statusCode).toBe(404);
  });

  test('a signed body that is not JSON, or JSON that is not a push: 400, nothing started', async () => {
    const deps = fakeDeps();
    const body = Buffer.from('not json');
    const notJson = await receiveWebhook(
      {
        ...signed('github', {}),
        body,
        headers: { ...signed('github', {}).headers, 'x-hub-signature-256': signBody(body, SECRET) },
      },
      deps,
    );
    const notPush = await receiveWebhook(signed('github', { ref: 42 }), deps);

    expect([notJson.statusCode, notPush.statusCode]).toEqual([400, 400]);
    expect(deps.started).toEqual([]);
  });

  test('GitHub form-encoded payloads are read too', async () => {
    const deps = fakeDeps();
    const body = Buffer.from(new URLSearchParams({ payload: JSON.stringify(githubPush()) }).toString());
    const request = signed('github', {});

    await receiveWebhook(
      {
        ...request,
        body,
        headers: {
          ...request.headers,
          'content-type': 'application/x-www-form-urlencoded',
          'x-hub-signature-256': signBody(body, SECRET),
        },
      },
      deps,
    );

    expect(deps.started.map((s) => s.input.branches)).toEqual([{ app: 'feature/login' }]);
  });
});

describe('GitLab, Bitbucket and CodeCommit', () => {
  test('a GitLab push starts acceptance with the config source pinned; its Idempotency-Key names it', async () => {
    const deps = fakeDeps();

    await receiveWebhook(signed('gitlab', gitlabPush()), deps);
    await receiveWebhook(signed('gitlab', gitlabPush(), { 'x-gitlab-webhook-attempt-number': '2' }), deps);

    expect(deps.started).toEqual([
      {
        name: expect.stringMatching(/^acceptance-0123456-[0-9a-f]{12}$/),
        input: {
          environment: 'acceptance',
          branches: { config: 'develop' },
          commits: { config: COMMIT },
          requestedBy: 'push by bob (gitlab)',
        },
      },
    ]);
  });

  test('a GitLab tag push is ignored', async () => {
    const deps = fakeDeps();
    const response = await receiveWebhook(signed('gitlab', gitlabPush(), { 'x-gitlab-event': 'Tag Push Hook' }), deps);
    expect(JSON.parse(response.body).ignored).toEqual(['a tag push: only branch pushes deploy']);
  });

  test('a Bitbucket push of two branches, a tag and a deletion starts one execution per branch; retried, none more', async () => {
    const deps = fakeDeps();
    const payload = bitbucketPush([
      branchChange('main', COMMIT),
      branchChange('feature/b', 'b'.repeat(40)),
      { old: null, new: { type: 'tag', name: 'v1', target: { hash: COMMIT } } },
      branchChange('old', null),
    ]);

    const first = await receiveWebhook(signed('bitbucket', payload), deps);
    await receiveWebhook(signed('bitbucket', payload, { 'x-attempt-number': '2' }), deps);

    expect(deps.started.map((s) => [s.input.branches, s.input.requestedBy])).toEqual([
      [{ tools: 'main' }, 'push by carol (bitbucket)'],
      [{ tools: 'feature/b' }, 'push by carol (bitbucket)'],
    ]);
    expect(JSON.parse(first.body).ignored).toEqual([
      'a tag push ("v1"): only branch pushes deploy',
      'a deletion of "old"',
    ]);
  });

  const codeCommitEvent = (detail: Record<string, unknown>) => ({
    version: '0',
    id: 'e-1',
    'detail-type': 'CodeCommit Repository State Change' as const,
    source: 'aws.codecommit' as const,
    account: '999999999999',
    time: '2026-12-07T10:00:00Z',
    region: 'eu-west-1',
    resources: ['arn:aws:codecommit:eu-west-1:999999999999:infra'],
    detail: {
      callerUserArn: 'arn:aws:sts::999999999999:assumed-role/dev/dana',
      commitId: COMMIT,
      event: 'referenceUpdated',
      oldCommitId: 'f'.repeat(40),
      referenceFullName: 'refs/heads/main',
      referenceName: 'main',
      referenceType: 'branch',
      repositoryId: 'id',
      repositoryName: 'infra',
      ...detail,
    },
  });

  test('a CodeCommit branch update starts acceptance; the same event again starts nothing more', async () => {
    const deps = fakeDeps();

    const outcome = await receiveCodeCommitEvent(codeCommitEvent({}), deps);
    await receiveCodeCommitEvent(codeCommitEvent({}), deps);

    expect(outcome.started).toHaveLength(1);
    expect(deps.started).toEqual([
      {
        name: expect.stringMatching(/^acceptance-0123456-/),
        input: {
          environment: 'acceptance',
          branches: { infra: 'main' },
          commits: { infra: COMMIT },
          requestedBy: 'push by dana (codecommit)',
        },
      },
    ]);
  });

  test.each([
    [{ event: 'referenceDeleted' }, 'a deletion of "refs/heads/main"'],
    [
      { referenceType: 'tag', referenceFullName: 'refs/tags/v1', referenceName: 'v1' },
      'a tag push ("refs/tags/v1"): only branch pushes deploy',
    ],
  ])('CodeCommit %j is ignored', async (detail, reason) => {
    expect(parseCodeCommit(codeCommitEvent(detail))).toEqual({ kind: 'ignored', reason });
  });
});

describe('repositoryKey', () => {
  test.each([
    ['https://github.com/Acme/App.git', 'github.com/acme/app'],
    ['https://github.com/acme/app/', 'github.com/acme/app'],
    ['git@github.com:Acme/App.git', 'github.com/acme/app'],
    ['ssh://git@github.com/acme/app.git', 'github.com/acme/app'],
  ])('%s is %s', (url, key) => {
    expect(repositoryKey(url)).toBe(key);
  });

  test('configured sources match their repository written any of those ways', () => {
    expect(repositoryKey(config.sources.app!.repository)).toBe(repositoryKey('git@github.com:acme/app'));
  });
});
