import { resolve } from 'node:path';
import { loadConfig, parseConfig } from '../../shared/config';
import { InvalidInputError } from '../../tasks/validate-input/errors';
import { createHandler, handler } from '../../tasks/validate-input/handler';
import { checkExecutionInput, MAX_INPUT_BYTES, validateInput } from '../../tasks/validate-input/validate-input';

const CONFIG_PATH = resolve(__dirname, '../../stepdeploy.config.yml');
const config = loadConfig(CONFIG_PATH);
const ENVIRONMENTS = ['acceptance', 'preproduction', 'production'];

/** Runs validateInput and returns the InvalidInputError it must throw. */
function rejection(input: unknown, cfg = config): InvalidInputError {
  try {
    validateInput(input, 'exec-1', cfg, CONFIG_PATH);
  } catch (err) {
    expect(err).toBeInstanceOf(InvalidInputError);
    expect((err as Error).name).toBe('InvalidInputError');
    return err as InvalidInputError;
  }
  throw new Error(`expected ${JSON.stringify(input)} to be rejected`);
}

describe('validateInput: execution names', () => {
  // Step Functions accepts these names; CombineConfigAndCode and Deploy would refuse them after the fetch builds.
  test.each([
    ['a dot', 'release-1.2.3', '"release-1.2.3"', 'release-1_2_3'],
    ['a non-ASCII letter', 'd\u00e9ploiement', '"d\\u00e9ploiement"', 'd_ploiement'],
    ['81 characters', 'a'.repeat(81), `"${'a'.repeat(81)}"`, 'a'.repeat(80)],
  ])('fails for a name with %s, naming the rule and a fix', (_label, execution, shown, suggestion) => {
    let error: unknown;
    try {
      validateInput({ environment: 'acceptance' }, execution, config, CONFIG_PATH);
    } catch (err) {
      error = err;
    }

    expect(error).toBeInstanceOf(InvalidInputError);
    expect((error as InvalidInputError).problems).toEqual([
      `(execution name): ${shown} must be 1-80 letters, digits, "_" or "-" (it becomes part of S3 keys); start a new execution with such a name, e.g. ${suggestion}`,
    ]);
  });

  test('accepts the names the CLI generates and passes', () => {
    expect(
      validateInput({ environment: 'acceptance' }, 'acceptance-20261207T140000-a1b2c3', config, CONFIG_PATH).execution,
    ).toBe('acceptance-20261207T140000-a1b2c3');
    expect(validateInput({ environment: 'acceptance' }, 'Hotfix_42', config, CONFIG_PATH).execution).toBe('Hotfix_42');
  });
});

describe('validateInput: hostile and invalid branch names', () => {
  // [label, branch, the value as the message shows it, the rule]
  const cases: ReadonlyArray<[string, string, string, string]> = [
    ['command substitution', 'x$(touch pwned)', '"x$(touch pwned)"', 'contains "$"'],
    ['quote-breaking injection', 'zzz";echo${IFS}"hello";#', '"zzz\\";echo${IFS}\\"hello\\";#"', 'contains """'],
    ['backticks', '`id`', '"`id`"', 'contains "`"'],
    ['git option -c', '-c', '"-c"', 'must not start with "-"'],
    ['git option --upload-pack', '--upload-pack=x', '"--upload-pack=x"', 'contains "="'],
    ['a leading dash', '-main', '"-main"', 'must not start with "-" (it would read as a command-line option)'],
    ['..', 'a..b', '"a..b"', 'must not contain ".."'],
    ['.lock', 'x.lock', '"x.lock"', 'no path component may end with ".lock"'],
    ['@{', 'a@{1}', '"a@{1}"', 'contains "@"'],
    ['leading /', '/main', '"/main"', 'must not start with "/"'],
    ['trailing /', 'main/', '"main/"', 'must not end with "/"'],
    ['//', 'a//b', '"a//b"', 'must not contain "//"'],
    ['trailing .', 'main.', '"main."', 'must not end with "."'],
    ['hidden component', 'feature/.x', '"feature/.x"', 'no path component may start with "."'],
    ['newline', 'ma\nin', '"ma\\nin"', 'contains U+000A'],
    ['NUL', 'a\u0000b', '"a\\u0000b"', 'contains U+0000'],
    ['escape sequence', 'a\u001b[31mb', '"a\\u001b[31mb"', 'contains U+001B'],
    ['tab', 'a\tb', '"a\\tb"', 'contains U+0009'],
    ['space', 'my branch', '"my branch"', 'contains " "'],
    [
      '300 characters',
      'a'.repeat(300),
      `"${'a'.repeat(100)}"... (300 characters)`,
      'must be at most 200 characters (got 300)',
    ],
    ['empty', '', '""', 'must not be empty'],
    ['Cyrillic look-alike', 'm\u0430in', '"m\\u0430in"', 'contains U+0430'],
    ['fullwidth solidus', 'feature\uff0fx', '"feature\\uff0fx"', 'contains U+FF0F'],
    ['right-to-left override', 'main\u202e', '"main\\u202e"', 'contains U+202E'],
    ['revision syntax', 'HEAD~1', '"HEAD~1"', 'contains "~"'],
    ['glob', 'feat*', '"feat*"', 'contains "*"'],
    ['backslash', 'a\\b', '"a\\\\b"', 'contains "\\"'],
  ];

  test.each(cases)('fails for %s in every environment', (_label, branch, shown, rule) => {
    for (const environment of ENVIRONMENTS) {
      const error = rejection({ environment, branches: { app: branch } });
      expect(error.problems).toHaveLength(1);
      const expected = `branches.app: ${shown} ${rule}`;
      expect(error.problems[0]!.slice(0, expected.length)).toBe(expected);
      expect(error.message).toContain(expected);
    }
  });

  test('a 200-character branch is accepted', () => {
    const plan = validateInput(
      { environment: 'acceptance', branches: { app: 'a'.repeat(200) } },
      'e',
      config,
      CONFIG_PATH,
    );
    expect(plan.sources[0]!.branch).toHaveLength(200);
  });
});

