import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import {
  formatPath,
  loadConfig,
  parseConfig,
  resolveRepository,
  sourceTypeOf,
  type SourceConfig,
} from '../../shared/config';
import { ConfigError } from '../../shared/errors';

const EXAMPLE_PATH = resolve(__dirname, '../../stepdeploy.config.yml');

/** The example config as plain data, changed by `edit`, then parsed; returns the error message. */
function failureOf(edit: (raw: any) => void): string {
  const raw = JSON.parse(JSON.stringify(loadConfig(EXAMPLE_PATH)));
  edit(raw);
  try {
    parseConfig(raw, 'stepdeploy.config.yml');
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).name).toBe('ConfigError');
    return (err as Error).message;
  }
  throw new Error('expected the config to be rejected');
}

describe('the example stepdeploy.config.yml', () => {
  test('parses, with defaults filled in', () => {
    const config = loadConfig(EXAMPLE_PATH);

    expect(config.pipeline).toBe('stepdeploy-example');
    expect(Object.keys(config.sources)).toEqual(['app', 'config']);
    expect(Object.keys(config.environments)).toEqual(['acceptance', 'preproduction', 'production']);
    expect(config.environments.production).toEqual({
      account: '333333333333',
      region: 'eu-west-1',
      deployRoleArn: 'arn:aws:iam::333333333333:role/stepdeploy-deploy',
      branches: ['main'],
      concurrency: 'superseded',
      variables: {},
      hooks: [],
      deployRole: { managedPolicyArns: [], cloudFormationExecutionRoleArns: [] },
      approval: { required: true, timeoutMinutes: 240, allowSelfApproval: false },
      triggers: [],
    });
    // No approval by default.
    expect(config.environments.acceptance!.approval).toEqual({
      required: false,
      timeoutMinutes: 240,
      allowSelfApproval: false,
    });
    expect(config.environments.acceptance?.triggers).toEqual([{ source: 'app', branches: ['*'], exclude: [] }]);
    expect(config.environments.preproduction?.triggers).toEqual([{ source: 'app', branches: ['main'], exclude: [] }]);
    expect(config.buildspecs).toEqual({ build: 'buildspecs/build.yml', deploy: 'buildspecs/deploy.yml' });
    expect(config.notifications.slack?.webhookSecretName).toBe('stepdeploy/slack-webhook');
  });
});

