import { Duration, Validations } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import { APPROVALS_PREFIX, DEPLOYMENTS_PREFIX, type ArtifactsBucket } from './artifacts-bucket';
import { LEASE_KEY_PATTERN } from './deploy-function';
import { TaskFunction } from './task-function';

export interface ApprovalProps {
  readonly artifacts: ArtifactsBucket;
  /** The ApprovalTimedOut Task's TimeoutSeconds: the await-approval function's timeout. */
  readonly timeout: Duration;
  /**
   * Name of the Secrets Manager secret holding the Slack incoming-webhook URL.
   * @default - no Slack: the request is only logged
   */
  readonly slackWebhookSecretName?: string;
  /**
   * Approve / Reject buttons in the Slack request: `tasks/slack-decision` behind a function URL
   * that Slack's interactivity posts to. The config (its approvers) travels in the bundle.
   * @default - no buttons: people decide with `stepdeploy approve` / `reject`
   */
  readonly slackButtons?: {
    /** Name of the Secrets Manager secret holding the Slack app's signing secret. */
    readonly signingSecretName: string;
    /** Puts the config into the function's bundle and says where it lands. */
    readonly bundleConfig: { readonly path: string; readonly afterBundling: (outputDir: string) => string[] };
  };
  /**
   * Repository root holding `tasks/`.
   * @default - TaskFunction's default
   */
  readonly projectRoot?: string;
}

const CURRENT_KEY_PATTERN = `${DEPLOYMENTS_PREFIX}*/current.json`;

/**
 * Approval before Deploy: `tasks/await-approval` (the AwaitApproval and ApprovalTimedOut states)
 * stores the task token under approvals/ and posts the request to Slack; `tasks/decide-approval`,
 * behind a function URL with AWS_IAM auth, is the only reader of those tokens and the only holder
 * of SendTaskSuccess/SendTaskFailure for them. People approve by calling that URL, which the
 * operator policy allows (`lambda:InvokeFunctionUrl`, and `lambda:InvokeFunction` only through the
 * URL): nobody needs states:SendTaskSuccess, and who decided is the IAM identity Lambda checked.
 */
export class Approval extends Construct {
  public readonly awaitApproval: TaskFunction;
  public readonly decideApproval: TaskFunction;
  public readonly url: lambda.FunctionUrl;
  /** The Slack buttons' function, when `slackButtons` is set. */
  public readonly slackDecision?: TaskFunction;
  /** Slack's interactivity Request URL, when `slackButtons` is set. */
  public readonly slackActionsUrl?: lambda.FunctionUrl;