describe('validateInput: branch policy', () => {
  test('fails for feature/x in production and preproduction, naming the allowed patterns', () => {
    for (const environment of ['production', 'preproduction']) {
      const error = rejection({ environment, branches: { app: 'feature/x' } });
      expect(error.problems).toEqual([`branches.app: "feature/x" is not allowed in ${environment}; allowed: main`]);
    }
  });

  test('accepts feature/x in acceptance', () => {
    const plan = validateInput({ environment: 'acceptance', branches: { app: 'feature/x' } }, 'e', config, CONFIG_PATH);
    expect(plan.sources.find((s) => s.name === 'app')!.branch).toBe('feature/x');
  });

  test('wildcard patterns match a prefix only', () => {
    const cfg = withEnvironment({ branches: ['main', 'release/*'] });
    expect(checkExecutionInput({ environment: 'production', branches: { app: 'release/1.2' } }, cfg)).toEqual([]);
    expect(checkExecutionInput({ environment: 'production', branches: { app: 'hotfix/release/1.2' } }, cfg)).toEqual([
      'branches.app: "hotfix/release/1.2" is not allowed in production; allowed: main, release/*',
    ]);
  });

  test("fails when an omitted source's default branch is not allowed in the environment", () => {
    const cfg = withEnvironment(
      { branches: ['main'] },
      { config: { repository: 'https://github.com/o/config', defaultBranch: 'develop', path: 'config/' } },
    );
    const error = rejection({ environment: 'production', branches: { app: 'main' } }, cfg);
    expect(error.problems).toEqual([
      'branches.config: "develop" (the default branch of source "config") is not allowed in production; allowed: main; name a branch for branches.config',
    ]);
  });
});