describe('parseConfig', () => {
  test('an approval block means approval is required unless it says otherwise; the fields get defaults', () => {
    const raw = JSON.parse(JSON.stringify(loadConfig(EXAMPLE_PATH)));
    raw.environments.acceptance.approval = { timeoutMinutes: 30 };
    expect(parseConfig(raw).environments.acceptance!.approval).toEqual({
      required: true,
      timeoutMinutes: 30,
      allowSelfApproval: false,
    });
  });

  test.each([
    [
      { timeoutMinutes: 721 },
      'environments.production.approval.timeoutMinutes: must be at most 720 (12 hours): the whole execution must end within 24 hours (got 721)',
    ],
    [
      { timeoutMinutes: 0 },
      'environments.production.approval.timeoutMinutes: must be more than 0 and at most 720 (12 hours) (got 0)',
    ],
    [{ required: 'yes' }, 'environments.production.approval.required: must be true or false (got "yes")'],
    [
      { approvers: ['bob'] },
      'environments.production.approval: Unrecognized key: "approvers" (unknown key(s) "approvers")',
    ],
  ])('fails for approval %j, naming the path, value and fix', (approval, expected) => {
    const message = failureOf((c) => {
      c.environments.production.approval = approval;
    });
    expect(message).toContain(expected);
  });

  test('fails for a bad branch pattern, naming the path, value and fix', () => {
    const message = failureOf((c) => {
      c.environments.production.branches = ['main feature'];
    });

    expect(message).toContain(
      'environments.production.branches[0]: must be a branch name, "*" for any branch, or a name with "*" wildcards such as "release/*" (got "main feature")',
    );
  });

  test('fails for an empty branch policy', () => {
    const message = failureOf((c) => {
      c.environments.production.branches = [];
    });

    expect(message).toContain(
      'environments.production.branches: must list at least one branch pattern ("*" allows any valid branch) (got [])',
    );
  });

  test('fails for a duplicate source path, naming both sources', () => {
    const message = failureOf((c) => {
      c.sources.config.path = '.';
    });

    expect(message).toContain(
      'sources.config.path: "." is already used by source "app"; give each source its own folder (got ".")',
    );
  });

  test.each([
    ['CODEBUILD_BUILD_ID', 'CodeBuild reserves the CODEBUILD_ prefix for its own variables'],
    ['ENVIRONMENT', "stepdeploy sets it to the environment's name"],
    ['STEPDEPLOY_COMMIT_APP', 'stepdeploy reserves the STEPDEPLOY_ prefix'],
    ['AWS_REGION', 'stepdeploy sets it to the environment\'s region (set "region" instead)'],
    ['AWS_DEFAULT_REGION', "stepdeploy sets it to the environment's region"],
    ['AWS_SECRET_ACCESS_KEY', 'credentials would replace the deploy role'],
    ['AWS_PROFILE', "it would bypass the deploy role's profile"],
    ['AWS_CONFIG_FILE', "it would bypass the deploy role's profile"],
    ['AWS_SDK_LOAD_CONFIG', "stepdeploy sets it so that the AWS SDK for JavaScript v2 reads the deploy role's profile"],
    ['AWS_CONTAINER_CREDENTIALS_RELATIVE_URI', 'CodeBuild uses it to hand the build its credentials'],
    ['AWS_ENDPOINT_URL_CLOUDFORMATION', 'it would send every AWS SDK and CLI in the build to another endpoint'],
  ])('fails for the reserved variable name %s, with the reason and without its value', (name, reason) => {
    const message = failureOf((c) => {
      c.environments.production.variables = { TEMPLATE_BUCKET: 'templates', [name]: 'wJalrXUtnFEMI/K7MDENG' };
    });

    expect(message).toContain(`environments.production.variables.${name}: is a reserved name: ${reason}`);
    expect(message).toContain('rename or remove it (value not shown: it may be a credential)');
    expect(message).not.toContain('wJalrXUtnFEMI');
    expect(message).not.toContain('TEMPLATE_BUCKET');
  });

  test('accepts variables outside the reserved names, AWS_ ones included', () => {
    const raw = JSON.parse(JSON.stringify(loadConfig(EXAMPLE_PATH)));
    raw.environments.production.variables = {
      TEMPLATE_BUCKET: 'templates',
      AWS_MAX_ATTEMPTS: '5',
      ENVIRONMENT_NAME: 'prod',
    };

    expect(parseConfig(raw).environments.production!.variables).toEqual({
      TEMPLATE_BUCKET: 'templates',
      AWS_MAX_ATTEMPTS: '5',
      ENVIRONMENT_NAME: 'prod',
    });
  });

  test('fails for a hook that can outlive RunHook, with its worst case and the fix', () => {
    const message = failureOf((c) => {
      c.environments.production.hooks = [
        { name: 'fits', url: 'https://example.com/health', timeoutSeconds: 60, retries: 12, intervalSeconds: 5 },
        { name: 'slow', url: 'https://example.com/health', timeoutSeconds: 300, retries: 20, intervalSeconds: 300 },
      ];
    });

    expect(message).toContain(
      'environments.production.hooks[1]: can run 12300s when every attempt times out ((retries 20 + 1) × timeoutSeconds 300 + retries 20 × intervalSeconds 300), ' +
        'over the 840s a hook may take (RunHook is one Lambda invocation): lower retries, timeoutSeconds or intervalSeconds',
    );
    expect(message).not.toContain('hooks[0]');
  });

  test('fails for a webhook URL in webhookSecretName', () => {
    const url = 'https://hooks.slack.com/services/T000/B000/XXXX';
    const message = failureOf((c) => {
      c.notifications.slack.webhookSecretName = url;
    });

    expect(message).toContain(
      'notifications.slack.webhookSecretName: must be a Secrets Manager secret name, not the webhook URL itself (value not shown: it may be a credential)',
    );
    // A webhook URL is a credential: the error that rejects it does not repeat it.
    expect(message).not.toContain('hooks.slack.com');
  });

  test('takes the Slack buttons: signing secret name, approvers by Slack member id, workspace id', () => {
    const raw = JSON.parse(JSON.stringify(loadConfig(EXAMPLE_PATH)));
    raw.notifications.slack.signingSecretName = 'stepdeploy/slack-signing';
    raw.notifications.slack.approvers = {
      U024BE7LH: ' alice@example.com ',
      W0123ABCD: 'arn:aws:iam::111111111111:user/bob',
    };
    raw.notifications.slack.teamId = 'T0001';

    expect(parseConfig(raw).notifications.slack).toEqual({
      webhookSecretName: 'stepdeploy/slack-webhook',
      signingSecretName: 'stepdeploy/slack-signing',
      approvers: { U024BE7LH: 'alice@example.com', W0123ABCD: 'arn:aws:iam::111111111111:user/bob' },
      teamId: 'T0001',
    });
  });

  test.each([
    [
      { approvers: { alice: 'alice@example.com' } },
      'notifications.slack.approvers.alice: the name must be a Slack member id: U (or W)',
    ],
    [
      { approvers: { u024be7lh: 'alice@example.com' } },
      'notifications.slack.approvers.u024be7lh: the name must be a Slack member id',
    ],
    [{ approvers: { U024BE7LH: '  ' } }, 'notifications.slack.approvers.U024BE7LH: must name who this Slack user is'],
    [{ approvers: { U024BE7LH: 'alice' } }, 'notifications.slack: signingSecretName and approvers go together'],
    [
      { signingSecretName: 'stepdeploy/slack-signing' },
      'notifications.slack: signingSecretName and approvers go together',
    ],
    [{ teamId: 'acme' }, 'notifications.slack.teamId: must be a Slack workspace id'],
  ])('fails on Slack button settings that cannot work (%#), naming the key', (slack, expected) => {
    const message = failureOf((c) => {
      c.notifications.slack.signingSecretName = 'stepdeploy/slack-signing';
      c.notifications.slack.approvers = { U024BE7LH: 'alice@example.com' };
      c.notifications.slack = { webhookSecretName: 'stepdeploy/slack-webhook', ...slack };
    });

    expect(message).toContain(expected);
  });

  test('fails for a signing secret pasted as signingSecretName, without echoing it', () => {
    const message = failureOf((c) => {
      c.notifications.slack.signingSecretName = '8f742231b10e8888abcd99yyyzzz85a5 ';
      c.notifications.slack.approvers = { U024BE7LH: 'alice@example.com' };
    });

    expect(message).toContain(
      'notifications.slack.signingSecretName: must be a Secrets Manager secret name, not the signing secret itself',
    );
    expect(message).not.toContain('8f742231b10e');
  });

  test('takes a credentialsSecret name for a private HTTPS repository', () => {
    const raw = JSON.parse(JSON.stringify(loadConfig(EXAMPLE_PATH)));
    raw.sources.app.repository = 'https://github.com/acme/app.git';
    raw.sources.app.credentialsSecret = 'stepdeploy/github-read';
    expect(parseConfig(raw).sources.app!.credentialsSecret).toBe('stepdeploy/github-read');
  });

  test.each([
    'ghp_0123456789abcdefghijABCDEFGHIJ012345',
    'github_pat_11ABCDEFG0123456789_abcdefghij',
    'glpat-abcdefghij0123456789',
  ])('fails for a token pasted as credentialsSecret, without echoing it (%#)', (token) => {
    const message = failureOf((c) => {
      c.sources.app.repository = 'https://github.com/acme/app.git';
      c.sources.app.credentialsSecret = token;
    });
    expect(message).toContain(
      "sources.app.credentialsSecret: looks like a token: store the token in Secrets Manager and give the secret's name (value not shown: it may be a credential)",
    );
    expect(message).not.toContain(token);
  });

  test('fails for a repository URL with a token in it, naming the fix and without echoing it', () => {
    const url = 'https://x-access-token:ghp_0123456789abcdefghijABCDEFGHIJ012345@github.com/acme/app.git';
    const message = failureOf((c) => {
      c.sources.app.repository = url;
    });
    expect(message).toContain(
      'sources.app.repository: must not carry credentials (user:token@): store a read token in Secrets Manager and name the secret in credentialsSecret (value not shown: it may be a credential)',
    );
    expect(message).not.toContain('ghp_');
  });

  test.each([
    ['git@github.com:acme/app.git', 'GITHUB', 'an SSH address'],
    ['ssh://git@gitlab.example.com/acme/app.git', 'GITLAB_SELF_MANAGED', 'an SSH address'],
    ['ssh://deploy:hunter2@git.example.com/acme/app.git', 'GITHUB_ENTERPRISE', 'an SSH address'],
    ['http://git.example.com/acme/app.git', 'GITHUB_ENTERPRISE', 'a http:// address'],
    ['ssh://git-codecommit.eu-west-1.amazonaws.com/v1/repos/app', 'CODECOMMIT', 'an SSH address'],
  ])(
    'fails for %s as a %s source: CodeBuild clones over HTTPS only (naming the fix, no password echoed)',
    (repository, type, kind) => {
      const message = failureOf((c) => {
        c.sources.app.repository = repository;
        c.sources.app.type = type;
      });
      expect(message).toContain(
        `sources.app.repository: is ${kind}, which CodeBuild cannot fetch: it clones GitHub, GitLab, Bitbucket and CodeCommit repositories over HTTPS only; give the repository's https:// clone URL (e.g. https://github.com/acme/app.git)`,
      );
      expect(message).not.toContain('must not carry credentials');
      expect(message).not.toContain('hunter2');
    },
  );

  test.each([
    ['https://git.example.com/acme/app.git', 'GITHUB_ENTERPRISE'],
    ['file:///srv/git/app.git', undefined],
    ['/srv/git/app.git', undefined],
  ])('accepts %s as a clone address', (repository, type) => {
    const raw = JSON.parse(JSON.stringify(loadConfig(EXAMPLE_PATH)));
    raw.sources.app = { repository, ...(type ? { type } : {}), path: '.' };
    expect(parseConfig(raw, 'stepdeploy.config.yml').sources.app?.repository).toBe(repository);
  });

  test('does not echo a webhook URL given where the notifications object belongs', () => {
    const message = failureOf((c) => {
      c.notifications = { slack: 'https://hooks.slack.com/services/T000/B000/XXXX' };
    });
    expect(message).toContain('notifications.slack:');
    expect(message).not.toContain('hooks.slack.com');
  });

  test('fails for credentialsSecret on a source it cannot serve (a local repository), naming the fix', () => {
    const message = failureOf((c) => {
      c.sources.config.repository = '/srv/git/config.git';
      c.sources.config.credentialsSecret = 'stepdeploy/github-read';
    });
    expect(message).toContain(
      'sources.config.credentialsSecret: is for GITHUB, GITHUB_ENTERPRISE, GITLAB, GITLAB_SELF_MANAGED, BITBUCKET repositories with an https:// URL; source "config" is LOCAL_GIT at /srv/git/config.git: remove it',
    );
  });

  test('fails for a default branch that is not a valid branch name', () => {
    const message = failureOf((c) => {
      c.sources.app.defaultBranch = 'x$(touch pwned)';
    });

    expect(message).toContain('sources.app.defaultBranch: must be a valid branch name');
    expect(message).toContain('(got "x$(touch pwned)")');
  });

  test('fails for a source path that escapes the artifact', () => {
    const message = failureOf((c) => {
      c.sources.config.path = '../config/';
    });

    expect(message).toContain(
      'sources.config.path: must be "." or a relative folder ending in "/" without ".." (e.g. "config/") (got "../config/")',
    );
  });

  test('fails for an unknown key, naming it', () => {
    const message = failureOf((c) => {
      c.environments.production.brances = ['main'];
    });

    expect(message).toContain('environments.production: Unrecognized key: "brances" (unknown key(s) "brances")');
  });

  test('fails for an account written as a YAML number', () => {
    const message = failureOf((c) => {
      c.environments.production.account = 333333333333;
    });

    expect(message).toContain('environments.production.account:');
    expect(message).toContain('(got 333333333333)');
  });

  test('fails for a hook URL that is not http(s), and a bad deploy role', () => {
    const message = failureOf((c) => {
      c.environments.production.hooks = [{ name: 'health', url: 'file:///etc/passwd' }];
      c.environments.production.deployRoleArn = 'stepdeploy-deploy';
    });

    expect(message).toContain(
      'environments.production.hooks[0].url: must be an http(s) URL (got "file:///etc/passwd")',
    );
    expect(message).toContain(
      'environments.production.deployRoleArn: must be an IAM role ARN (arn:aws:iam::123456789012:role/name) (got "stepdeploy-deploy")',
    );
  });

  test('fails for an environment name outside the naming rule, naming it', () => {
    const message = failureOf((c) => {
      c.environments.Production = c.environments.production;
    });

    expect(message).toContain('environments.Production:');
  });

  test('fills hook defaults', () => {
    const raw = JSON.parse(JSON.stringify(loadConfig(EXAMPLE_PATH)));
    raw.environments.production.hooks = [{ name: 'health', url: 'https://example.com/health' }];

    const config = parseConfig(raw);

    expect(config.environments.production!.hooks).toEqual([
      {
        name: 'health',
        type: 'http',
        url: 'https://example.com/health',
        method: 'GET',
        expectStatus: 200,
        timeoutSeconds: 10,
        retries: 3,
        intervalSeconds: 5,
      },
    ]);
  });
});