  constructor(scope: Construct, id: string, props: ApprovalProps) {
    super(scope, id);
    const { artifacts } = props;
    const environment = { ARTIFACT_BUCKET: artifacts.bucketName };

    this.awaitApproval = new TaskFunction(this, 'Await', {
      task: 'await-approval',
      description:
        'stepdeploy AwaitApproval / ApprovalTimedOut: keeps the task token under approvals/ and asks on Slack',
      timeout: props.timeout,
      environment: {
        ...environment,
        ...(props.slackWebhookSecretName ? { SLACK_WEBHOOK_SECRET_NAME: props.slackWebhookSecretName } : {}),
        ...(props.slackButtons ? { SLACK_APPROVAL_BUTTONS: 'true' } : {}),
      },
      projectRoot: props.projectRoot,
    });
    const awaitRole = this.awaitApproval.role;
    artifacts.grantReadObjects(awaitRole, APPROVALS_PREFIX);
    artifacts.grantWriteObjects(awaitRole, APPROVALS_PREFIX);
    // What is deployed now, for the request's "deployed now" and compare links.
    artifacts.grantReadKeys(awaitRole, CURRENT_KEY_PATTERN);
    artifacts.grantList(awaitRole, APPROVALS_PREFIX, DEPLOYMENTS_PREFIX);
    artifacts.acknowledgePrefixWildcard(awaitRole, APPROVALS_PREFIX, 'one approval request per execution.');
    artifacts.acknowledgeKeyWildcard(awaitRole, CURRENT_KEY_PATTERN, "each environment's current deployment.");
    if (props.slackWebhookSecretName) {
      const secret = secretsmanager.Secret.fromSecretNameV2(this, 'SlackWebhook', props.slackWebhookSecretName);
      awaitRole.addToPolicy(
        new iam.PolicyStatement({
          sid: 'ReadSlackWebhook',
          actions: ['secretsmanager:GetSecretValue'],
          // A secret's ARN ends in "-" and six random characters.
          resources: [`${secret.secretArn}-??????`],
        }),
      );
    }

    this.decideApproval = new TaskFunction(this, 'Decide', {
      task: 'decide-approval',
      description: 'stepdeploy decide-approval: approves or rejects a waiting deployment for the IAM caller of its URL',
      timeout: Duration.seconds(30),
      environment,
      projectRoot: props.projectRoot,
    });
    const deciders = [this.decideApproval.role];

    if (props.slackButtons) {
      this.slackDecision = new TaskFunction(this, 'Slack', {
        task: 'slack-decision',
        description: 'stepdeploy slack-decision: the Approve / Reject buttons of the Slack approval request',
        // Slack shows the click as failed after 3 s; a decision is a few S3 reads and one SendTaskSuccess.
        timeout: Duration.seconds(10),
        // More CPU for a faster cold start: the first click after a quiet spell must answer in 3 s too.
        memorySize: 1024,
        environment: { ...environment, STEPDEPLOY_CONFIG_PATH: props.slackButtons.bundleConfig.path },
        afterBundling: props.slackButtons.bundleConfig.afterBundling,
        projectRoot: props.projectRoot,
      });
      const secret = secretsmanager.Secret.fromSecretNameV2(
        this,
        'SlackSigningSecret',
        props.slackButtons.signingSecretName,
      );
      this.slackDecision.role.addToPolicy(
        new iam.PolicyStatement({
          sid: 'ReadSlackSigningSecret',
          actions: ['secretsmanager:GetSecretValue'],
          // A secret's ARN ends in "-" and six random characters.
          resources: [`${secret.secretArn}-??????`],
        }),
      );
      deciders.push(this.slackDecision.role);
      // Slack cannot sign SigV4: the Slack signature over each request's body and timestamp is the
      // authentication, checked by the function with the signing secret before it reads anything.
      this.slackActionsUrl = this.slackDecision.function.addFunctionUrl({ authType: lambda.FunctionUrlAuthType.NONE });
    }

    for (const role of deciders) {
      artifacts.grantReadObjects(role, APPROVALS_PREFIX);
      artifacts.grantWriteObjects(role, APPROVALS_PREFIX);
      // The supersede rule: what is deployed, and who holds or waits for the deploy lease.
      artifacts.grantReadKeys(role, CURRENT_KEY_PATTERN, LEASE_KEY_PATTERN);
      artifacts.grantList(role, APPROVALS_PREFIX, DEPLOYMENTS_PREFIX);
      artifacts.acknowledgePrefixWildcard(role, APPROVALS_PREFIX, 'one approval request per execution.');
      artifacts.acknowledgeKeyWildcard(role, CURRENT_KEY_PATTERN, "each environment's current deployment.");
      artifacts.acknowledgeKeyWildcard(role, LEASE_KEY_PATTERN, "each environment's deploy lease.");
    }
    // Its own policy, so that its acknowledgement (and no other) covers this "*".
    const taskResponse = new iam.Policy(this, 'TaskResponse', {
      statements: [
        new iam.PolicyStatement({
          sid: 'AnswerApprovalTask',
          actions: ['states:SendTaskSuccess', 'states:SendTaskFailure'],
          resources: ['*'],
        }),
      ],
      roles: deciders,
    });
    Validations.of(taskResponse).acknowledge({
      id: 'AwsSolutions-IAM5[Resource::*]',
      reason:
        'states:SendTaskSuccess and states:SendTaskFailure list no resource types in the Service Authorization Reference, so they take Resource "*"; the task token kept under approvals/ (readable by this function only) is what names the AwaitApproval task.',
    });

    this.url = this.decideApproval.function.addFunctionUrl({ authType: lambda.FunctionUrlAuthType.AWS_IAM });
  }

  /** What an approver needs: the URL, signed with their own IAM identity, and nothing else. */
  public approverStatements(): iam.PolicyStatement[] {
    const functionArn = this.decideApproval.function.functionArn;
    return [
      new iam.PolicyStatement({
        sid: 'DecideApprovals',
        actions: ['lambda:InvokeFunctionUrl'],
        resources: [functionArn],
        conditions: { StringEquals: { 'lambda:FunctionUrlAuthType': 'AWS_IAM' } },
      }),
      // Function URLs created since October 2025 also need lambda:InvokeFunction (Lambda developer
      // guide, "Control access to Lambda function URLs"); only through the URL, where Lambda sets
      // the caller's identity: a direct invoke could pass any requestContext it liked.
      new iam.PolicyStatement({
        sid: 'DecideApprovalsThroughUrl',
        actions: ['lambda:InvokeFunction'],
        resources: [functionArn],
        conditions: { Bool: { 'lambda:InvokedViaFunctionUrl': 'true' } },
      }),
    ];
  }
}
