import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { App, Validations } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import { parse as parseYaml } from 'yaml';
import { makeStack, writeConfig } from './fixtures';

/** The example config with the Slack buttons on. */
function slackButtonsConfig(): string {
  return writeConfig((raw) => {
    const notifications = raw.notifications as { slack: Record<string, unknown> };
    notifications.slack.signingSecretName = 'acme/slack-signing';
    notifications.slack.approvers = { U024BE7LH: 'bob@example.com' };
  });
}

const configPath = slackButtonsConfig();
const { app, stack } = makeStack({ configPath, bundle: true });
const template = Template.fromStack(stack);
const approval = stack.pipeline.approval;
const logicalId = (construct: { node: { defaultChild?: unknown } }) =>
  stack.getLogicalId(construct.node.defaultChild as never);
const slackFunctionId = logicalId(approval.slackDecision!.function);
const slackRoleId = logicalId(approval.slackDecision!.role);

function statementsOf(roleId: string): Array<Record<string, unknown>> {
  return Object.values(template.findResources('AWS::IAM::Policy'))
    .filter((p) => (p.Properties.Roles as Array<{ Ref: string }>).some((r) => r.Ref === roleId))
    .flatMap((p) => p.Properties.PolicyDocument.Statement as Array<Record<string, unknown>>);
}

describe('Approval with slackButtons', () => {
  test('slack-decision has a function URL without IAM auth (Slack cannot sign SigV4), output for the Slack app', () => {
    const open = Object.entries(template.findResources('AWS::Lambda::Url', { Properties: { AuthType: 'NONE' } }));

    expect(open.map(([, url]) => url.Properties.TargetFunctionArn)).toEqual([
      { 'Fn::GetAtt': [slackFunctionId, 'Arn'] },
    ]);
    template.hasOutput('SlackActionsUrl', { Value: { 'Fn::GetAtt': [open[0]![0], 'FunctionUrl'] } });
    // decide-approval's URL keeps AWS_IAM.
    template.hasResourceProperties('AWS::Lambda::Url', {
      AuthType: 'AWS_IAM',
      TargetFunctionArn: { 'Fn::GetAtt': [logicalId(approval.decideApproval.function), 'Arn'] },
    });
  });

  test('reads the one signing secret named in the config, and no other', () => {
    const secrets = statementsOf(slackRoleId).filter((s) =>
      [s.Action].flat().some((a) => String(a).startsWith('secretsmanager:')),
    );

    expect(secrets).toEqual([
      {
        Sid: 'ReadSlackSigningSecret',
        Effect: 'Allow',
        Action: 'secretsmanager:GetSecretValue',
        Resource: {
          'Fn::Join': [
            '',
            [
              'arn:',
              { Ref: 'AWS::Partition' },
              ':secretsmanager:',
              { Ref: 'AWS::Region' },
              ':',
              { Ref: 'AWS::AccountId' },
              ':secret:acme/slack-signing-??????',
            ],
          ],
        },
      },
    ]);
  });

  test('may do what decide-approval may (answer tasks, approvals/, the supersede rule) and read its secret; nothing else', () => {
    const actionsOf = (roleId: string) =>
      [...new Set(statementsOf(roleId).flatMap((s) => [s.Action].flat().map(String)))]
        .filter((a) => !/^(logs|xray):/.test(a))
        .sort();
    const resourcesOf = (roleId: string) =>
      statementsOf(roleId)
        .filter((s) => [s.Action].flat().some((a) => /^(s3|states):/.test(String(a))))
        .map((s) => JSON.stringify([s.Action, s.Resource, s.Condition]))
        .sort();
    const decideRoleId = logicalId(approval.decideApproval.role);

    expect(actionsOf(slackRoleId)).toEqual([...actionsOf(decideRoleId), 'secretsmanager:GetSecretValue'].sort());
    expect(actionsOf(slackRoleId)).toEqual(expect.arrayContaining(['states:SendTaskSuccess', 's3:GetObject']));
    expect(resourcesOf(slackRoleId)).toEqual(resourcesOf(decideRoleId));
  });

  test('its bundle carries the config (approvers); the environment names the config and bucket, never a secret', () => {
    const fn = template.findResources('AWS::Lambda::Function')[slackFunctionId]!;
    const variables = fn.Properties.Environment.Variables as Record<string, unknown>;

    expect(Object.keys(variables).sort()).toEqual(['ARTIFACT_BUCKET', 'STEPDEPLOY_CONFIG_PATH']);
    const bundle = join(app.synth().directory, `asset.${fn.Properties.Code.S3Key.replace(/\.zip$/, '')}`);
    expect(existsSync(join(bundle, 'stepdeploy.config.yml'))).toBe(true);
    const bundled = parseYaml(readFileSync(join(bundle, 'stepdeploy.config.yml'), 'utf8'));
    expect(bundled.notifications.slack.approvers).toEqual({ U024BE7LH: 'bob@example.com' });
  });

  test('AwaitApproval offers the buttons; without slackButtons it does not, and there is no open URL', () => {
    template.hasResourceProperties('AWS::Lambda::Function', {
      Environment: {
        Variables: { SLACK_APPROVAL_BUTTONS: 'true', SLACK_WEBHOOK_SECRET_NAME: 'stepdeploy/slack-webhook' },
      },
    });
    const plain = Template.fromStack(makeStack().stack);

    expect(JSON.stringify(plain.toJSON())).not.toContain('SLACK_APPROVAL_BUTTONS');
    expect(plain.findResources('AWS::Lambda::Url', { Properties: { AuthType: 'NONE' } })).toEqual({});
    expect(plain.toJSON().Outputs.SlackActionsUrl).toBeUndefined();
  });

  test('cdk-nag AwsSolutions: no unacknowledged finding', () => {
    const checked = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
    Validations.of(checked).addPlugins(new AwsSolutionsChecks(checked));
    makeStack({ app: checked, configPath });

    expect(() => checked.synth()).not.toThrow();
  });
});