describe('loadConfig', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'stepdeploy-config-'));
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  test('fails for a missing file, suggesting --config', () => {
    const path = join(dir, 'nope.yml');

    expect(() => loadConfig(path)).toThrow(`cannot read the config file ${path}`);
    expect(() => loadConfig(path)).toThrow('Pass --config <path>');
  });

  test('fails for invalid YAML, naming the file', () => {
    const path = join(dir, 'bad.yml');
    writeFileSync(path, 'pipeline: [unclosed\n');

    expect(() => loadConfig(path)).toThrow(`${path} is not valid YAML`);
  });

  test('names the file in validation errors', () => {
    const path = join(dir, 'empty.yml');
    writeFileSync(path, 'pipeline: x\n');

    expect(() => loadConfig(path)).toThrow(`${path} is invalid:`);
  });
});

describe('sources', () => {
  const source = (repository: string, type?: SourceConfig['type']): SourceConfig => ({
    repository,
    type,
    defaultBranch: 'main',
    path: '.',
  });

  test.each<[string, string]>([
    ['https://github.com/acme/app', 'GITHUB'],
    ['https://gitlab.com/acme/app', 'GITLAB'],
    ['https://bitbucket.org/acme/app', 'BITBUCKET'],
    ['https://git-codecommit.eu-west-1.amazonaws.com/v1/repos/app', 'CODECOMMIT'],
    ['../repos/app.git', 'LOCAL_GIT'],
    ['/srv/git/app.git', 'LOCAL_GIT'],
    ['file:///srv/git/app.git', 'LOCAL_GIT'],
  ])('infers the source type of %s as %s', (repository, type) => {
    expect(sourceTypeOf(source(repository))).toBe(type);
  });

  test('uses a declared type over inference', () => {
    expect(sourceTypeOf(source('https://git.example.com/app', 'GITHUB_ENTERPRISE'))).toBe('GITHUB_ENTERPRISE');
  });

  test('fails for an unknown host without a type, naming the fix', () => {
    expect(() => sourceTypeOf(source('git@git.example.com:acme/app.git'))).toThrow(
      /cannot tell the source type .*set "type" to one of GITHUB/,
    );
  });

  test('resolves a local repository relative to the config file, and leaves URLs and absolute paths', () => {
    expect(resolveRepository(source('repos/app.git'), '/etc/stepdeploy/stepdeploy.config.yml')).toBe(
      '/etc/stepdeploy/repos/app.git',
    );
    expect(resolveRepository(source('/srv/app.git'), '/etc/stepdeploy/stepdeploy.config.yml')).toBe('/srv/app.git');
    expect(resolveRepository(source('https://github.com/acme/app'), '/etc/x.yml')).toBe('https://github.com/acme/app');
  });
});