describe('validateInput: the rest of the input contract', () => {
  const cases: ReadonlyArray<[string, unknown, string]> = [
    [
      'an unknown environment',
      { environment: 'staging' },
      'environment: "staging" is not a configured environment; one of: acceptance, preproduction, production',
    ],
    [
      'a missing environment',
      { branches: { app: 'main' } },
      'environment: (missing) is required; one of: acceptance, preproduction, production',
    ],
    [
      'a non-string environment',
      { environment: 5 },
      'environment: 5 is not a configured environment; one of: acceptance, preproduction, production',
    ],
    [
      'an inherited property as environment',
      { environment: 'constructor' },
      'environment: "constructor" is not a configured environment',
    ],
    [
      'an unknown source',
      { environment: 'acceptance', branches: { web: 'main' } },
      'branches.web: "main" is for an unknown source "web"; configured sources: app, config',
    ],
    [
      'an inherited property as source',
      { environment: 'acceptance', branches: { toString: 'main' } },
      'branches.toString: "main" is for an unknown source "toString"',
    ],
    [
      'an odd source key',
      { environment: 'acceptance', branches: { 'a b': 'main' } },
      'branches["a b"]: "main" is for an unknown source "a b"',
    ],
    [
      'an extra key',
      { environment: 'acceptance', branch: 'main' },
      'branch: "main" is not part of the input; allowed keys: environment, branches, commits, requestedBy',
    ],
    [
      'an odd extra key',
      { environment: 'acceptance', '$(id)': 1 },
      '["$(id)"]: 1 is not part of the input; allowed keys: environment, branches, commits, requestedBy',
    ],
    [
      'a non-string branch',
      { environment: 'acceptance', branches: { app: 5 } },
      'branches.app: 5 must be a string (a branch name)',
    ],
    [
      'a null branch',
      { environment: 'acceptance', branches: { app: null } },
      'branches.app: null must be a string (a branch name)',
    ],
    [
      'an object branch',
      { environment: 'acceptance', branches: { app: { $ne: 1 } } },
      'branches.app: {"$ne":1} must be a string (a branch name)',
    ],
    [
      'branches as a string',
      { environment: 'acceptance', branches: 'main' },
      'branches: "main" must be an object of source name to branch name, e.g. {"app":"main"}',
    ],
    [
      'branches as an array',
      { environment: 'acceptance', branches: ['main'] },
      'branches: ["main"] must be an object of source name to branch name',
    ],
    [
      'branches as null',
      { environment: 'acceptance', branches: null },
      'branches: null must be an object of source name to branch name',
    ],
    [
      'a non-string requestedBy',
      { environment: 'acceptance', requestedBy: 7 },
      'requestedBy: 7 must be a string (short free text)',
    ],
    [
      'an empty requestedBy',
      { environment: 'acceptance', requestedBy: '' },
      'requestedBy: "" must be 1 to 200 characters (got 0)',
    ],
    ['a 201-character requestedBy', { environment: 'acceptance', requestedBy: 'b'.repeat(201) }, 'requestedBy: "bbbb'],
    [
      'a 201-character requestedBy (rule)',
      { environment: 'acceptance', requestedBy: 'b'.repeat(201) },
      'must be 1 to 200 characters (got 201)',
    ],
    [
      'a control character in requestedBy',
      { environment: 'acceptance', requestedBy: 'bob\u0007' },
      'requestedBy: "bob\\u0007" must be printable text; contains U+0007',
    ],
    [
      'a newline in requestedBy',
      { environment: 'acceptance', requestedBy: 'bob\nFAKE LOG LINE' },
      'requestedBy: "bob\\nFAKE LOG LINE" must be printable text; contains U+000A',
    ],
    [
      'a bidi override in requestedBy',
      { environment: 'acceptance', requestedBy: 'bob\u202egnp.exe' },
      'requestedBy: "bob\\u202egnp.exe" must be printable text; contains U+202E',
    ],
    [
      'null input',
      null,
      '(input): null must be a JSON object such as {"environment":"acceptance","branches":{"app":"main"}}',
    ],
    ['string input', 'acceptance', '(input): "acceptance" must be a JSON object'],
    ['array input', [{ environment: 'acceptance' }], '(input): [{"environment":"acceptance"}] must be a JSON object'],
    ['number input', 42, '(input): 42 must be a JSON object'],
    ['missing input', undefined, '(input): (missing) must be a JSON object'],
  ];

  test.each(cases)('fails for %s', (_label, input, expected) => {
    const error = rejection(input);
    expect(error.message).toContain(expected);
  });

  test('fails for an input over 256 KB before any other check, with its size', () => {
    const input = { environment: 'nowhere', requestedBy: 'x'.repeat(MAX_INPUT_BYTES) };
    const size = Buffer.byteLength(JSON.stringify(input));
    const error = rejection(input);
    expect(error.problems).toEqual([`(input): ${size} bytes is over the Step Functions input limit of 262144 bytes`]);
  });

  test('counts the input size in UTF-8 bytes, not characters', () => {
    const input = { environment: 'acceptance', requestedBy: 'é'.repeat(MAX_INPUT_BYTES / 2) };
    expect(rejection(input).problems[0]).toMatch(/^\(input\): \d+ bytes is over/);
  });

  test('reports every problem at once', () => {
    const error = rejection({
      environment: 'staging',
      branches: { app: 'x$(touch pwned)', web: 'main' },
      extra: true,
      requestedBy: '',
    });
    expect(error.problems).toEqual([
      'extra: true is not part of the input; allowed keys: environment, branches, commits, requestedBy, redeploy',
      'environment: "staging" is not a configured environment; one of: acceptance, preproduction, production',
      'branches.app: "x$(touch pwned)" contains "$"; only A-Z a-z 0-9 . _ / - are allowed',
      'branches.web: "main" is for an unknown source "web"; configured sources: app, config',
      'requestedBy: "" must be 1 to 200 characters (got 0)',
    ]);
    expect(error.message).toBe(`the execution input is invalid:\n${error.problems.map((p) => `  ${p}`).join('\n')}`);
  });

  test('accepts a requestedBy with non-ASCII letters and emoji', () => {
    expect(
      checkExecutionInput({ environment: 'acceptance', requestedBy: 'José Ñúñez 🚀 (deploy #42)' }, config),
    ).toEqual([]);
  });
});

