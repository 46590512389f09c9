import { App, Validations } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import { PipelineStack } from '../../infra/pipeline-stack';
import { CODECOMMIT_REGION_WARNING } from '../../infra/push-receiver';
import { loadConfig } from '../../shared/config';
import { everyProviderConfig, makeStack, writeConfig } from './fixtures';

/** GitHub and GitLab sources and a CodeCommit one, each triggering acceptance. */
function triggeredConfig(): string {
  return writeConfig((raw) => {
    raw.sources = {
      app: { repository: 'https://github.com/acme/app.git', path: '.' },
      config: {
        repository: 'https://gitlab.com/acme/config.git',
        path: 'config/',
        connectionArn: 'arn:aws:codeconnections:eu-west-1:999999999999:connection/0a1b2c3d-4e5f-6789-abcd-ef0123456789',
      },
      settings: {
        repository: 'https://git-codecommit.eu-west-1.amazonaws.com/v1/repos/shop-settings',
        path: 'settings/',
      },
    };
    const environments = raw.environments as Record<string, Record<string, unknown>>;
    environments.acceptance!.triggers = [
      { source: 'app', branches: ['*'] },
      { source: 'config', branches: ['main'] },
      { source: 'settings', branches: ['*'] },
    ];
    environments.preproduction!.triggers = [{ source: 'app', branches: ['main'] }];
  });
}

const { stack } = makeStack({ configPath: triggeredConfig() });
const template = Template.fromStack(stack);
const receiver = stack.pipeline.pushReceiver!;
const functionId = stack.getLogicalId(receiver.task.function.node.defaultChild as never);
const roleId = stack.getLogicalId(receiver.task.role.node.defaultChild as never);
const stateMachineId = stack.getLogicalId(stack.pipeline.deployStateMachine.stateMachine.node.defaultChild as never);

describe('PushReceiver', () => {
  test('one function URL, no IAM auth: the providers cannot sign SigV4, the function checks their signatures', () => {
    // The approval function has a URL of its own (AWS_IAM); the receiver's is the only one without IAM auth.
    const open = Object.entries(template.findResources('AWS::Lambda::Url', { Properties: { AuthType: 'NONE' } }));
    expect(open.map(([, url]) => url.Properties.TargetFunctionArn)).toEqual([{ 'Fn::GetAtt': [functionId, 'Arn'] }]);
    const urlId = open[0]![0];
    template.hasOutput('*', { Value: { 'Fn::GetAtt': [urlId, 'FunctionUrl'] } });
    template.hasResourceProperties('AWS::Lambda::Permission', {
      Action: 'lambda:InvokeFunctionUrl',
      Principal: '*',
      FunctionUrlAuthType: 'NONE',
    });
    // Function URLs created since October 2025 also need lambda:InvokeFunction, for URL calls only.
    template.hasResourceProperties('AWS::Lambda::Permission', {
      Action: 'lambda:InvokeFunction',
      Principal: '*',
      InvokedViaFunctionUrl: true,
    });
  });

  test('a generated secret per webhook provider in use, its NAME in the environment, never a value', () => {
    template.resourceCountIs('AWS::SecretsManager::Secret', 2);
    for (const provider of ['github', 'gitlab']) {
      template.hasResourceProperties('AWS::SecretsManager::Secret', {
        Name: `stepdeploy-example/webhook/${provider}`,
        GenerateSecretString: { PasswordLength: 40, ExcludePunctuation: true },
      });
    }
    const variables = template.findResources('AWS::Lambda::Function')[functionId]!.Properties.Environment.Variables;
    expect(JSON.parse(variables.WEBHOOK_SECRET_NAMES)).toEqual({
      github: 'stepdeploy-example/webhook/github',
      gitlab: 'stepdeploy-example/webhook/gitlab',
    });
    expect(variables.STATE_MACHINE_ARN).toEqual({ Ref: stateMachineId });
    expect(JSON.stringify(variables)).not.toMatch(/SecretString|resolve:secretsmanager/);
  });

  test('its role starts executions of this state machine only and reads only its secrets', () => {
    const policies = Object.values(template.findResources('AWS::IAM::Policy')).filter((p) =>
      JSON.stringify(p.Properties.Roles).includes(roleId),
    );
    const statements = policies.flatMap((p) => p.Properties.PolicyDocument.Statement as Array<Record<string, unknown>>);
    const of = (action: string) => statements.filter((s) => [s.Action].flat().includes(action));

    expect(of('states:StartExecution')).toEqual([
      { Sid: 'StartDeployments', Effect: 'Allow', Action: 'states:StartExecution', Resource: { Ref: stateMachineId } },
    ]);
    expect(of('secretsmanager:GetSecretValue').map((s) => s.Resource)).toEqual(
      Object.values(receiver.secrets).map((secret) => ({ Ref: stack.getLogicalId(secret.node.defaultChild as never) })),
    );
    const actions = statements.flatMap((s) => [s.Action].flat());
    expect(actions.filter((a) => !/^(logs|xray):/.test(String(a))).sort()).toEqual([
      'secretsmanager:GetSecretValue',
      'secretsmanager:GetSecretValue',
      'states:StartExecution',
    ]);
  });

  test('CodeCommit branch pushes of the triggered repository reach the same function through EventBridge', () => {
    template.hasResourceProperties('AWS::Events::Rule', {
      EventPattern: {
        source: ['aws.codecommit'],
        'detail-type': ['CodeCommit Repository State Change'],
        resources: [{ 'Fn::Join': ['', Match.arrayWith([':codecommit:eu-west-1:', ':shop-settings'])] }],
        detail: { event: ['referenceCreated', 'referenceUpdated'], referenceType: ['branch'] },
      },
      Targets: [Match.objectLike({ Arn: { 'Fn::GetAtt': [functionId, 'Arn'] }, RetryPolicy: Match.anyValue() })],
    });
    template.hasResourceProperties('AWS::Lambda::Permission', {
      Action: 'lambda:InvokeFunction',
      Principal: 'events.amazonaws.com',
      FunctionName: { 'Fn::GetAtt': [functionId, 'Arn'] },
    });
  });

  test('the example config (local repositories) has no receiver on AWS', () => {
    const example = makeStack().stack;
    expect(example.pipeline.pushReceiver).toBeUndefined();
    expect(Template.fromStack(example).findResources('AWS::Lambda::Url', { Properties: { AuthType: 'NONE' } })).toEqual(
      {},
    );
  });

  test('a CodeCommit trigger in another region than the stack is a warning: its events never arrive there', () => {
    const configPath = writeConfig((raw) => {
      raw.sources = { app: { repository: 'https://git-codecommit.us-east-1.amazonaws.com/v1/repos/shop', path: '.' } };
      const environments = raw.environments as Record<string, Record<string, unknown>>;
      environments.acceptance!.triggers = [{ source: 'app', branches: ['*'] }];
      environments.preproduction!.triggers = [];
    });
    const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
    const elsewhere = new PipelineStack(app, 'Elsewhere', {
      config: loadConfig(configPath),
      configPath,
      env: { account: '999999999999', region: 'eu-west-1' },
    });

    Annotations.fromStack(elsewhere).hasWarning(
      '*',
      Match.stringLikeRegexp(
        `sources.app is a CodeCommit repository in us-east-1, but this stack is in eu-west-1.*${CODECOMMIT_REGION_WARNING}`,
      ),
    );
  });

  test('cdk-nag AwsSolutions: no unacknowledged finding with every provider triggered', () => {
    const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
    Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
    makeStack({ app, configPath: everyProviderConfig() });
    expect(() => app.synth()).not.toThrow();
  });
});