test('formatPath reads like the file', () => {
  expect(formatPath(['environments', 'production', 'branches', 0])).toBe('environments.production.branches[0]');
  expect(formatPath([])).toBe('');
});

describe('triggers', () => {
  test('takes patterns, exclude lists and several triggers per environment', () => {
    const raw = JSON.parse(JSON.stringify(loadConfig(EXAMPLE_PATH)));
    raw.environments.acceptance.triggers = [
      { source: 'app', branches: ['feature/*', 'main'], exclude: ['feature/wip-*'] },
      { source: 'config', branches: ['develop'] },
    ];

    expect(parseConfig(raw).environments.acceptance?.triggers).toEqual([
      { source: 'app', branches: ['feature/*', 'main'], exclude: ['feature/wip-*'] },
      { source: 'config', branches: ['develop'], exclude: [] },
    ]);
  });

  test.each([
    [
      'a pattern the branch policy never allows',
      { source: 'app', branches: ['main', 'feature/*'] },
      'environments.production.triggers[0].branches[1]: can never pass the branch policy of production (branches: main): no branch matches both; change the pattern or the policy (got "feature/*")',
    ],
    [
      'a pattern its own exclude list covers',
      { source: 'app', branches: ['release/*'], exclude: ['*'] },
      'environments.production.triggers[0].branches[0]: can never pass the branch policy of production (branches: main)',
    ],
    [
      'an unknown source',
      { source: 'web', branches: ['main'] },
      'environments.production.triggers[0].source: is not a configured source; configured sources: app, config (got "web")',
    ],
    [
      'a bad pattern',
      { source: 'app', branches: ['ma in'] },
      'environments.production.triggers[0].branches[0]: must be a branch name, "*" for any branch, or a name with "*" wildcards such as "release/*" (got "ma in")',
    ],
    [
      'an unknown key',
      { source: 'app', branches: ['main'], events: ['push'] },
      'environments.production.triggers[0]: Unrecognized key: "events" (unknown key(s) "events")',
    ],
  ])('fails for %s', (_what, trigger, message) => {
    expect(failureOf((c) => (c.environments.production.triggers = [trigger]))).toContain(message);
  });

  test('fails for a pattern excluded by its own trigger, in an environment that would allow it', () => {
    expect(
      failureOf(
        (c) => (c.environments.acceptance.triggers = [{ source: 'app', branches: ['wip/*'], exclude: ['wip/*'] }]),
      ),
    ).toContain(
      "environments.acceptance.triggers[0].branches[0]: is excluded by the trigger's own exclude list (wip/*): it can never start a deployment",
    );
  });

  test('fails when a push would deploy another source at a default branch the environment refuses', () => {
    const message = failureOf((c) => {
      c.sources.config.defaultBranch = 'develop';
      c.environments.production.triggers = [{ source: 'app', branches: ['main'] }];
    });

    expect(message).toContain(
      'environments.production.triggers[0].source: a push deploys source "config" at its default branch "develop", which the branch policy of production (main) refuses: every triggered deployment would fail',
    );
  });
});
