import { App, Stack, Validations } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import { DeployRole } from '../../infra/deploy-role';
import { definePipelineApp } from '../../infra/pipeline-app';
import { writeConfig } from './fixtures';

const TOOLING = '999999999999';
const TRUSTED = `arn:aws:iam::${TOOLING}:role/shop-deploy-project`;

const noBundling = () => new App({ context: { 'aws:cdk:bundling-stacks': [] } });
const environmentStack = (app = noBundling()) =>
  new Stack(app, 'Env', { env: { account: '111111111111', region: 'eu-west-1' } });

describe('DeployRole', () => {
  test("has the config's name and path, and trusts only the tooling account's deploy project role, by ARN condition", () => {
    const stack = environmentStack();
    new DeployRole(stack, 'Deploy', {
      roleArn: 'arn:aws:iam::111111111111:role/deploy/shop-deploy',
      trustedRoleArn: TRUSTED,
    });
    const template = Template.fromStack(stack);
    template.resourceCountIs('AWS::IAM::Role', 1);
    template.hasResourceProperties('AWS::IAM::Role', {
      RoleName: 'shop-deploy',
      Path: '/deploy/',
      MaxSessionDuration: 3600,
      AssumeRolePolicyDocument: {
        Statement: [
          {
            Effect: 'Allow',
            Action: 'sts:AssumeRole',
            Principal: { AWS: { 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, `:iam::${TOOLING}:root`]] } },
            Condition: { ArnEquals: { 'aws:PrincipalArn': TRUSTED } },
          },
        ],
      },
    });
    // Nothing granted beyond the trust unless the config asks for it.
    template.resourceCountIs('AWS::IAM::Policy', 0);
    expect(JSON.stringify(template.toJSON())).not.toContain('ManagedPolicyArns');
  });

  test('grants what the config names: managed policies, and passing execution roles to CloudFormation only', () => {
    const stack = environmentStack();
    new DeployRole(stack, 'Deploy', {
      roleArn: 'arn:aws:iam::111111111111:role/shop-deploy',
      trustedRoleArn: TRUSTED,
      managedPolicyArns: ['arn:aws:iam::111111111111:policy/shop-stacks'],
      cloudFormationExecutionRoleArns: ['arn:aws:iam::111111111111:role/shop-cfn-exec'],
    });
    const template = Template.fromStack(stack);
    template.hasResourceProperties('AWS::IAM::Role', {
      ManagedPolicyArns: ['arn:aws:iam::111111111111:policy/shop-stacks'],
    });
    template.hasResourceProperties('AWS::IAM::Policy', {
      PolicyDocument: {
        Statement: [
          {
            Sid: 'PassExecutionRolesToCloudFormation',
            Effect: 'Allow',
            Action: 'iam:PassRole',
            Resource: 'arn:aws:iam::111111111111:role/shop-cfn-exec',
            Condition: { StringEquals: { 'iam:PassedToService': 'cloudformation.amazonaws.com' } },
          },
        ],
      },
    });
  });

  test('fails when the role belongs to another account than the stack, naming both and the fix', () => {
    expect(
      () =>
        new DeployRole(environmentStack(), 'Deploy', {
          roleArn: 'arn:aws:iam::222222222222:role/shop-deploy',
          trustedRoleArn: TRUSTED,
        }),
    ).toThrow(
      "the deploy role arn:aws:iam::222222222222:role/shop-deploy belongs to account 222222222222, but this stack deploys to account 111111111111; deploy it with the environment account's credentials (its stack's env.account)",
    );
  });

  test('fails when the trusted role is not a role ARN', () => {
    expect(
      () =>
        new DeployRole(environmentStack(), 'Deploy', {
          roleArn: 'arn:aws:iam::111111111111:role/shop-deploy',
          trustedRoleArn: `arn:aws:iam::${TOOLING}:root`,
        }),
    ).toThrow(
      /trustedRoleArn must be the tooling account's deploy project role ARN .*got arn:aws:iam::999999999999:root/,
    );
  });
});

describe('the app: pipeline stack and deploy role stacks', () => {
  const configWithTooling = (change: (raw: Record<string, unknown>) => void = () => {}) =>
    writeConfig((raw) => {
      raw.toolingAccount = TOOLING;
      change(raw);
    });

  test('one deploy role stack per environment account, whose role trusts the deploy project role the pipeline stack names', () => {
    const { pipeline, deployRoles } = definePipelineApp(noBundling(), configWithTooling());
    expect(deployRoles.map((s) => [s.stackName, s.account, s.region])).toEqual([
      ['stepdeploy-example-deploy-roles-111111111111', '111111111111', 'eu-west-1'],
      ['stepdeploy-example-deploy-roles-222222222222', '222222222222', 'eu-west-1'],
      ['stepdeploy-example-deploy-roles-333333333333', '333333333333', 'eu-west-1'],
    ]);
    expect(pipeline.account).toBe(TOOLING);
    // The deploy project's role has the fixed name the trust names: no cross-stack token.
    const projectRoles = Template.fromStack(pipeline).findResources('AWS::IAM::Role', {
      Properties: { RoleName: 'stepdeploy-example-deploy-project' },
    });
    expect(Object.keys(projectRoles)).toEqual([expect.stringMatching(/^ProjectsDeployRole/)]);
    for (const stack of deployRoles) {
      Template.fromStack(stack).hasResourceProperties('AWS::IAM::Role', {
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
    }
  });

  test('environments sharing an account get one stack; sharing a role, one role with both grants', () => {
    const configPath = configWithTooling((raw) => {
      const environments = raw.environments as Record<string, Record<string, unknown>>;
      environments.preproduction!.account = '111111111111';
      environments.preproduction!.deployRoleArn = 'arn:aws:iam::111111111111:role/stepdeploy-deploy';
      environments.acceptance!.deployRole = { managedPolicyArns: ['arn:aws:iam::111111111111:policy/acc'] };
      environments.preproduction!.deployRole = { managedPolicyArns: ['arn:aws:iam::111111111111:policy/pre'] };
    });
    const { deployRoles } = definePipelineApp(noBundling(), configPath);
    expect(deployRoles.map((s) => s.account)).toEqual(['111111111111', '333333333333']);
    const template = Template.fromStack(deployRoles[0]!);
    template.resourceCountIs('AWS::IAM::Role', 1);
    template.hasResourceProperties('AWS::IAM::Role', {
      ManagedPolicyArns: ['arn:aws:iam::111111111111:policy/acc', 'arn:aws:iam::111111111111:policy/pre'],
    });
  });

  test('without toolingAccount the app makes the pipeline stack only', () => {
    expect(
      definePipelineApp(
        noBundling(),
        writeConfig(() => {}),
      ).deployRoles,
    ).toEqual([]);
  });

  test('cdk-nag: the deploy role stacks have no unacknowledged finding, an AWS managed policy from the config included', () => {
    const app = noBundling();
    Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
    const configPath = configWithTooling((raw) => {
      const environments = raw.environments as Record<string, Record<string, unknown>>;
      environments.production!.deployRole = { managedPolicyArns: ['arn:aws:iam::aws:policy/ReadOnlyAccess'] };
    });
    definePipelineApp(app, configPath);
    expect(() => app.synth()).not.toThrow();
  });
});
