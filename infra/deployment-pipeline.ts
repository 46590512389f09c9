import { join, resolve } from 'node:path';
import { Annotations, CfnOutput, Duration, Size, Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import { sourceTypeOf, type PipelineConfig } from '../shared/config';
import { readDefinitionText, type SubstitutionName, type Substitutions } from '../workflows/definition';
import {
  ARTIFACTS_PREFIX,
  ArtifactsBucket,
  COMBINED_PREFIX,
  DEPLOYMENTS_PREFIX,
  SOURCES_PREFIX,
} from './artifacts-bucket';
import { loadBuildSpec } from './buildspec-file';
import { Approval } from './approval';
import { DeployStateMachine } from './deploy-state-machine';
import {
  BUILD_QUEUED_TIMEOUT_MINUTES,
  callbackTimeoutSeconds,
  DEPLOY_BUILD_TIMEOUT_MINUTES,
  DEPLOY_QUEUED_TIMEOUT_MINUTES,
  FETCH_QUEUED_TIMEOUT_MINUTES,
  projectTimeouts,
  taskTimeoutSeconds,
  timeoutFor,
} from './definition-timeouts';
import { DeployCompletion } from './deploy-completion';
import { DeployFunction } from './deploy-function';
import { fetchSourceStatements } from './fetch-source-access';
import { Notifications } from './notifications';
import { OperatorPolicy } from './operator-policy';
import { PipelineProjects } from './pipeline-projects';
import { pipelineConfigFileOf } from './pipeline-config';
import { PushReceiver } from './push-receiver';
import { PROJECT_ROOT, TaskFunction } from './task-function';
import { COMBINE_NODE_OPTIONS } from '../tasks/combine-sources/node-options';

/** Where validate-input finds the config inside its bundle (the function's code is at /var/task). */
export const BUNDLED_CONFIG_PATH = '/var/task/stepdeploy.config.yml';

export const LOCAL_REPOSITORY_WARNING = 'stepdeploy:localRepository';

/** The projects' limits (infra/definition-timeouts.ts: the local runtime's projects take the same). */
export const DEPLOY_BUILD_TIMEOUT = Duration.minutes(DEPLOY_BUILD_TIMEOUT_MINUTES);
export const DEPLOY_QUEUED_TIMEOUT = Duration.minutes(DEPLOY_QUEUED_TIMEOUT_MINUTES);
export const FETCH_QUEUED_TIMEOUT = Duration.minutes(FETCH_QUEUED_TIMEOUT_MINUTES);
export const BUILD_QUEUED_TIMEOUT = Duration.minutes(BUILD_QUEUED_TIMEOUT_MINUTES);

/** What a {@link DeploymentPipeline} is built from: its config, as a file or already loaded (one is required). */
export interface DeploymentPipelineProps {
  /**
   * The config file, `stepdeploy.config.yml`: loaded and validated unless `config` is given too,
   * bundled into the functions that read it, and the folder its buildspec paths are relative to.
   * @default - none: `config` is required, and its buildspec paths are relative to the working directory
   */
  readonly configPath?: string;
  /**
   * The config, loaded already (`loadConfig`); validated again here.
   * @default - loaded from `configPath`
   */
  readonly config?: PipelineConfig;
}

/**
 * One deploy pipeline: artifacts bucket, fetch/build/deploy projects, the task functions, the state
 * machine from workflows/deploy-pipeline.asl.json, the deploy lease's completion rules,
 * notifications and an operator policy.
 *
 * A construct, not a stack (as CDK Pipelines' `CodePipeline` is): put it in a stack of your own
 * CDK app in the tooling account, beside your other constructs, with the env, name, tags and
 * termination protection you choose. Its names come from `pipeline` in the config (the state
 * machine, the projects, `<pipeline>-deploy-project`), so two pipelines need two configs.
 */
export class DeploymentPipeline extends Construct {
  public readonly artifacts: ArtifactsBucket;
  public readonly projects: PipelineProjects;
  public readonly taskFunctions: Readonly<
    Record<'validateInput' | 'resolveSource' | 'combineSources' | 'runHook' | 'recordDeployment', TaskFunction>
  >;
  public readonly deployFunction: DeployFunction;
  public readonly approval: Approval;
  public readonly deployStateMachine: DeployStateMachine;
  public readonly deployCompletion: DeployCompletion;
  public readonly notifications: Notifications;
  public readonly operatorPolicy: OperatorPolicy;
  /** Deploy on push; only when an environment triggers on a source AWS can receive pushes of. */
  public readonly pushReceiver?: PushReceiver;

  constructor(scope: Construct, id: string, props: DeploymentPipelineProps) {
    super(scope, id);
    const { config, configPath, configDir } = pipelineConfigFileOf(this, props, 'DeploymentPipeline');
    const projectRoot = PROJECT_ROOT;

    for (const [name, source] of Object.entries(config.sources)) {
      if (sourceTypeOf(source) === 'LOCAL_GIT') {
        Annotations.of(this).addWarningV2(
          LOCAL_REPOSITORY_WARNING,
          `sources.${name}.repository is a local path (${source.repository}): CodeBuild on AWS cannot fetch a path on this machine, so FetchSources will fail for it. Set it to the repository URL (GitHub, GitLab, Bitbucket or CodeCommit) before deploying; local paths work with the local runtime only.`,
        );
      }
    }

    const definitionText = readDefinitionText();
    const timeouts = taskTimeoutSeconds(definitionText);
    const timeout = (name: SubstitutionName): Duration => Duration.seconds(timeoutFor(timeouts, name));
    const limits = projectTimeouts(definitionText);
    const deployWait = Duration.seconds(timeoutFor(callbackTimeoutSeconds(definitionText), 'DeployFunctionArn'));

    this.artifacts = new ArtifactsBucket(this, 'Artifacts');

    this.projects = new PipelineProjects(this, 'Projects', {
      namePrefix: config.pipeline,
      artifacts: this.artifacts,
      fetchBuildSpec: loadBuildSpec(join(projectRoot, 'buildspecs', 'fetch-source.yml'), 'buildspecs/fetch-source.yml'),
      buildBuildSpec: loadBuildSpec(resolve(configDir, config.buildspecs.build), 'buildspecs.build'),
      deployBuildSpec: loadBuildSpec(resolve(configDir, config.buildspecs.deploy), 'buildspecs.deploy'),
      fetchTimeout: Duration.minutes(limits.fetch.timeoutInMinutes),
      fetchQueuedTimeout: Duration.minutes(limits.fetch.queuedTimeoutInMinutes),
      buildTimeout: Duration.minutes(limits.build.timeoutInMinutes),
      buildQueuedTimeout: Duration.minutes(limits.build.queuedTimeoutInMinutes),
      deployTimeout: DEPLOY_BUILD_TIMEOUT,
      deployQueuedTimeout: DEPLOY_QUEUED_TIMEOUT,
      deployRoleArns: Object.values(config.environments).map((e) => e.deployRoleArn),
    });
    // codecommit:GitPull on the CodeCommit sources, the connection actions on the connections.
    for (const statement of fetchSourceStatements(Stack.of(this), config.sources))
      this.projects.fetch.addToRolePolicy(statement);

    const bucketEnv = { ARTIFACT_BUCKET: this.artifacts.bucketName };
    // The config travels inside the bundle: the function needs no S3 or parameter read to know the
    // pipeline, and a config change is a code change that deploys with the stack.
    const bundleConfig = (outputDir: string): string[] => [
      `cp ${shellQuote(configPath)} ${shellQuote(join(outputDir, 'stepdeploy.config.yml'))}`,
    ];
    const validateInput = new TaskFunction(this, 'ValidateInput', {
      task: 'validate-input',
      description: 'stepdeploy ValidateInput: checks the execution input against the bundled config',
      timeout: timeout('ValidateInputFunctionArn'),
      environment: { STEPDEPLOY_CONFIG_PATH: BUNDLED_CONFIG_PATH, ...bucketEnv },
      afterBundling: bundleConfig,
      projectRoot,
    });
    // A redeploy (rollback): the earlier execution's deployment record, and whether its build.zip is still stored.
    const redeployKeys = {
      'deployments/*/executions/*': 'the deployment record of the execution a rollback names, in any environment.',
      'artifacts/*/*/build.zip': 'whether the build a rollback deploys again is still stored (HeadObject).',
    };
    this.artifacts.grantReadKeys(validateInput.role, ...Object.keys(redeployKeys));
    this.artifacts.grantList(validateInput.role, DEPLOYMENTS_PREFIX, ARTIFACTS_PREFIX);
    for (const [pattern, why] of Object.entries(redeployKeys))
      this.artifacts.acknowledgeKeyWildcard(validateInput.role, pattern, why);
    const resolveSource = new TaskFunction(this, 'ResolveSource', {
      task: 'resolve-source',
      description:
        "stepdeploy ResolveSource: reads a source branch's commit (git ls-refs over HTTPS) and whether its snapshot is stored",
      timeout: timeout('ResolveSourceFunctionArn'),
      environment: bucketEnv,
      projectRoot,
    });
    // HeadObject on sources/<source>/<commit>.zip: s3:GetObject, and s3:ListBucket so that a
    // snapshot not stored yet answers 404 rather than 403.
    this.artifacts.grantReadObjects(resolveSource.role, SOURCES_PREFIX);
    this.artifacts.grantList(resolveSource.role, SOURCES_PREFIX);
    this.artifacts.acknowledgePrefixWildcard(
      resolveSource.role,
      SOURCES_PREFIX,
      'checks whether sources/<source>/<commit>.zip is stored (HeadObject).',
    );
    // The token a source's credentialsSecret names: read at run time, only these secrets.
    const credentialSecrets = [
      ...new Set(Object.values(config.sources).flatMap((s) => (s.credentialsSecret ? [s.credentialsSecret] : []))),
    ];
    if (credentialSecrets.length > 0) {
      resolveSource.role.addToPolicy(
        new iam.PolicyStatement({
          sid: 'ReadRepositoryCredentials',
          actions: ['secretsmanager:GetSecretValue'],
          // A secret's ARN ends in "-" and six random characters.
          resources: credentialSecrets.map(
            (name, i) =>
              `${secretsmanager.Secret.fromSecretNameV2(this, `RepositoryCredentials${i}`, name).secretArn}-??????`,
          ),
        }),
      );
    }
    const combineSources = new TaskFunction(this, 'CombineSources', {
      task: 'combine-sources',
      description: 'stepdeploy CombineConfigAndCode: streams the source snapshots into source.zip with its manifest',
      timeout: timeout('CombineSourcesFunctionArn'),
      // Memory stays flat (streams), but a zip's directory sits at its end: reading a snapshot needs
      // random access, so snapshots may be spooled to /tmp. 4 GiB holds a few GiB of sources; /tmp
      // above 512 MiB costs a fraction of the memory price per GB-second.
      memorySize: 512,
      ephemeralStorageSize: Size.gibibytes(4),
      environment: { ...bucketEnv, NODE_OPTIONS: COMBINE_NODE_OPTIONS },
      projectRoot,
    });
    this.artifacts.grantReadObjects(combineSources.role, SOURCES_PREFIX);
    // Reads its own output back: a redrive finds source.zip already written and returns its manifest.
    this.artifacts.grantReadObjects(combineSources.role, ARTIFACTS_PREFIX);
    this.artifacts.grantWriteObjects(combineSources.role, ARTIFACTS_PREFIX);
    // The reuse index: read to copy an earlier source.zip's entries (UploadPartCopy reads artifacts/,
    // granted above), written after a full combine.
    this.artifacts.grantReadObjects(combineSources.role, COMBINED_PREFIX);
    this.artifacts.grantWriteObjects(combineSources.role, COMBINED_PREFIX);
    this.artifacts.acknowledgePrefixWildcard(
      combineSources.role,
      COMBINED_PREFIX,
      'reads and writes the reuse index combined/<hash>.json.',
    );
    this.artifacts.grantList(combineSources.role, SOURCES_PREFIX, ARTIFACTS_PREFIX, COMBINED_PREFIX);
    this.artifacts.acknowledgePrefixWildcard(
      combineSources.role,
      SOURCES_PREFIX,
      'reads the snapshots sources/<source>/<commit>.zip of the execution.',
    );
    this.artifacts.acknowledgePrefixWildcard(
      combineSources.role,
      ARTIFACTS_PREFIX,
      'writes artifacts/<environment>/<execution>/source.zip once and reads it back on a redrive.',
    );

    const runHook = new TaskFunction(this, 'RunHook', {
      task: 'run-hook',
      description: 'stepdeploy PostDeployHooks: runs one post-deploy hook (HTTP check)',
      timeout: timeout('RunHookFunctionArn'),
      projectRoot,
    });
    const recordDeployment = new TaskFunction(this, 'RecordDeployment', {
      task: 'record-deployment',
      description: 'stepdeploy RecordDeployment: records what is deployed where under deployments/',
      timeout: timeout('RecordDeploymentFunctionArn'),
      environment: bucketEnv,
      projectRoot,
    });
    // Everything it records, and nothing else under deployments/ (not the deploy leases).
    const recordKeys = {
      'deployments/*/current.json': 'one current.json per environment, moved forward with conditional writes.',
      'deployments/*/history/*': 'the append-only history entries, named by deployment time and execution.',
      'deployments/*/executions/*': 'one claim per execution, which makes a redriven RecordDeployment idempotent.',
    };
    this.artifacts.grantReadKeys(recordDeployment.role, ...Object.keys(recordKeys));
    this.artifacts.grantWriteKeys(recordDeployment.role, ...Object.keys(recordKeys));
    this.artifacts.grantList(recordDeployment.role, DEPLOYMENTS_PREFIX);
    for (const [pattern, why] of Object.entries(recordKeys))
      this.artifacts.acknowledgeKeyWildcard(recordDeployment.role, pattern, why);
    this.taskFunctions = { validateInput, resolveSource, combineSources, runHook, recordDeployment };

    this.deployFunction = new DeployFunction(this, 'Deploy', {
      artifacts: this.artifacts,
      project: this.projects.deploy,
      buildTimeout: DEPLOY_BUILD_TIMEOUT,
      queuedTimeout: DEPLOY_QUEUED_TIMEOUT,
      waitTimeout: deployWait,
      projectRoot,
    });

    this.approval = new Approval(this, 'Approval', {
      artifacts: this.artifacts,
      timeout: timeout('AwaitApprovalFunctionArn'),
      slackWebhookSecretName: config.notifications.slack?.webhookSecretName,
      slackButtons: config.notifications.slack?.signingSecretName
        ? {
            signingSecretName: config.notifications.slack.signingSecretName,
            bundleConfig: { path: BUNDLED_CONFIG_PATH, afterBundling: bundleConfig },
          }
        : undefined,
      projectRoot,
    });

    const substitutions: Substitutions = {
      ArtifactsBucket: this.artifacts.bucketName,
      ValidateInputFunctionArn: validateInput.function.functionArn,
      CombineSourcesFunctionArn: combineSources.function.functionArn,
      ResolveSourceFunctionArn: resolveSource.function.functionArn,
      RunHookFunctionArn: runHook.function.functionArn,
      RecordDeploymentFunctionArn: recordDeployment.function.functionArn,
      DeployFunctionArn: this.deployFunction.task.function.functionArn,
      AwaitApprovalFunctionArn: this.approval.awaitApproval.function.functionArn,
      FetchProjectName: this.projects.fetch.projectName,
      BuildProjectName: this.projects.build.projectName,
    };
    this.deployStateMachine = new DeployStateMachine(this, 'StateMachine', {
      stateMachineName: config.pipeline,
      definitionText,
      substitutions,
      taskFunctions: [...Object.values(this.taskFunctions), this.deployFunction.task, this.approval.awaitApproval].map(
        (t) => t.function,
      ),
      // The deploy project is started by the deploy function, not by the state machine.
      projects: [this.projects.fetch, this.projects.build],
    });

    this.deployCompletion = new DeployCompletion(this, 'DeployCompletion', {
      deployStateMachine: this.deployStateMachine,
      deployProject: this.projects.deploy,
      artifacts: this.artifacts,
      waitTimeout: deployWait,
      projectRoot,
    });

    this.notifications = new Notifications(this, 'Notifications', {
      deployStateMachine: this.deployStateMachine,
      projects: this.projects.all,
      slackWebhookSecretName: config.notifications.slack?.webhookSecretName,
      projectRoot,
    });

    const triggered = PushReceiver.triggeredSources(config);
    if (triggered.providers.length > 0 || triggered.codeCommit.length > 0) {
      this.pushReceiver = new PushReceiver(this, 'PushReceiver', {
        config,
        deployStateMachine: this.deployStateMachine,
        bundleConfig: { path: BUNDLED_CONFIG_PATH, afterBundling: bundleConfig },
        projectRoot,
      });
    }

    this.operatorPolicy = new OperatorPolicy(this, 'OperatorPolicy', {
      deployStateMachine: this.deployStateMachine,
      projects: this.projects.all,
      artifacts: this.artifacts,
      logGroups: this.projects.logGroups,
      approverStatements: this.approval.approverStatements(),
    });

    new CfnOutput(this, 'StateMachineArn', {
      description: 'The deploy pipeline (stepdeploy start/watch/redrive)',
      value: this.deployStateMachine.stateMachine.stateMachineArn,
    });
    new CfnOutput(this, 'ArtifactsBucketName', {
      description: 'sources/, artifacts/ and deployments/',
      value: this.artifacts.bucketName,
    });
    new CfnOutput(this, 'DeployProjectRoleArn', {
      description: "The role each environment's deploy role must trust (sts:AssumeRole)",
      value: this.projects.deploy.role!.roleArn,
    });
    new CfnOutput(this, 'ApprovalUrl', {
      description: 'stepdeploy approve/reject send the decision here (STEPDEPLOY_APPROVAL_URL); AWS_IAM auth',
      value: this.approval.url.url,
    });
    if (this.approval.slackActionsUrl) {
      new CfnOutput(this, 'SlackActionsUrl', {
        description:
          'The Slack app\'s interactivity Request URL: its Approve / Reject buttons (README "Approve from Slack")',
        value: this.approval.slackActionsUrl.url,
      });
    }
    new CfnOutput(this, 'OperatorPolicyArn', {
      description: "Attach to the operators' role or group",
      value: this.operatorPolicy.policy.managedPolicyArn,
    });
  }
}

/** Quotes one argument for the POSIX shell that runs bundling command hooks. */
function shellQuote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}
