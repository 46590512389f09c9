import { Duration, Validations } from 'aws-cdk-lib';
import type * as codebuild from 'aws-cdk-lib/aws-codebuild';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import type { DeployStateMachine } from './deploy-state-machine';
import { findingArnPrefix, logicalIdOf } from './logical-id';
import { TaskFunction } from './task-function';

export interface NotificationsProps {
  readonly deployStateMachine: DeployStateMachine;
  /** This pipeline's projects; their build state changes are reported too. */
  readonly projects: ReadonlyArray<codebuild.IProject>;
  /**
   * Name of the Secrets Manager secret holding the Slack incoming-webhook URL.
   * @default - no Slack: the notifier only logs
   */
  readonly slackWebhookSecretName?: string;
  /**
   * Repository root holding `tasks/`.
   * @default - TaskFunction's default
   */
  readonly projectRoot?: string;
}

/**
 * Notifications are event-driven, outside the state machine: EventBridge delivers this
 * pipeline's execution and build state changes to `tasks/notify`, so a Slack outage never fails
 * (or delays) a deployment, and a redrive is reported like any other run.
 */
export class Notifications extends Construct {
  public readonly notify: TaskFunction;
  public readonly executionRule: events.Rule;
  public readonly buildRule: events.Rule;

  constructor(scope: Construct, id: string, props: NotificationsProps) {
    super(scope, id);
    const secretName = props.slackWebhookSecretName;
    if (secretName !== undefined && /^https?:/i.test(secretName)) {
      throw new Error(
        'slackWebhookSecretName must be the name of a Secrets Manager secret, got a URL (redacted: a webhook URL is a credential); store the URL in a secret and pass its name',
      );
    }
    if (props.projects.length === 0) {
      throw new Error("projects must list the pipeline's CodeBuild projects, got none; pass PipelineProjects.all");
    }
    const { stateMachine } = props.deployStateMachine;

    this.notify = new TaskFunction(this, 'Notify', {
      task: 'notify',
      description: 'stepdeploy notify: posts execution and build state changes to Slack',
      timeout: Duration.seconds(30),
      environment: secretName ? { SLACK_WEBHOOK_SECRET_NAME: secretName } : {},
      projectRoot: props.projectRoot,
    });
    const role = this.notify.role;

    if (secretName) {
      const secret = secretsmanager.Secret.fromSecretNameV2(this, 'SlackWebhook', secretName);
      role.addToPolicy(
        new iam.PolicyStatement({
          sid: 'ReadSlackWebhook',
          actions: ['secretsmanager:GetSecretValue'],
          // A secret's ARN ends in "-" and six random characters.
          resources: [`${secret.secretArn}-??????`],
        }),
      );
    }
    role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'DescribeExecutions',
        actions: ['states:DescribeExecution', 'states:GetExecutionHistory'],
        resources: [props.deployStateMachine.executionArnPattern],
      }),
    );
    Validations.of(role).acknowledge({
      id: `AwsSolutions-IAM5[Resource::${findingArnPrefix(this, 'states')}execution:<${logicalIdOf(props.deployStateMachine.stateMachine)}.Name>:*]`,
      reason: 'Executions of this state machine only; their names are generated per run.',
    });

    const target = new targets.LambdaFunction(this.notify.function, {
      retryAttempts: 4,
      maxEventAge: Duration.hours(1),
    });
    this.executionRule = new events.Rule(this, 'ExecutionStatusChange', {
      description: 'stepdeploy: execution status changes of this pipeline → notify',
      eventPattern: {
        source: ['aws.states'],
        detailType: ['Step Functions Execution Status Change'],
        detail: { stateMachineArn: [stateMachine.stateMachineArn] },
      },
      targets: [target],
    });
    this.buildRule = new events.Rule(this, 'BuildStateChange', {
      description: "stepdeploy: build state changes of this pipeline's projects → notify",
      eventPattern: {
        source: ['aws.codebuild'],
        detailType: ['CodeBuild Build State Change'],
        detail: { 'project-name': props.projects.map((p) => p.projectName) },
      },
      targets: [target],
    });
  }
}
