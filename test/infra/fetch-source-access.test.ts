import { App, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as iam from 'aws-cdk-lib/aws-iam';
import { codeCommitRepositoryArn, fetchSourceStatements } from '../../infra/fetch-source-access';
import { parseConfig, type SourceConfig } from '../../shared/config';
import { exampleConfig, makeStack, writeConfig } from './fixtures';

const CONNECTION = 'arn:aws:codeconnections:eu-west-1:123456789012:connection/0a1b2c3d-4e5f-6789-abcd-ef0123456789';
const LEGACY_CONNECTION =
  'arn:aws:codestar-connections:eu-west-1:123456789012:connection/9f8e7d6c-5b4a-3210-fedc-ba9876543210';

/** The sources, validated by the config schema as a user would write them. */
function sources(raw: Record<string, Partial<SourceConfig>>): Record<string, SourceConfig> {
  const config = JSON.parse(JSON.stringify(exampleConfig())) as Record<string, unknown>;
  config.sources = raw;
  return parseConfig(config).sources;
}

/** The role policy a stack gets from these sources' statements. */
function statementsFor(raw: Record<string, Partial<SourceConfig>>): unknown[] {
  const stack = new Stack(new App(), 'Test', { env: { account: '123456789012', region: 'eu-west-1' } });
  const role = new iam.Role(stack, 'Role', { assumedBy: new iam.ServicePrincipal('codebuild.amazonaws.com') });
  for (const statement of fetchSourceStatements(stack, sources(raw))) role.addToPolicy(statement);
  const policies = Object.values(Template.fromStack(stack).findResources('AWS::IAM::Policy'));
  return policies.flatMap((p) => (p.Properties.PolicyDocument as { Statement: unknown[] }).Statement);
}

describe('fetch source access', () => {
  test('CodeCommit: codecommit:GitPull on each configured repository, in the region of its URL', () => {
    expect(
      statementsFor({
        app: { repository: 'https://git-codecommit.eu-west-1.amazonaws.com/v1/repos/shop-app', path: '.' },
        config: { repository: 'https://git-codecommit.us-east-2.amazonaws.com/v1/repos/shop.config', path: 'config/' },
      }),
    ).toEqual([
      {
        Sid: 'CloneCodeCommitSources',
        Effect: 'Allow',
        Action: 'codecommit:GitPull',
        // The partition is the stack's (aws, aws-cn, aws-us-gov).
        Resource: [':codecommit:eu-west-1:123456789012:shop-app', ':codecommit:us-east-2:123456789012:shop.config'].map(
          (rest) => ({
            'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, rest]],
          }),
        ),
      },
    ]);
  });

  test('fails when a CODECOMMIT source is not a CodeCommit clone URL, naming the source, the value and the fix', () => {
    const stack = new Stack(new App(), 'Test');
    expect(() => codeCommitRepositoryArn(stack, 'app', 'https://example.com/repos/app')).toThrow(
      'sources.app.repository: cannot tell the CodeCommit repository from "https://example.com/repos/app", so the fetch project cannot be granted codecommit:GitPull on it; use the HTTPS clone URL CodeCommit shows (https://git-codecommit.<region>.amazonaws.com/v1/repos/<repository>) or fix "type"',
    );
    expect(
      () =>
        statementsFor({
          app: {
            repository: 'ssh://git-codecommit.eu-west-1.amazonaws.com/v1/repos/app',
            type: 'CODECOMMIT',
            path: '.',
          },
        }),
      // An SSH clone URL no longer reaches the stack: the config refuses it (CodeBuild clones over HTTPS).
    ).toThrow(/sources\.app\.repository: is an SSH address, which CodeBuild cannot fetch/);
  });

  test("connections: GetConnectionToken and GetConnection on those connections, under each ARN's own service prefix", () => {
    expect(
      statementsFor({
        app: { repository: 'https://gitlab.com/acme/app.git', path: '.', connectionArn: CONNECTION },
        config: { repository: 'https://github.com/acme/config.git', path: 'config/', connectionArn: LEGACY_CONNECTION },
        lib: { repository: 'https://bitbucket.org/acme/lib.git', path: 'lib/', connectionArn: CONNECTION },
      }),
    ).toEqual([
      {
        Sid: 'CloneThroughConnections',
        Effect: 'Allow',
        Action: ['codeconnections:GetConnectionToken', 'codeconnections:GetConnection'],
        Resource: CONNECTION,
      },
      {
        Sid: 'CloneThroughLegacyConnections',
        Effect: 'Allow',
        Action: ['codestar-connections:GetConnectionToken', 'codestar-connections:GetConnection'],
        Resource: LEGACY_CONNECTION,
      },
    ]);
  });

  test('GitHub, GitHub Enterprise and Bitbucket without a connection need no IAM: the account source credential clones them', () => {
    expect(
      statementsFor({
        app: { repository: 'https://github.com/acme/app.git', path: '.' },
        config: { repository: 'https://git.acme.example/acme/config.git', type: 'GITHUB_ENTERPRISE', path: 'config/' },
        lib: { repository: 'https://bitbucket.org/acme/lib.git', path: 'lib/' },
      }),
    ).toEqual([]);
  });

  test('two GitHub (or GitLab, Bitbucket) sources with two connections: each build names its own, the role may use both', () => {
    const THIRD = 'arn:aws:codeconnections:eu-west-1:123456789012:connection/11111111-2222-3333-4444-555555555555';

    const statements = statementsFor({
      app: { repository: 'https://github.com/acme/app.git', path: '.', connectionArn: CONNECTION },
      config: { repository: 'https://github.com/acme/config.git', path: 'config/', connectionArn: THIRD },
    });

    expect(statements).toEqual([
      {
        Sid: 'CloneThroughConnections',
        Effect: 'Allow',
        Action: ['codeconnections:GetConnectionToken', 'codeconnections:GetConnection'],
        Resource: [CONNECTION, THIRD],
      },
    ]);
  });

  test('fails for two connections for GitHub Enterprise: StartBuild takes no per-build connection for it', () => {
    expect(() =>
      statementsFor({
        app: {
          repository: 'https://git.acme.example/acme/app.git',
          type: 'GITHUB_ENTERPRISE',
          path: '.',
          connectionArn: CONNECTION,
        },
        config: {
          repository: 'https://git.acme.example/acme/config.git',
          type: 'GITHUB_ENTERPRISE',
          path: 'config/',
          connectionArn: LEGACY_CONNECTION,
        },
      }),
    ).toThrow(
      /sources\.app\.connectionArn and sources\.config\.connectionArn name different connections for GITHUB_ENTERPRISE; StartBuild takes no per-build connection .*use the same connectionArn for both/,
    );
  });

  test('fails for a GitLab source without a connection, naming the setting', () => {
    expect(() =>
      statementsFor({
        app: { repository: 'https://gitlab.example.com/acme/app.git', type: 'GITLAB_SELF_MANAGED', path: '.' },
      }),
    ).toThrow(
      'sources.app: CodeBuild reaches GITLAB_SELF_MANAGED repositories only through a CodeConnections connection; create one (README "Deploy to AWS") and set sources.app.connectionArn to its ARN',
    );
  });
});

describe('the pipeline stack', () => {
  test("the fetch project's role may pull the CodeCommit sources and use the GitLab source's connection, and no other role may", () => {
    const configPath = writeConfig((raw) => {
      raw.sources = {
        app: { repository: 'https://git-codecommit.eu-west-1.amazonaws.com/v1/repos/shop-app', path: '.' },
        config: { repository: 'https://gitlab.com/acme/config.git', path: 'config/', connectionArn: CONNECTION },
      };
    });
    const policies = Object.entries(
      Template.fromStack(makeStack({ configPath }).stack).findResources('AWS::IAM::Policy'),
    );
    const holders = (action: string) =>
      policies.filter(([, p]) => JSON.stringify(p.Properties.PolicyDocument).includes(`"${action}"`)).map(([id]) => id);
    expect(holders('codecommit:GitPull')).toEqual([expect.stringMatching(/^ProjectsFetchRole/)]);
    expect(holders('codeconnections:GetConnectionToken')).toEqual([expect.stringMatching(/^ProjectsFetchRole/)]);
    const fetchPolicy = JSON.stringify(policies.find(([id]) => id.startsWith('ProjectsFetchRole'))![1]);
    expect(fetchPolicy).toContain(':codecommit:eu-west-1:');
    expect(fetchPolicy).toContain(':shop-app');
    expect(fetchPolicy).toContain(CONNECTION);
  });
});

describe('config: connectionArn', () => {
  test('fails for a value that is not a connection ARN, with an example and where to find it', () => {
    expect(() =>
      sources({
        app: {
          repository: 'https://gitlab.com/acme/app.git',
          path: '.',
          connectionArn: 'arn:aws:iam::123456789012:role/x',
        },
      }),
    ).toThrow(
      /sources\.app\.connectionArn: must be a CodeConnections connection ARN such as arn:aws:codeconnections:eu-west-1:123456789012:connection\/<id> .*Settings > Connections \(got "arn:aws:iam::123456789012:role\/x"\)/,
    );
  });

  test('fails for a connection on a CodeCommit source, which CodeBuild reads with its role', () => {
    expect(() =>
      sources({
        app: {
          repository: 'https://git-codecommit.eu-west-1.amazonaws.com/v1/repos/app',
          path: '.',
          connectionArn: CONNECTION,
        },
      }),
    ).toThrow(
      /sources\.app\.connectionArn: is for GITHUB, GITHUB_ENTERPRISE, GITLAB, GITLAB_SELF_MANAGED, BITBUCKET sources; source "app" is CODECOMMIT: remove it/,
    );
  });
});
