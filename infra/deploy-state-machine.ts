import { ArnFormat, Aws, Fn, RemovalPolicy, Stack, Token, Validations } from 'aws-cdk-lib';
import type * as codebuild from 'aws-cdk-lib/aws-codebuild';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import { placeholdersIn, type Substitutions } from '../workflows/definition';
import { logicalIdOf } from './logical-id';

/** The rule the `.sync` CodeBuild integration creates in the account to learn when a build ends. */
export const CODEBUILD_SYNC_RULE = 'StepFunctionsGetEventForCodeBuildStartBuildRule';

export interface DeployStateMachineProps {
  readonly stateMachineName: string;
  /** The ASL text with its `${Name}` placeholders (workflows/deploy-pipeline.asl.json). */
  readonly definitionText: string;
  /** A value for every placeholder of the definition, and only those. */
  readonly substitutions: Substitutions;
  /** Every function a Task invokes (lambda:invoke, .waitForTaskToken included). */
  readonly taskFunctions: ReadonlyArray<lambda.IFunction>;
  /** Every project a Task starts (codebuild:startBuild.sync). */
  readonly projects: ReadonlyArray<codebuild.IProject>;
  /**
   * @default logs.RetentionDays.ONE_YEAR
   */
  readonly logRetention?: logs.RetentionDays;
}

/**
 * The deploy pipeline as a Standard state machine deployed from the ASL file as data. CDK cannot
 * see which services an ASL string calls, so every permission it needs is granted here explicitly.
 */
export class DeployStateMachine extends Construct {
  public readonly stateMachine: sfn.StateMachine;
  public readonly logGroup: logs.LogGroup;

  constructor(scope: Construct, id: string, props: DeployStateMachineProps) {
    super(scope, id);
    const used = placeholdersIn(props.definitionText);
    const given = Object.keys(props.substitutions).sort();
    const missing = used.filter((name) => !given.includes(name));
    const unused = given.filter((name) => !used.includes(name));
    if (missing.length > 0 || unused.length > 0) {
      throw new Error(
        `substitutions must match the definition's placeholders exactly, got missing [${missing.join(', ')}] and unused [${unused.join(', ')}]; ` +
          'give a value for each ${Name} in workflows/deploy-pipeline.asl.json and nothing else',
      );
    }
    if (props.taskFunctions.length === 0 || props.projects.length === 0) {
      throw new Error(
        `taskFunctions and projects must not be empty, got ${props.taskFunctions.length} functions and ${props.projects.length} projects; pass every function and project the definition calls`,
      );
    }

    this.logGroup = new logs.LogGroup(this, 'Logs', {
      // Under /aws/vendedlogs/ CloudWatch Logs needs no per-log-group resource policy entry
      // (that policy is limited to 5,120 characters per account and region). The group outlives
      // its stack (RETAIN), so a fixed name would make the next stack of the same pipeline fail
      // with "already exists": the stack id's UUID, new for each created stack, tells them apart.
      logGroupName: `/aws/vendedlogs/states/${props.stateMachineName}-${Fn.select(2, Fn.split('/', Aws.STACK_ID))}`,
      retention: props.logRetention ?? logs.RetentionDays.ONE_YEAR,
      removalPolicy: RemovalPolicy.RETAIN,
    });

    this.stateMachine = new sfn.StateMachine(this, 'Resource', {
      stateMachineName: props.stateMachineName,
      stateMachineType: sfn.StateMachineType.STANDARD,
      definitionBody: sfn.DefinitionBody.fromString(props.definitionText),
      definitionSubstitutions: { ...props.substitutions },
      logs: { destination: this.logGroup, level: sfn.LogLevel.ALL, includeExecutionData: true },
      tracingEnabled: true,
    });

    const functionArns = props.taskFunctions.flatMap((fn) => [fn.functionArn, `${fn.functionArn}:*`]);
    this.stateMachine.addToRolePolicy(
      new iam.PolicyStatement({
        sid: 'InvokeTaskFunctions',
        actions: ['lambda:InvokeFunction'],
        resources: functionArns,
      }),
    );
    this.stateMachine.addToRolePolicy(
      new iam.PolicyStatement({
        sid: 'RunBuildsSync',
        actions: ['codebuild:StartBuild', 'codebuild:StopBuild', 'codebuild:BatchGetBuilds'],
        resources: props.projects.map((p) => p.projectArn),
      }),
    );
    const stack = Stack.of(this);
    this.stateMachine.addToRolePolicy(
      new iam.PolicyStatement({
        sid: 'WatchBuildsSync',
        actions: ['events:PutTargets', 'events:PutRule', 'events:DescribeRule'],
        resources: [stack.formatArn({ service: 'events', resource: 'rule', resourceName: CODEBUILD_SYNC_RULE })],
      }),
    );

    const role = this.stateMachine.role;
    for (const fn of props.taskFunctions) {
      // cdk-nag prints a deploy-time ARN as <LogicalId.Arn> and an imported one as it is.
      const arn = Token.isUnresolved(fn.functionArn) ? `<${logicalIdOf(fn)}.Arn>` : fn.functionArn;
      Validations.of(role).acknowledge({
        id: `AwsSolutions-IAM5[Resource::${arn}:*]`,
        reason:
          "lambda:InvokeFunction on the qualified ARNs (versions, aliases) of this pipeline's own task function; the definition may pin a version.",
      });
    }
    Validations.of(role).acknowledge({
      id: 'AwsSolutions-IAM5[Resource::*]',
      reason:
        'Added by the StateMachine construct for logging and X-Ray: the CloudWatch Logs delivery actions (logs:CreateLogDelivery, ...) and xray:PutTraceSegments support no resource-level permissions.',
    });
  }

  /** ARN pattern of this state machine's executions. */
  public get executionArnPattern(): string {
    return Stack.of(this).formatArn({
      service: 'states',
      resource: 'execution',
      resourceName: `${this.stateMachine.stateMachineName}:*`,
      arnFormat: ArnFormat.COLON_RESOURCE_NAME,
    });
  }
}
