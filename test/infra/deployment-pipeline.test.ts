import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App, Stack, Validations } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import * as ssm from 'aws-cdk-lib/aws-ssm';
import { AwsSolutionsChecks } from 'cdk-nag';
// What a user's CDK app imports: the package's entry point.
import { DeploymentPipeline, DeployRoles, loadConfig } from '../../index';
import { cfnLintErrors, cfnLintVersion, haveCfnLint } from './cfn-lint';
import { writeConfig } from './fixtures';

const TOOLING = '999999999999';

/** The example config with repository URLs (as on AWS) and, unless told otherwise, the tooling account. */
const userConfig = (change: (raw: Record<string, unknown>) => void = () => {}) =>
  writeConfig((raw) => {
    raw.toolingAccount = TOOLING;
    raw.sources = {
      app: { repository: 'https://github.com/acme/shop.git', path: '.' },
      config: { repository: 'https://github.com/acme/shop-config.git', path: 'config/' },
    };
    const environments = raw.environments as Record<string, Record<string, unknown>>;
    for (const environment of Object.values(environments)) environment.triggers = [];
    change(raw);
  });

const outdirs: string[] = [];
afterAll(() => {
  for (const dir of outdirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** A user's app, bundling skipped (nothing here reads a bundle), with cdk-nag's AwsSolutions pack. */
function userApp(): App {
  const outdir = mkdtempSync(join(tmpdir(), 'stepdeploy-user-app-'));
  outdirs.push(outdir);
  const app = new App({ outdir, context: { 'aws:cdk:bundling-stacks': [] } });
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  return app;
}

/** The user's own tooling stack: their parameter, and the pipeline beside it. */
function toolingStack(app: App, props: ConstructorParameters<typeof DeploymentPipeline>[2]) {
  const stack = new Stack(app, 'Tooling', { env: { account: TOOLING, region: 'eu-west-1' } });
  const parameter = new ssm.StringParameter(stack, 'ReleaseChannel', { stringValue: 'stable' });
  const pipeline = new DeploymentPipeline(stack, 'Pipeline', props);
  return { stack, parameter, pipeline };
}

describe('DeploymentPipeline in a stack of your own', () => {
  const configPath = userConfig();
  const app = userApp();
  const { stack, parameter, pipeline } = toolingStack(app, { configPath });
  const production = new Stack(app, 'ProductionRoles', { env: { account: '333333333333', region: 'us-east-1' } });
  const roles = new DeployRoles(production, 'DeployRoles', { configPath });
  let assemblyDir: string;

  test('synthesizes beside your construct, with cdk-nag AwsSolutions and no unacknowledged finding', () => {
    expect(() => {
      assemblyDir = app.synth().directory;
    }).not.toThrow();
    const template = Template.fromStack(stack);
    template.hasResourceProperties('AWS::SSM::Parameter', { Value: 'stable' });
    expect(stack.getLogicalId(parameter.node.defaultChild as never)).toMatch(/^ReleaseChannel/);
    template.hasResourceProperties('AWS::StepFunctions::StateMachine', { StateMachineName: 'stepdeploy-example' });
    // Its resources and outputs carry the id you gave it, so they cannot collide with yours.
    const ids = [
      stack.getLogicalId(pipeline.deployStateMachine.stateMachine.node.defaultChild as never),
      stack.getLogicalId(pipeline.artifacts.bucket.node.defaultChild as never),
    ];
    for (const id of ids) expect(id).toMatch(/^Pipeline/);
    expect(Object.keys(template.findOutputs('*'))).toEqual(
      expect.arrayContaining([expect.stringMatching(/^PipelineStateMachineArn/)]),
    );
  });

  test('the deploy roles of an environment account: from the stack account, trusting the tooling account', () => {
    expect(roles.roles).toHaveLength(1);
    Template.fromStack(production).hasResourceProperties('AWS::IAM::Role', {
      RoleName: 'stepdeploy-deploy',
      AssumeRolePolicyDocument: {
        Statement: [
          Match.objectLike({
            Condition: {
              ArnEquals: { 'aws:PrincipalArn': `arn:aws:iam::${TOOLING}:role/stepdeploy-example-deploy-project` },
            },
          }),
        ],
      },
    });
  });

  (haveCfnLint ? test : test.skip)(`cfn-lint (${cfnLintVersion}): no error in your app's templates`, () => {
    expect(cfnLintErrors("user's app", assemblyDir)).toEqual([]);
  });
});

describe('DeploymentPipeline props', () => {
  test('a config given as an object is written into the assembly, and that file loads as the same config', () => {
    const config = loadConfig(userConfig());
    const app = userApp();
    toolingStack(app, { config });
    const dir = app.synth().directory;
    const written = readdirSync(dir).filter((f) => /^stepdeploy\.config\.[0-9a-f]{16}\.yml$/.test(f));
    expect(written).toHaveLength(1);
    expect(loadConfig(join(dir, written[0]!))).toEqual(config);
  });

  test('the same config, as a file or as an object, makes the same resources', () => {
    const configPath = userConfig();
    const fromFile = Template.fromStack(toolingStack(userApp(), { configPath }).stack).toJSON();
    const fromObject = Template.fromStack(toolingStack(userApp(), { config: loadConfig(configPath) }).stack).toJSON();
    expect(Object.keys(fromObject.Resources)).toEqual(Object.keys(fromFile.Resources));
  });

  test('fails when given neither config nor configPath, saying what to pass', () => {
    expect(() => toolingStack(userApp(), {})).toThrow(
      "DeploymentPipeline needs the pipeline config, got neither config nor configPath; pass { configPath: 'stepdeploy.config.yml' } or { config: loadConfig('stepdeploy.config.yml') }",
    );
  });

  test('fails when the config object is invalid, naming the field and the value', () => {
    const config = loadConfig(userConfig());
    const broken = {
      ...config,
      environments: { ...config.environments, acceptance: { ...config.environments.acceptance!, account: '1234' } },
    };
    expect(() => toolingStack(userApp(), { config: broken })).toThrow(
      /DeploymentPipeline config is invalid:\n {2}environments\.acceptance\.account: must be a 12-digit AWS account id \(got "1234"\)/,
    );
  });

  test('a local repository path gets a warning on the construct', () => {
    const app = userApp();
    const { pipeline } = toolingStack(app, {
      configPath: userConfig((raw) => {
        (raw.sources as Record<string, { repository: string }>).app!.repository = '../shop';
      }),
    });
    Annotations.fromStack(Stack.of(pipeline)).hasWarning(
      '/Tooling/Pipeline',
      Match.stringLikeRegexp('sources\\.app\\.repository is a local path'),
    );
  });
});

describe('DeployRoles props', () => {
  const environmentStack = (env?: { account: string; region: string }) => new Stack(userApp(), 'Roles', { env });

  test('takes the tooling account from the props when the config has none', () => {
    const stack = environmentStack({ account: '111111111111', region: 'eu-west-1' });
    new DeployRoles(stack, 'DeployRoles', {
      configPath: userConfig((raw) => delete raw.toolingAccount),
      toolingAccount: '444444444444',
    });
    Template.fromStack(stack).hasResourceProperties('AWS::IAM::Role', {
      AssumeRolePolicyDocument: {
        Statement: [
          Match.objectLike({
            Condition: {
              ArnEquals: { 'aws:PrincipalArn': 'arn:aws:iam::444444444444:role/stepdeploy-example-deploy-project' },
            },
          }),
        ],
      },
    });
  });

  test('fails when the tooling account is known neither from the config nor from the props', () => {
    expect(
      () =>
        new DeployRoles(environmentStack({ account: '111111111111', region: 'eu-west-1' }), 'DeployRoles', {
          configPath: userConfig((raw) => delete raw.toolingAccount),
        }),
    ).toThrow(
      "DeployRoles needs the tooling account (where the pipeline's stack is) as 12 digits, got none; set toolingAccount in the config or pass toolingAccount",
    );
  });

  test('fails in a stack without an account unless told the environment account, listing the accounts', () => {
    expect(() => new DeployRoles(environmentStack(), 'DeployRoles', { configPath: userConfig() })).toThrow(
      /needs the environment account, got none: the stack has no env\.account; give the stack env: \{ account \} or pass environmentAccount \(one of 111111111111, 222222222222, 333333333333\)/,
    );
    const stack = environmentStack();
    new DeployRoles(stack, 'DeployRoles', { configPath: userConfig(), environmentAccount: '222222222222' });
    Template.fromStack(stack).resourceCountIs('AWS::IAM::Role', 1);
  });

  test('fails for an account that no environment is in', () => {
    expect(
      () =>
        new DeployRoles(environmentStack({ account: '555555555555', region: 'eu-west-1' }), 'DeployRoles', {
          configPath: userConfig(),
        }),
    ).toThrow(
      'environmentAccount 555555555555 is the account of no environment in the config; use one of 111111111111, 222222222222, 333333333333',
    );
  });
});
