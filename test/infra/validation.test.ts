import { App, Duration, Stack } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import * as codebuild from 'aws-cdk-lib/aws-codebuild';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { ArtifactsBucket } from '../../infra/artifacts-bucket';
import {
  buildMinutesWithin,
  callbackTimeoutSeconds,
  taskTimeoutSeconds,
  timeoutFor,
} from '../../infra/definition-timeouts';
import { DeployFunction } from '../../infra/deploy-function';
import { DeployStateMachine } from '../../infra/deploy-state-machine';
import { Notifications } from '../../infra/notifications';
import { PipelineProjects } from '../../infra/pipeline-projects';
import { PipelineStack } from '../../infra/pipeline-stack';
import { TaskFunction } from '../../infra/task-function';
import { loadConfig } from '../../shared/config';
import { SUBSTITUTION_NAMES, readDefinitionText, type Substitutions } from '../../workflows/definition';
import { EXAMPLE_CONFIG_PATH, makeStack, writeConfig } from './fixtures';

// Nothing here reads a bundle: bundling is skipped throughout.
const bareStack = () => new Stack(new App({ context: { 'aws:cdk:bundling-stacks': [] } }), 'Test');

describe('PipelineStack', () => {
  test('fails when the build buildspec does not exist, naming the setting, the path and the fix', () => {
    const configPath = writeConfig((raw) => {
      raw.buildspecs = { build: 'buildspecs/nope.yml', deploy: 'buildspecs/nope.yml' };
    });
    expect(() => makeStack({ configPath })).toThrow(
      /buildspecs\.build: cannot read buildspec .*buildspecs\/nope\.yml .*create it or point buildspecs\.build at an existing file/,
    );
  });

  test('fails when the config file it was given does not exist', () => {
    const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
    const config = loadConfig(EXAMPLE_CONFIG_PATH);
    expect(
      () => new PipelineStack(app, 'Pipeline', { config, configPath: '/nonexistent/stepdeploy.config.yml' }),
    ).toThrow(/configPath must be an existing file .*got \/nonexistent\/stepdeploy\.config\.yml/);
  });

  test('repository URLs and no Slack: no local-path warning, no secret access, no webhook variable', () => {
    const configPath = writeConfig((raw) => {
      const sources = raw.sources as Record<string, { repository: string }>;
      sources.app!.repository = 'https://github.com/acme/app.git';
      sources.config!.repository = 'https://github.com/acme/config.git';
      raw.notifications = {};
      noTriggers(raw);
    });
    const { stack } = makeStack({ configPath });
    Annotations.fromStack(stack).hasNoWarning('*', Match.stringLikeRegexp('local path'));
    const template = Template.fromStack(stack);
    expect(JSON.stringify(template.toJSON())).not.toMatch(/secretsmanager|SLACK_WEBHOOK_SECRET_NAME/);
  });

  test('a private repository: resolve-source may read that credentials secret, and no other function may', () => {
    const configPath = writeConfig((raw) => {
      const sources = raw.sources as Record<string, { repository: string; credentialsSecret?: string }>;
      sources.app!.repository = 'https://github.com/acme/app.git';
      sources.app!.credentialsSecret = 'stepdeploy/github-read';
      sources.config!.repository = 'https://github.com/acme/config.git';
      raw.notifications = {};
      noTriggers(raw);
    });
    const template = Template.fromStack(makeStack({ configPath }).stack);
    const policies = Object.entries(template.findResources('AWS::IAM::Policy'));
    const readers = policies.filter(([, p]) => JSON.stringify(p).includes('secretsmanager:GetSecretValue'));
    expect(readers.map(([id]) => id)).toEqual([expect.stringMatching(/^ResolveSourceRole/)]);
    const statement = (readers[0]![1].Properties.PolicyDocument.Statement as Array<Record<string, unknown>>).find(
      (s) => s.Sid === 'ReadRepositoryCredentials',
    );
    expect(statement).toMatchObject({ Action: 'secretsmanager:GetSecretValue', Effect: 'Allow' });
    expect(JSON.stringify(statement!.Resource)).toContain(':secret:stepdeploy/github-read-??????');
  });
});

