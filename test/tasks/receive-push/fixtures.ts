import { execFileSync } from 'node:child_process';
import { parseConfig, type PipelineConfig } from '../../../shared/config';
import type { WebhookProvider } from '../../../tasks/receive-push/push';
import type { ReceiverDeps, StartRequest, WebhookRequest } from '../../../tasks/receive-push/receive-push';
import { signBody } from '../../../tasks/receive-push/signature';

export const SECRET = 'It5-a-webhook-secret-for-tests';
export const CONFIG_PATH = '/srv/stepdeploy/stepdeploy.config.yml';
export const COMMIT = '0123456789abcdef0123456789abcdef01234567';
export const OLD_COMMIT = 'fedcba9876543210fedcba9876543210fedcba98';

/** Sources on each provider; acceptance deploys any app branch, preproduction app's main. */
export const rawConfig = {
  pipeline: 'shop',
  sources: {
    app: { repository: 'https://github.com/Acme/App.git', path: '.' },
    config: { repository: 'https://gitlab.com/acme/config.git', path: 'config/' },
    tools: { repository: 'https://bitbucket.org/acme/tools.git', path: 'tools/' },
    infra: { repository: 'https://git-codecommit.eu-west-1.amazonaws.com/v1/repos/infra', path: 'infra/' },
  },
  environments: {
    acceptance: {
      account: '111111111111',
      region: 'eu-west-1',
      deployRoleArn: 'arn:aws:iam::111111111111:role/deploy',
      branches: ['*'],
      triggers: [
        { source: 'app', branches: ['*'], exclude: ['wip/*'] },
        { source: 'config', branches: ['*'] },
        { source: 'tools', branches: ['*'] },
        { source: 'infra', branches: ['*'] },
      ],
    },
    preproduction: {
      account: '222222222222',
      region: 'eu-west-1',
      deployRoleArn: 'arn:aws:iam::222222222222:role/deploy',
      branches: ['main'],
      triggers: [{ source: 'app', branches: ['main'] }],
    },
    production: {
      account: '333333333333',
      region: 'eu-west-1',
      deployRoleArn: 'arn:aws:iam::333333333333:role/deploy',
      branches: ['main'],
    },
  },
};
export const config: PipelineConfig = parseConfig(rawConfig);

/** A fake Step Functions that remembers names as StartExecution does (a name is taken once). */
export function fakeDeps(overrides: Partial<ReceiverDeps> = {}): ReceiverDeps & {
  started: StartRequest[];
  lines: string[];
} {
  const started: StartRequest[] = [];
  const lines: string[] = [];
  return {
    config,
    configPath: CONFIG_PATH,
    secret: async () => SECRET,
    startExecution: async (request) => {
      if (started.some((s) => s.name === request.name)) return 'exists';
      started.push(request);
      return 'started';
    },
    log: (line) => lines.push(line),
    ...overrides,
    started,
    lines,
  };
}

export function githubPush(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    ref: 'refs/heads/feature/login',
    before: OLD_COMMIT,
    after: COMMIT,
    deleted: false,
    repository: {
      full_name: 'Acme/App',
      clone_url: 'https://github.com/Acme/App.git',
      html_url: 'https://github.com/Acme/App',
      ssh_url: 'git@github.com:Acme/App.git',
    },
    pusher: { name: 'alice', email: 'alice@example.com' },
    sender: { login: 'alice' },
    ...overrides,
  };
}

export function gitlabPush(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    object_kind: 'push',
    ref: 'refs/heads/develop',
    before: OLD_COMMIT,
    after: COMMIT,
    checkout_sha: COMMIT,
    user_username: 'bob',
    project: { git_http_url: 'https://gitlab.com/acme/config.git', web_url: 'https://gitlab.com/acme/config' },
    ...overrides,
  };
}

export function bitbucketPush(changes: unknown[]): Record<string, unknown> {
  return {
    push: { changes },
    repository: { full_name: 'acme/tools', links: { html: { href: 'https://bitbucket.org/acme/tools' } } },
    actor: { nickname: 'carol', display_name: 'Carol' },
  };
}

export function branchChange(name: string, hash: string | null): Record<string, unknown> {
  return {
    old: { type: 'branch', name, target: { hash: OLD_COMMIT } },
    new: hash === null ? null : { type: 'branch', name, target: { hash } },
  };
}

/** A request as the provider signs it, with the header it uses. */
export function signed(
  provider: WebhookProvider,
  payload: unknown,
  headers: Record<string, string> = {},
  secret = SECRET,
): WebhookRequest {
  const body = Buffer.from(JSON.stringify(payload));
  const auth =
    provider === 'github'
      ? { 'x-hub-signature-256': signBody(body, secret), 'x-github-event': 'push', 'x-github-delivery': 'd-1' }
      : provider === 'gitlab'
        ? { 'x-gitlab-token': secret, 'x-gitlab-event': 'Push Hook', 'idempotency-key': 'g-1' }
        : { 'x-hub-signature': signBody(body, secret), 'x-event-key': 'repo:push', 'x-hook-uuid': '{h-1}' };
  return {
    method: 'POST',
    path: `/webhooks/${provider}`,
    headers: { 'content-type': 'application/json', ...auth, ...headers },
    body,
  };
}

/**
 * Signatures by an implementation that shares no code with ours: @octokit/webhooks-methods (ESM
 * only, so in a child node process), for each body.
 */
export function octokitSignatures(secret: string, bodies: ReadonlyArray<string>): string[] {
  const script = `
    import { sign, verify } from '@octokit/webhooks-methods';
    const { secret, bodies } = JSON.parse(await new Promise((r) => { let s = ''; process.stdin.on('data', (c) => (s += c)); process.stdin.on('end', () => r(s)); }));
    console.log(JSON.stringify(await Promise.all(bodies.map((b) => sign(secret, b)))));
  `;
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], {
    input: JSON.stringify({ secret, bodies }),
    encoding: 'utf8',
    cwd: __dirname,
  });
  return JSON.parse(out) as string[];
}

/** @octokit/webhooks-methods' verify() on each (body, signature). */
export function octokitVerify(secret: string, pairs: ReadonlyArray<[string, string]>): boolean[] {
  const script = `
    import { verify } from '@octokit/webhooks-methods';
    const { secret, pairs } = JSON.parse(await new Promise((r) => { let s = ''; process.stdin.on('data', (c) => (s += c)); process.stdin.on('end', () => r(s)); }));
    console.log(JSON.stringify(await Promise.all(pairs.map(([b, s]) => verify(secret, b, s)))));
  `;
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], {
    input: JSON.stringify({ secret, pairs }),
    encoding: 'utf8',
    cwd: __dirname,
  });
  return JSON.parse(out) as boolean[];
}
