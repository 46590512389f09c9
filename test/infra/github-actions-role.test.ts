import { App, Stack, Validations } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as codebuild from 'aws-cdk-lib/aws-codebuild';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { AwsSolutionsChecks } from 'cdk-nag';
import { GitHubActionsRole, type GitHubActionsRoleProps } from '../../infra/github-actions-role';

/** A stack with a state machine and a project whose ARNs are tokens, as in the pipeline stack. */
function pipelineLike(app = new App()) {
  const stack = new Stack(app, 'Pipeline');
  const stateMachine = new sfn.StateMachine(stack, 'StateMachine', {
    definitionBody: sfn.DefinitionBody.fromString('{"StartAt":"Done","States":{"Done":{"Type":"Succeed"}}}'),
  });
  const project = codebuild.Project.fromProjectName(stack, 'Fetch', 'shop-fetch');
  return { app, stack, stateMachine, projects: [project] };
}

function roleIn(props: Partial<GitHubActionsRoleProps> = {}) {
  const { stack, stateMachine, projects } = pipelineLike();
  const role = new GitHubActionsRole(stack, 'GitHubActions', {
    repository: 'octo-org/shop-app',
    branches: ['main'],
    stateMachine,
    projects,
    ...props,
  });
  return { stack, role, template: Template.fromStack(stack) };
}

describe('GitHubActionsRole', () => {
  test('trusts only OIDC tokens of the one repository and branch, for the STS audience', () => {
    const { template } = roleIn();

    template.resourceCountIs('AWS::IAM::OIDCProvider', 1);
    template.hasResourceProperties('AWS::IAM::OIDCProvider', {
      Url: 'https://token.actions.githubusercontent.com',
      ClientIdList: ['sts.amazonaws.com'],
    });
    template.hasResourceProperties('AWS::IAM::Role', {
      MaxSessionDuration: 3600,
      AssumeRolePolicyDocument: {
        Statement: [
          {
            Action: 'sts:AssumeRoleWithWebIdentity',
            Effect: 'Allow',
            Principal: { Federated: Match.anyValue() },
            Condition: {
              StringEquals: {
                'token.actions.githubusercontent.com:aud': 'sts.amazonaws.com',
                'token.actions.githubusercontent.com:sub': ['repo:octo-org/shop-app:ref:refs/heads/main'],
              },
            },
          },
        ],
      },
    });
  });

  test('matches branch patterns with StringLike, the audience still with StringEquals', () => {
    const { template } = roleIn({ branches: ['main', 'release/*'] });

    template.hasResourceProperties('AWS::IAM::Role', {
      AssumeRolePolicyDocument: {
        Statement: [
          Match.objectLike({
            Condition: {
              StringEquals: { 'token.actions.githubusercontent.com:aud': 'sts.amazonaws.com' },
              StringLike: {
                'token.actions.githubusercontent.com:sub': [
                  'repo:octo-org/shop-app:ref:refs/heads/main',
                  'repo:octo-org/shop-app:ref:refs/heads/release/*',
                ],
              },
            },
          }),
        ],
      },
    });
  });

  test("may only start this state machine's executions and read what start --wait follows", () => {
    const { stack, role, template } = roleIn();
    const roleId = stack.getLogicalId(role.role.node.defaultChild as iam.CfnRole);
    const policies = template.findResources('AWS::IAM::Policy', { Properties: { Roles: [{ Ref: roleId }] } });
    const statements = Object.values(policies).flatMap(
      (p) =>
        (p.Properties.PolicyDocument as { Statement: Array<{ Action: string | string[]; Resource: unknown }> })
          .Statement,
    );

    expect(statements.flatMap((s) => [s.Action].flat()).sort()).toEqual([
      'codebuild:BatchGetBuilds',
      'states:DescribeExecution',
      'states:DescribeStateMachineForExecution',
      'states:GetExecutionHistory',
      'states:StartExecution',
    ]);
    const start = statements.find((s) => s.Action === 'states:StartExecution')!;
    expect(start.Resource).toEqual({
      Ref: stack.getLogicalId(stack.node.findChild('StateMachine').node.defaultChild as sfn.CfnStateMachine),
    });
    const reads = statements.find((s) => [s.Action].flat().includes('states:GetExecutionHistory'))!;
    expect(JSON.stringify(reads.Resource)).toMatch(/:execution:.*StateMachine.*:\*/);
    const builds = statements.find((s) => s.Action === 'codebuild:BatchGetBuilds')!;
    expect(JSON.stringify(builds.Resource)).toContain(':project/shop-fetch');
  });

  test('uses an existing OIDC provider instead of creating one', () => {
    const { stack, stateMachine } = pipelineLike();
    const provider = iam.OidcProviderNative.fromOidcProviderArn(
      stack,
      'Existing',
      'arn:aws:iam::111111111111:oidc-provider/token.actions.githubusercontent.com',
    );

    new GitHubActionsRole(stack, 'GitHubActions', {
      repository: 'octo-org/shop-app',
      branches: ['main'],
      stateMachine,
      oidcProvider: provider,
    });

    const template = Template.fromStack(stack);
    template.resourceCountIs('AWS::IAM::OIDCProvider', 0);
    template.hasResourceProperties('AWS::IAM::Role', {
      AssumeRolePolicyDocument: {
        Statement: [
          Match.objectLike({
            Principal: { Federated: 'arn:aws:iam::111111111111:oidc-provider/token.actions.githubusercontent.com' },
          }),
        ],
      },
    });
  });

  test('passes cdk-nag AwsSolutions with no finding', () => {
    const app = new App();
    Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
    const { stack, stateMachine, projects } = pipelineLike(app);
    new GitHubActionsRole(stack, 'GitHubActions', {
      repository: 'octo-org/shop-app',
      branches: ['main'],
      stateMachine,
      projects,
    });
    // The stand-in pipeline's own findings are not this construct's.
    Validations.of(stack.node.findChild('StateMachine')).acknowledge(
      { id: 'AwsSolutions-SF1', reason: 'A stand-in state machine for this test, not the pipeline' },
      { id: 'AwsSolutions-SF2', reason: 'A stand-in state machine for this test, not the pipeline' },
    );

    expect(() => app.synth()).not.toThrow();
  });

  test.each([
    ['repository', { repository: 'octo-org' }, /repository must be a GitHub repository as owner\/name/],
    ['repository', { repository: 'octo-org/*' }, /got "octo-org\/\*"/],
    ['branches', { branches: [] }, /branches must name at least one branch/],
    ['branches', { branches: ['*'] }, /"\*" cannot restrict the token's sub/],
    ['branches', { branches: ['release/?'] }, /"release\/\?" cannot restrict/],
    ['branches', { branches: ['main:ref'] }, /"main:ref" cannot restrict/],
  ])('fails on a bad %s (%j) with the value and the fix', (_field, props, message) => {
    expect(() => roleIn(props as Partial<GitHubActionsRoleProps>)).toThrow(message);
  });
});
