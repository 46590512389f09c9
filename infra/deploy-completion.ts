import { Duration, Token, Validations } from 'aws-cdk-lib';
import type * as codebuild from 'aws-cdk-lib/aws-codebuild';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as destinations from 'aws-cdk-lib/aws-lambda-destinations';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { DEPLOYMENTS_PREFIX, type ArtifactsBucket } from './artifacts-bucket';
import type { DeployStateMachine } from './deploy-state-machine';
import { LEASE_KEY_PATTERN } from './deploy-function';
import { TaskFunction } from './task-function';

/** The deploy build's end states, as "CodeBuild Build State Change" reports them. */
export const TERMINAL_BUILD_STATUSES = ['SUCCEEDED', 'FAILED', 'FAULT', 'STOPPED', 'TIMED_OUT'] as const;
/** Execution ends after which a deploy build must not run on, nor a lease stay taken. */
export const ENDED_EXECUTION_STATUSES = ['FAILED', 'ABORTED', 'TIMED_OUT'] as const;

/** Lambda's limit for how long it retries an asynchronous event. */
const MAX_ASYNC_EVENT_AGE = Duration.hours(6);

export interface DeployCompletionProps {
  readonly deployStateMachine: DeployStateMachine;
  /** The project whose builds the Deploy state waits for. */
  readonly deployProject: codebuild.IProject;
  readonly artifacts: ArtifactsBucket;
  /**
   * The Deploy Task's TimeoutSeconds. An event is delivered (and retried) for as long as the task
   * it completes can still be waiting, capped at Lambda's 6 hours.
   */
  readonly waitTimeout: Duration;
  /**
   * Repository root holding `tasks/`.
   * @default - TaskFunction's default
   */
  readonly projectRoot?: string;
}

/**
 * tasks/deploy-complete behind two EventBridge rules: the deploy project's build ends (→ the
 * Deploy task's SendTaskSuccess / SendTaskFailure, then the lease is given back), and this state
 * machine's failed, aborted or timed-out executions (→ stop the deploy build they still hold, or
 * give the lease back). A lost event leaves a Deploy step waiting until its TimeoutSeconds, so
 * events that fail delivery or handling after every retry are kept in a dead-letter queue.
 */
export class DeployCompletion extends Construct {
  public readonly task: TaskFunction;
  public readonly buildRule: events.Rule;
  public readonly executionRule: events.Rule;
  public readonly deadLetterQueue: sqs.Queue;

  constructor(scope: Construct, id: string, props: DeployCompletionProps) {
    super(scope, id);
    const { artifacts, deployProject } = props;
    const { stateMachine } = props.deployStateMachine;
    const waitSeconds = props.waitTimeout.toSeconds();
    const maxEventAge =
      !Token.isUnresolved(waitSeconds) && waitSeconds > MAX_ASYNC_EVENT_AGE.toSeconds()
        ? MAX_ASYNC_EVENT_AGE
        : props.waitTimeout;

    this.task = new TaskFunction(this, 'Function', {
      task: 'deploy-complete',
      description:
        "stepdeploy deploy-complete: ends the Deploy task when its build ends and gives the environment's deploy lease back",
      timeout: Duration.seconds(30),
      environment: { ARTIFACT_BUCKET: artifacts.bucketName, DEPLOY_PROJECT_NAME: deployProject.projectName },
      projectRoot: props.projectRoot,
    });
    const role = this.task.role;

    artifacts.grantReadKeys(role, LEASE_KEY_PATTERN);
    artifacts.grantWriteKeys(role, LEASE_KEY_PATTERN);
    // An execution that fails before any deploy of its environment finds no lease: 404, not 403.
    artifacts.grantList(role, DEPLOYMENTS_PREFIX);
    artifacts.acknowledgeKeyWildcard(
      role,
      LEASE_KEY_PATTERN,
      'one deploy lease per environment, given back with a conditional write.',
    );
    role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'StopDeployBuild',
        // The build of an ended execution's lease: recorded (BatchGetBuilds) or found by its lease id.
        actions: ['codebuild:StopBuild', 'codebuild:BatchGetBuilds', 'codebuild:ListBuildsForProject'],
        resources: [deployProject.projectArn],
      }),
    );
    // Its own policy, so that its acknowledgement (and no other) covers this "*".
    const taskResponse = new iam.Policy(this, 'TaskResponse', {
      statements: [
        new iam.PolicyStatement({
          sid: 'CompleteDeployTask',
          actions: ['states:SendTaskSuccess', 'states:SendTaskFailure'],
          resources: ['*'],
        }),
      ],
      roles: [role],
    });
    Validations.of(taskResponse).acknowledge({
      id: 'AwsSolutions-IAM5[Resource::*]',
      reason:
        'states:SendTaskSuccess and states:SendTaskFailure list no resource types in the Service Authorization Reference, so they take Resource "*"; the task token read from the environment\'s lease is what names this state machine\'s Deploy task.',
    });

    this.deadLetterQueue = new sqs.Queue(this, 'DeadLetters', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    Validations.of(this.deadLetterQueue).acknowledge({
      id: 'AwsSolutions-SQS3',
      reason:
        'This queue is itself the dead-letter queue of deploy-complete (EventBridge target DLQ and Lambda on-failure destination); a dead-letter queue behind it would only hold the same events again.',
    });
    this.task.function.configureAsyncInvoke({
      // Handling is idempotent: a lease that is no longer this build's or execution's is left alone.
      retryAttempts: 2,
      maxEventAge,
      onFailure: new destinations.SqsDestination(this.deadLetterQueue),
    });

    const target = new targets.LambdaFunction(this.task.function, {
      // Delivery is retried until the event is as old as the wait it ends, not for a fixed count.
      retryAttempts: 185,
      maxEventAge,
      deadLetterQueue: this.deadLetterQueue,
    });
    this.buildRule = new events.Rule(this, 'BuildEnded', {
      description:
        'stepdeploy: deploy builds that ended → deploy-complete (completes the Deploy task, gives the lease back)',
      eventPattern: {
        source: ['aws.codebuild'],
        detailType: ['CodeBuild Build State Change'],
        detail: { 'project-name': [deployProject.projectName], 'build-status': [...TERMINAL_BUILD_STATUSES] },
      },
      targets: [target],
    });
    this.executionRule = new events.Rule(this, 'ExecutionEnded', {
      description:
        'stepdeploy: executions that failed, were stopped or timed out → deploy-complete (stops their deploy build or gives the lease back)',
      eventPattern: {
        source: ['aws.states'],
        detailType: ['Step Functions Execution Status Change'],
        detail: { stateMachineArn: [stateMachine.stateMachineArn], status: [...ENDED_EXECUTION_STATUSES] },
      },
      targets: [target],
    });
  }
}
