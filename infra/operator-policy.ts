import { Validations } from 'aws-cdk-lib';
import type * as codebuild from 'aws-cdk-lib/aws-codebuild';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { DEPLOYMENTS_PREFIX, type ArtifactsBucket } from './artifacts-bucket';
import type { DeployStateMachine } from './deploy-state-machine';
import { findingArnPrefix, logicalIdOf } from './logical-id';

export interface OperatorPolicyProps {
  readonly deployStateMachine: DeployStateMachine;
  readonly projects: ReadonlyArray<codebuild.IProject>;
  readonly artifacts: ArtifactsBucket;
  /** The build log groups `stepdeploy logs` reads. */
  readonly logGroups: ReadonlyArray<logs.ILogGroup>;
  /**
   * What approving and rejecting deployments takes (infra/approval.ts: the decision function's URL).
   * @default - none
   */
  readonly approverStatements?: ReadonlyArray<iam.PolicyStatement>;
}

/**
 * What a person running deployments needs, on this pipeline only: start, watch, stop and redrive
 * executions, read their builds and logs, and see what is deployed where. Attach it to the
 * operators' role or group (`stepdeploy` CLI, Step Functions console).
 */
export class OperatorPolicy extends Construct {
  public readonly policy: iam.ManagedPolicy;

  constructor(scope: Construct, id: string, props: OperatorPolicyProps) {
    super(scope, id);
    const { stateMachine } = props.deployStateMachine;
    const bucket = props.artifacts.bucket;
    this.policy = new iam.ManagedPolicy(this, 'Resource', {
      description:
        'stepdeploy operator: start, watch, stop, redrive, approve and reject executions of this pipeline only',
      statements: [
        new iam.PolicyStatement({
          sid: 'StateMachine',
          actions: ['states:StartExecution', 'states:DescribeStateMachine', 'states:ListExecutions'],
          resources: [stateMachine.stateMachineArn],
        }),
        new iam.PolicyStatement({
          sid: 'Executions',
          actions: [
            'states:RedriveExecution',
            'states:StopExecution',
            'states:DescribeExecution',
            // `stepdeploy watch` draws the definition the execution runs.
            'states:DescribeStateMachineForExecution',
            'states:GetExecutionHistory',
          ],
          resources: [props.deployStateMachine.executionArnPattern],
        }),
        new iam.PolicyStatement({
          sid: 'Builds',
          actions: ['codebuild:BatchGetBuilds'],
          resources: props.projects.map((p) => p.projectArn),
        }),
        new iam.PolicyStatement({
          sid: 'BuildLogs',
          actions: ['logs:GetLogEvents', 'logs:FilterLogEvents', 'logs:DescribeLogStreams'],
          resources: props.logGroups.map((g) => g.logGroupArn),
        }),
        new iam.PolicyStatement({
          sid: 'Deployments',
          actions: ['s3:GetObject'],
          resources: [bucket.arnForObjects(`${DEPLOYMENTS_PREFIX}*`)],
        }),
        new iam.PolicyStatement({
          sid: 'ListDeployments',
          actions: ['s3:ListBucket'],
          resources: [bucket.bucketArn],
          conditions: { StringLike: { 's3:prefix': [`${DEPLOYMENTS_PREFIX}*`] } },
        }),
        ...(props.approverStatements ?? []),
      ],
    });
    Validations.of(this.policy).acknowledge(
      {
        id: `AwsSolutions-IAM5[Resource::${findingArnPrefix(this, 'states')}execution:<${logicalIdOf(props.deployStateMachine.stateMachine)}.Name>:*]`,
        reason: 'Executions of this state machine only; their names are generated per run.',
      },
      {
        id: props.artifacts.wildcardFindingId(DEPLOYMENTS_PREFIX),
        reason: 'Read-only: deployments/<environment>/current.json and its history, what stepdeploy status shows.',
      },
    );
  }
}
