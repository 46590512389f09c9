import { Annotations, CfnOutput, Duration, Stack, Token, Validations } from 'aws-cdk-lib';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { sourceTypeOf, type PipelineConfig, type SourceType } from '../shared/config';
import type { WebhookProvider } from '../tasks/receive-push/push';
import type { DeployStateMachine } from './deploy-state-machine';
import { codeCommitRepositoryArn } from './fetch-source-access';
import { TaskFunction } from './task-function';

export const CODECOMMIT_REGION_WARNING = 'stepdeploy:codeCommitTriggerRegion';

const PROVIDER_OF: Partial<Readonly<Record<SourceType, WebhookProvider>>> = {
  GITHUB: 'github',
  GITHUB_ENTERPRISE: 'github',
  GITLAB: 'gitlab',
  GITLAB_SELF_MANAGED: 'gitlab',
  BITBUCKET: 'bitbucket',
};

export interface PushReceiverProps {
  readonly config: PipelineConfig;
  readonly deployStateMachine: DeployStateMachine;
  /** Puts the config into the function's bundle (as for validate-input) and says where it lands. */
  readonly bundleConfig: { readonly path: string; readonly afterBundling: (outputDir: string) => string[] };
  /**
   * Repository root holding `tasks/`.
   * @default - TaskFunction's default
   */
  readonly projectRoot?: string;
}

/**
 * Deploy on push (README "Deploy on push"): `tasks/receive-push` behind a Lambda function URL for
 * the webhooks of the triggered GitHub, GitLab and Bitbucket sources (one generated Secrets Manager
 * secret per provider, read at run time), and behind an EventBridge rule for the triggered
 * CodeCommit repositories' branch events. It may start executions of this state machine, nothing else.
 *
 * Why a function URL and not API Gateway: the providers authenticate with a signature over the
 * body that only the function can check (they cannot sign SigV4), so API Gateway would add a
 * second endpoint, its 29-second timeout and its own logging/WAF/authorizer settings around a
 * request it cannot judge; the URL adds no resource beyond a permission.
 */
export class PushReceiver extends Construct {
  public readonly task: TaskFunction;
  public readonly functionUrl?: lambda.FunctionUrl;
  public readonly secrets: Readonly<Partial<Record<WebhookProvider, secretsmanager.Secret>>>;
  public readonly codeCommitRule?: events.Rule;

  /** The webhook providers and CodeCommit repositories of the sources some environment triggers on. */
  static triggeredSources(config: PipelineConfig): { providers: WebhookProvider[]; codeCommit: string[] } {
    const triggered = new Set(Object.values(config.environments).flatMap((e) => e.triggers.map((t) => t.source)));
    const providers = new Set<WebhookProvider>();
    const codeCommit: string[] = [];
    for (const name of triggered) {
      const type = sourceTypeOf(config.sources[name]!);
      const provider = PROVIDER_OF[type];
      if (provider !== undefined) providers.add(provider);
      if (type === 'CODECOMMIT') codeCommit.push(name);
    }
    return { providers: [...providers].sort(), codeCommit };
  }