describe('validateInput: the plan', () => {
  test('resolves every configured source with defaults, requestedBy null and empty variables', () => {
    const plan = validateInput(
      { environment: 'acceptance', branches: { config: 'develop' } },
      'acceptance-20261129T031500-abc123',
      config,
      CONFIG_PATH,
    );

    expect(plan).toEqual({
      environment: 'acceptance',
      execution: 'acceptance-20261129T031500-abc123',
      requestedBy: null,
      account: '111111111111',
      region: 'eu-west-1',
      deployRoleArn: 'arn:aws:iam::111111111111:role/stepdeploy-deploy',
      variables: {},
      sources: [
        {
          name: 'app',
          branch: 'main',
          repository: resolve(__dirname, '../../.stepdeploy/example-repos/app.git'),
          sourceType: 'LOCAL_GIT',
          path: '.',
          credentialsSecret: null,
          commit: null,
          connectionArn: null,
        },
        {
          name: 'config',
          branch: 'develop',
          repository: resolve(__dirname, '../../.stepdeploy/example-repos/config.git'),
          sourceType: 'LOCAL_GIT',
          path: 'config/',
          credentialsSecret: null,
          commit: null,
          connectionArn: null,
        },
      ],
      hooks: [],
      // acceptance requires no approval: ApprovalRequired goes straight to Deploy.
      approval: { required: false, timeoutSeconds: 14400, allowSelfApproval: false },
      decision: null,
      redeployOf: null,
    });
  });

  test("carries the environment's approval rule, its timeout in whole seconds for TimeoutSecondsPath", () => {
    const withApproval = {
      ...config,
      environments: {
        ...config.environments,
        acceptance: {
          ...config.environments.acceptance!,
          approval: { required: true, timeoutMinutes: 0.05, allowSelfApproval: true },
        },
      },
    };
    const plan = validateInput({ environment: 'acceptance' }, 'acceptance-1', withApproval, CONFIG_PATH);
    expect(plan.approval).toEqual({ required: true, timeoutSeconds: 3, allowSelfApproval: true });
  });

  test('carries requestedBy, variables, hooks and remote repositories as configured', () => {
    const cfg = withEnvironment(
      {
        branches: ['main'],
        variables: { STAGE: 'prod' },
        hooks: [{ name: 'health', url: 'https://example.com/health' }],
      },
      {
        config: {
          repository: 'https://github.com/acme/config',
          path: 'config/',
          credentialsSecret: 'stepdeploy/github-read',
        },
      },
    );

    const plan = validateInput({ environment: 'production', requestedBy: 'alice' }, 'e', cfg, CONFIG_PATH);

    expect(plan.requestedBy).toBe('alice');
    expect(plan.variables).toEqual({ STAGE: 'prod' });
    expect(plan.hooks).toEqual([
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
    // The secret's name travels in the plan (execution history); the token never does.
    expect(plan.sources[1]).toEqual({
      name: 'config',
      branch: 'main',
      repository: 'https://github.com/acme/config',
      sourceType: 'GITHUB',
      path: 'config/',
      credentialsSecret: 'stepdeploy/github-read',
      commit: null,
      connectionArn: null,
    });
  });

  test("names a source's own connection for FetchSourceThroughConnection; GitHub Enterprise's is the account's", () => {
    const connection = 'arn:aws:codeconnections:eu-west-1:111111111111:connection/0a1b2c3d-4e5f-6789-abcd-ef0123456789';
    const cfg = withEnvironment(
      { branches: ['main'] },
      {
        app: { repository: 'https://gitlab.com/acme/app.git', path: '.', connectionArn: connection },
        config: {
          repository: 'https://git.acme.example/acme/config.git',
          type: 'GITHUB_ENTERPRISE',
          path: 'config/',
          connectionArn: connection,
        },
      },
    );

    const plan = validateInput({ environment: 'production' }, 'e', cfg, CONFIG_PATH);

    expect(plan.sources.map((s) => [s.name, s.sourceType, s.connectionArn])).toEqual([
      ['app', 'GITLAB', connection],
      ['config', 'GITHUB_ENTERPRISE', null],
    ]);
  });

  test('pins a source to the commit the input names (a push), the others stay unpinned', () => {
    const commit = 'a'.repeat(40);

    const plan = validateInput(
      { environment: 'acceptance', branches: { app: 'feature/x' }, commits: { app: commit } },
      'e',
      config,
      CONFIG_PATH,
    );

    expect(plan.sources.map((s) => [s.name, s.branch, s.commit])).toEqual([
      ['app', 'feature/x', commit],
      ['config', 'main', null],
    ]);
  });
});

describe('checkExecutionInput: commits', () => {
  test.each([
    [{ app: 'abc123' }, 'commits.app: "abc123" must be a full commit id: 40 (or 64) lowercase hexadecimal digits'],
    [
      { app: 'A'.repeat(40) },
      `commits.app: "${'A'.repeat(40)}" must be a full commit id: 40 (or 64) lowercase hexadecimal digits`,
    ],
    [{ app: 42 }, 'commits.app: 42 must be a full commit id: 40 (or 64) lowercase hexadecimal digits'],
    [
      { web: 'a'.repeat(40) },
      `commits.web: "${'a'.repeat(40)}" is for an unknown source "web"; configured sources: app, config`,
    ],
    ['main', 'commits: "main" must be an object of source name to full commit id, e.g. {"app":"<40 hex digits>"}'],
  ])('refuses commits %j', (commits, message) => {
    expect(checkExecutionInput({ environment: 'acceptance', commits }, config)).toEqual([message]);
  });

  test('takes SHA-1 and SHA-256 commit ids', () => {
    expect(
      checkExecutionInput(
        { environment: 'acceptance', commits: { app: 'a'.repeat(40), config: 'b'.repeat(64) } },
        config,
      ),
    ).toEqual([]);
  });
});

describe('handler', () => {
  test('returns the plan for the event the state machine sends', async () => {
    const handler = createHandler({ STEPDEPLOY_CONFIG_PATH: CONFIG_PATH });

    const plan = await handler({ input: { environment: 'production' }, execution: 'production-1' });

    expect(plan).toMatchObject({ environment: 'production', execution: 'production-1', requestedBy: null });
  });

  test('fails with InvalidInputError for bad input', async () => {
    const handler = createHandler({ STEPDEPLOY_CONFIG_PATH: CONFIG_PATH });

    await expect(
      handler({ input: { environment: 'production', branches: { app: '-c' } }, execution: 'e' }),
    ).rejects.toMatchObject({
      name: 'InvalidInputError',
      message: expect.stringContaining('branches.app: "-c" must not start with "-"'),
    });
  });

  test('fails with InvalidEventError when the event is not what the state machine sends', async () => {
    const handler = createHandler({ STEPDEPLOY_CONFIG_PATH: CONFIG_PATH });

    await expect(handler({ input: {} })).rejects.toMatchObject({
      name: 'InvalidEventError',
      message: expect.stringContaining('execution:'),
    });
  });

  test('fails to start (a cold start) without STEPDEPLOY_CONFIG_PATH, naming the variable', () => {
    expect(() => createHandler({})).toThrow('STEPDEPLOY_CONFIG_PATH environment variable is not set');
  });

  test("each function reads its own environment's config, not process.env's", async () => {
    process.env.STEPDEPLOY_CONFIG_PATH = '/nonexistent/stepdeploy.config.yml';
    try {
      const handler = createHandler({ STEPDEPLOY_CONFIG_PATH: CONFIG_PATH });

      await expect(handler({ input: { environment: 'production' }, execution: 'p-2' })).resolves.toMatchObject({
        environment: 'production',
      });
    } finally {
      delete process.env.STEPDEPLOY_CONFIG_PATH;
    }
  });

  test("Lambda's handler: loads without the variable, then fails the invocation naming it", async () => {
    delete process.env.STEPDEPLOY_CONFIG_PATH;
    await expect(handler({ input: { environment: 'production' }, execution: 'p-3' })).rejects.toMatchObject({
      name: 'EnvironmentVariableError',
      message: 'STEPDEPLOY_CONFIG_PATH environment variable is not set',
    });
  });
});

/** The example config with `production` and some sources replaced, without triggers. */
function withEnvironment(production: Record<string, unknown>, sources: Record<string, unknown> = {}) {
  const raw = JSON.parse(JSON.stringify(config)) as {
    environments: Record<string, Record<string, unknown>>;
    sources: Record<string, unknown>;
  };
  raw.environments.production = { ...raw.environments.production, ...production };
  raw.sources = { ...raw.sources, ...sources };
  // The example's triggers are checked against its default branches, which these cases change.
  for (const environment of Object.values(raw.environments)) environment.triggers = [];
  return parseConfig(raw);
}