describe('constructs', () => {
  test('fails when a lifecycle expiration is not a whole number of days', () => {
    expect(() => new ArtifactsBucket(bareStack(), 'Artifacts', { artifactsExpiration: Duration.hours(36) })).toThrow(
      'artifactsExpiration must be a whole number of days, at least 1 (S3 lifecycle rules count in days), got 1 day 12 hours; use Duration.days(n)',
    );
  });

  test('sourcesExpiration: fails at the snapshot reuse margin or less, which would never reuse a snapshot', () => {
    expect(() => new ArtifactsBucket(bareStack(), 'Artifacts', { sourcesExpiration: Duration.days(16) })).toThrow(
      'sourcesExpiration must be more than 16 days (ResolveSource fetches again a snapshot that expires within 16 days, so that a redrive still finds it), got 16 days; use Duration.days(17) or more',
    );
    expect(() => new ArtifactsBucket(bareStack(), 'Artifacts', { sourcesExpiration: Duration.days(17) })).not.toThrow();
  });

  test('approvalsExpiration: fails within the 14-day redrive window, whose redrive of a timed-out approval reads the record', () => {
    expect(() => new ArtifactsBucket(bareStack(), 'Artifacts', { approvalsExpiration: Duration.days(14) })).toThrow(
      'approvalsExpiration must be more than 14 days (an execution that timed out waiting for approval can be redriven for 14 days, and its redrive reads the approval record to ask again), got 14 days; use Duration.days(15) or more',
    );
    expect(
      () => new ArtifactsBucket(bareStack(), 'Artifacts', { approvalsExpiration: Duration.days(15) }),
    ).not.toThrow();
  });

  test('fails when a task has no handler file', () => {
    expect(
      () =>
        new TaskFunction(bareStack(), 'Fn', { task: 'no-such-task', timeout: Duration.seconds(10), description: 'x' }),
    ).toThrow(/task "no-such-task" has no handler: tasks\/no-such-task\/handler\.ts does not exist; create it/);
  });

  test('fails when a function timeout exceeds the Lambda limit', () => {
    expect(
      () =>
        new TaskFunction(bareStack(), 'Fn', {
          task: 'validate-input',
          timeout: Duration.minutes(20),
          description: 'x',
        }),
    ).toThrow(
      'timeout of task "validate-input" must be between 1 second and 15 minutes (the Lambda limit), got 20 minutes',
    );
  });

  const stateMachineIn = (stack: Stack, substitutions: Record<string, string>) =>
    new DeployStateMachine(stack, 'StateMachine', {
      stateMachineName: 'test',
      definitionText: readDefinitionText(),
      substitutions: substitutions as Substitutions,
      taskFunctions: [lambda.Function.fromFunctionArn(stack, 'Fn', 'arn:aws:lambda:eu-west-1:123456789012:function:f')],
      projects: [codebuild.Project.fromProjectName(stack, 'Project', 'p')],
    });
  const allSubstitutions = () =>
    Object.fromEntries(SUBSTITUTION_NAMES.map((n) => [n, `value-of-${n}`])) as Record<string, string>;

  test('fails when substitutions miss a placeholder of the definition', () => {
    const substitutions = allSubstitutions();
    delete substitutions.ArtifactsBucket;
    substitutions.Extra = 'x';
    expect(() => stateMachineIn(bareStack(), substitutions)).toThrow(
      /substitutions must match the definition's placeholders exactly, got missing \[ArtifactsBucket\] and unused \[Extra\]/,
    );
  });

  test('fails when the Slack setting is a webhook URL instead of a secret name, without echoing it', () => {
    const stack = bareStack();
    const deployStateMachine = stateMachineIn(stack, allSubstitutions());
    const url = 'https://hooks.slack.com/services/T000/B000/XXXX';
    const create = () =>
      new Notifications(stack, 'Notifications', { deployStateMachine, projects: [], slackWebhookSecretName: url });
    expect(create).toThrow(
      /slackWebhookSecretName must be the name of a Secrets Manager secret, got a URL .*store the URL in a secret and pass its name/,
    );
    expect(create).not.toThrow(/hooks\.slack\.com/);
  });

  const projectsIn = (stack: Stack, change: Partial<ConstructorParameters<typeof PipelineProjects>[2]>) => {
    const spec = codebuild.BuildSpec.fromObject({ version: '0.2', phases: {} });
    return new PipelineProjects(stack, 'Projects', {
      namePrefix: 'test',
      artifacts: new ArtifactsBucket(stack, 'Artifacts'),
      fetchBuildSpec: spec,
      buildBuildSpec: spec,
      deployBuildSpec: spec,
      fetchTimeout: Duration.minutes(30),
      fetchQueuedTimeout: Duration.minutes(15),
      buildTimeout: Duration.minutes(60),
      buildQueuedTimeout: Duration.minutes(15),
      deployTimeout: Duration.minutes(60),
      deployQueuedTimeout: Duration.minutes(15),
      deployRoleArns: ['arn:aws:iam::111111111111:role/deploy'],
      ...change,
    });
  };

  test('fails when no deploy role is given', () => {
    expect(() => projectsIn(bareStack(), { deployRoleArns: [] })).toThrow(
      /deployRoleArns must list at least one role, got none; declare an environment with a deployRoleArn/,
    );
  });

  test("fails when the deploy build's queue is not bounded within CodeBuild's limits", () => {
    expect(() => projectsIn(bareStack(), { deployQueuedTimeout: Duration.minutes(2) })).toThrow(
      /deployQueuedTimeout must be a whole number of minutes between 5 minutes and 8 hours \(CodeBuild's limits\), got 2 minutes/,
    );
  });

  test('fails when the Deploy Task does not wait as long as a deploy can take, naming the sum and the fix', () => {
    const stack = bareStack();
    const artifacts = new ArtifactsBucket(stack, 'Artifacts');
    const deploy = codebuild.Project.fromProjectName(stack, 'Deploy', 'deploy');
    expect(
      () =>
        new DeployFunction(stack, 'DeployFunction', {
          artifacts,
          project: deploy,
          buildTimeout: Duration.minutes(60),
          queuedTimeout: Duration.minutes(15),
          waitTimeout: Duration.minutes(60),
        }),
    ).toThrow(
      /queued 15 minutes \+ build 1 hour \+ margin 5 minutes \+ the function's 1 minute = 4860 seconds, got TimeoutSeconds 3600; raise Deploy's TimeoutSeconds/,
    );
  });

  test('fails when a key grant names no layout folder', () => {
    const stack = bareStack();
    const artifacts = new ArtifactsBucket(stack, 'Artifacts');
    const role = new iam.Role(stack, 'Role', { assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com') });
    expect(() => artifacts.grantReadKeys(role, '*/lease.json')).toThrow(
      /key pattern must start with one of the layout's folders and name keys in it, such as "deployments\/\*\/lease\.json", got "\*\/lease\.json"/,
    );
    expect(() => artifacts.grantWriteKeys(role)).toThrow(/key grants need at least one key pattern, got none/);
  });

  test("fails when a build's queue is not bounded within CodeBuild's limits", () => {
    expect(() => projectsIn(bareStack(), { fetchQueuedTimeout: Duration.hours(9) })).toThrow(
      /fetchQueuedTimeout must be a whole number of minutes between 5 minutes and 8 hours \(CodeBuild's limits\), got 9 hours/,
    );
  });

  test('the build timeout is what the Task leaves after the queue and the margin', () => {
    expect(buildMinutesWithin(3000, 15, 'FetchProjectName')).toBe(30);
    expect(buildMinutesWithin(4800, 15, 'BuildProjectName')).toBe(60);
  });

  test('fails when a Task waits no longer than the build itself, naming the sum and the fix', () => {
    expect(() => buildMinutesWithin(1200, 15, 'FetchProjectName')).toThrow(
      /the Task starting \$\{FetchProjectName\} waits 1200 seconds: minus the queued timeout \(15 minutes\) and the margin \(300 seconds\) that leaves 0 seconds .*set its TimeoutSeconds .* to queued \+ build \+ margin, e\.g\. 3000 for a 30-minute build/,
    );
    expect(() => buildMinutesWithin(3030, 15, 'FetchProjectName')).toThrow(
      /leaves 1830 seconds for the build, which must be a whole number of minutes/,
    );
  });

  test("Deploy's TimeoutSeconds is a wait for its task token, never a function timeout", () => {
    const definition = readDefinitionText();
    expect(callbackTimeoutSeconds(definition).get('DeployFunctionArn')).toBe(7200);
    expect(() => timeoutFor(taskTimeoutSeconds(definition), 'DeployFunctionArn')).toThrow(
      /no Task in workflows\/deploy-pipeline\.asl\.json calls \$\{DeployFunctionArn\} with TimeoutSeconds/,
    );
  });

  test('fails when a Task that calls a function or project has no TimeoutSeconds', () => {
    const definition = JSON.parse(readDefinitionText()) as { States: Record<string, Record<string, unknown>> };
    delete definition.States.RecordDeployment!.TimeoutSeconds;
    expect(() => taskTimeoutSeconds(JSON.stringify(definition))).toThrow(
      'state RecordDeployment calls ${RecordDeploymentFunctionArn} but has no TimeoutSeconds; add one to workflows/deploy-pipeline.asl.json',
    );
  });
});

/** Without the example's triggers: on GitHub sources they add the push receiver and its secret. */
function noTriggers(raw: Record<string, unknown>): void {
  for (const environment of Object.values(raw.environments as Record<string, Record<string, unknown>>))
    environment.triggers = [];
}