  constructor(scope: Construct, id: string, props: PushReceiverProps) {
    super(scope, id);
    const { config } = props;
    const { stateMachine } = props.deployStateMachine;
    const { providers, codeCommit } = PushReceiver.triggeredSources(config);
    if (providers.length === 0 && codeCommit.length === 0) {
      throw new Error(
        'PushReceiver needs a trigger on a GitHub, GitLab, Bitbucket or CodeCommit source, got none; create it only when PushReceiver.triggeredSources finds one',
      );
    }

    const secrets: Partial<Record<WebhookProvider, secretsmanager.Secret>> = {};
    const secretNames: Partial<Record<WebhookProvider, string>> = {};
    for (const provider of providers) {
      secretNames[provider] = `${config.pipeline}/webhook/${provider}`;
      const secret = new secretsmanager.Secret(this, `${provider}Secret`, {
        secretName: secretNames[provider],
        description: `stepdeploy ${config.pipeline}: the ${provider} webhook secret (paste it into the webhook's secret field)`,
        generateSecretString: { passwordLength: 40, excludePunctuation: true },
      });
      Validations.of(secret).acknowledge({
        id: 'AwsSolutions-SMG4',
        reason:
          'A webhook secret is shared with the git host: rotating it means changing the webhook there too, a manual step (README "Deploy on push"); an automatic rotation would break every delivery.',
      });
      secrets[provider] = secret;
    }
    this.secrets = secrets;

    this.task = new TaskFunction(this, 'Function', {
      task: 'receive-push',
      description: 'stepdeploy receive-push: starts deployments on pushes (webhooks, CodeCommit events)',
      // GitHub and Bitbucket give up on a delivery after 10 s.
      timeout: Duration.seconds(10),
      environment: {
        STEPDEPLOY_CONFIG_PATH: props.bundleConfig.path,
        STATE_MACHINE_ARN: stateMachine.stateMachineArn,
        // Names, not values: the function reads each secret at run time.
        WEBHOOK_SECRET_NAMES: JSON.stringify(secretNames),
      },
      afterBundling: props.bundleConfig.afterBundling,
      projectRoot: props.projectRoot,
    });
    const role = this.task.role;
    role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'StartDeployments',
        actions: ['states:StartExecution'],
        resources: [stateMachine.stateMachineArn],
      }),
    );
    for (const secret of Object.values(secrets)) {
      role.addToPolicy(
        new iam.PolicyStatement({
          actions: ['secretsmanager:GetSecretValue'],
          resources: [secret.secretArn],
        }),
      );
    }

    if (providers.length > 0) {
      // The signature over the body is the authentication: providers cannot sign SigV4.
      this.functionUrl = this.task.function.addFunctionUrl({ authType: lambda.FunctionUrlAuthType.NONE });
      new CfnOutput(this, 'WebhookUrl', {
        description: `Webhook URL: append /webhooks/<${providers.join('|')}>; each provider's secret is in Secrets Manager`,
        value: this.functionUrl.url,
      });
    }

    if (codeCommit.length > 0) {
      const stack = Stack.of(this);
      const repositories = codeCommit.map((name) =>
        codeCommitRepositoryArn(stack, name, config.sources[name]!.repository),
      );
      for (const [i, name] of codeCommit.entries()) {
        const region = repositories[i]!.split(':')[3]!;
        if (!Token.isUnresolved(stack.region) && region !== stack.region) {
          Annotations.of(this).addWarningV2(
            CODECOMMIT_REGION_WARNING,
            `sources.${name} is a CodeCommit repository in ${region}, but this stack is in ${stack.region}: EventBridge delivers its events in ${region} only, so its triggers never fire. Deploy the pipeline in ${region} or trigger from a webhook.`,
          );
        }
      }
      const deadLetters = new sqs.Queue(this, 'DeadLetters', {
        encryption: sqs.QueueEncryption.SQS_MANAGED,
        enforceSSL: true,
        retentionPeriod: Duration.days(14),
      });
      Validations.of(deadLetters).acknowledge({
        id: 'AwsSolutions-SQS3',
        reason:
          'This queue is itself the dead-letter queue of the CodeCommit push rule; a dead-letter queue behind it would only hold the same events again.',
      });
      this.codeCommitRule = new events.Rule(this, 'CodeCommitPushes', {
        description: 'stepdeploy: branch pushes to the triggered CodeCommit repositories → receive-push',
        eventPattern: {
          source: ['aws.codecommit'],
          detailType: ['CodeCommit Repository State Change'],
          resources: repositories,
          detail: { event: ['referenceCreated', 'referenceUpdated'], referenceType: ['branch'] },
        },
        targets: [
          // Redelivered events keep their id, hence their execution names: a retry starts nothing twice.
          new targets.LambdaFunction(this.task.function, {
            retryAttempts: 8,
            maxEventAge: Duration.hours(2),
            deadLetterQueue: deadLetters,
          }),
        ],
      });
    }
  }
}
