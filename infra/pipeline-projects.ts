import { type Duration, RemovalPolicy, Token, Validations } from 'aws-cdk-lib';
import * as codebuild from 'aws-cdk-lib/aws-codebuild';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { ARTIFACTS_PREFIX, SOURCES_PREFIX, type ArtifactsBucket } from './artifacts-bucket';
import { LEASE_KEY_PATTERN } from './deploy-function';
import { findingArnPrefix, logicalIdOf } from './logical-id';
import { S3ArtifactsWithoutGrant, S3SourceWithoutGrant } from './s3-without-grants';

export interface PipelineProjectsProps {
  /** Project names are `<namePrefix>-fetch`, `-build` and `-deploy`. */
  readonly namePrefix: string;
  readonly artifacts: ArtifactsBucket;
  readonly fetchBuildSpec: codebuild.BuildSpec;
  readonly buildBuildSpec: codebuild.BuildSpec;
  readonly deployBuildSpec: codebuild.BuildSpec;
  /**
   * Build and queued timeouts, whole minutes from 5 minutes to 8 hours (CodeBuild's limits). Every
   * queue is bounded (CodeBuild's default is 8 hours): fetch and build are waited for by Tasks whose
   * TimeoutSeconds must cover queue + build, and the deploy lease must outlast the deploy's queue
   * and build together (DeployFunction).
   */
  readonly fetchTimeout: Duration;
  readonly fetchQueuedTimeout: Duration;
  readonly buildTimeout: Duration;
  readonly buildQueuedTimeout: Duration;
  readonly deployTimeout: Duration;
  readonly deployQueuedTimeout: Duration;
  /** The environments' deploy roles: the only roles the deploy project may assume. */
  readonly deployRoleArns: ReadonlyArray<string>;
  /**
   * @default codebuild.LinuxBuildImage.STANDARD_7_0
   */
  readonly buildImage?: codebuild.IBuildImage;
  /**
   * @default logs.RetentionDays.ONE_YEAR
   */
  readonly logRetention?: logs.RetentionDays;
}

/**
 * The deploy project's role name: fixed, so that each environment's deploy role can trust it by
 * ARN before this stack exists and after it is replaced (infra/deploy-role.ts). IAM role names are
 * account-wide: one pipeline name per tooling account.
 */
export function deployProjectRoleName(namePrefix: string): string {
  return `${namePrefix}-deploy-project`;
}

/**
 * The three CodeBuild projects: the state machine starts fetch and build with `startBuild.sync`,
 * the deploy function (tasks/deploy) starts deploy once it holds the environment's deploy lease.
 * Their sources are placeholders: every FetchSource, BuildTemplates and Deploy overrides source
 * (and artifacts) per execution. Each role reaches only the bucket prefixes its step reads or writes.
 */
export class PipelineProjects extends Construct {
  public readonly fetch: codebuild.Project;
  public readonly build: codebuild.Project;
  public readonly deploy: codebuild.Project;
  public readonly logGroups: ReadonlyArray<logs.LogGroup>;

  constructor(scope: Construct, id: string, props: PipelineProjectsProps) {
    super(scope, id);
    for (const [name, timeout] of [
      ['fetchTimeout', props.fetchTimeout],
      ['fetchQueuedTimeout', props.fetchQueuedTimeout],
      ['buildTimeout', props.buildTimeout],
      ['buildQueuedTimeout', props.buildQueuedTimeout],
      ['deployTimeout', props.deployTimeout],
      ['deployQueuedTimeout', props.deployQueuedTimeout],
    ] as const) {
      const minutes = timeout.toMinutes({ integral: false });
      if (!Token.isUnresolved(minutes) && (!Number.isInteger(minutes) || minutes < 5 || minutes > 480)) {
        throw new Error(
          `${name} must be a whole number of minutes between 5 minutes and 8 hours (CodeBuild's limits), got ${timeout.toHumanString()}; for fetch and build change the Task's TimeoutSeconds in the definition`,
        );
      }
    }
    if (props.deployRoleArns.length === 0) {
      throw new Error(
        'deployRoleArns must list at least one role, got none; declare an environment with a deployRoleArn in the config',
      );
    }
    const { artifacts } = props;
    const bucket = artifacts.bucket;
    const environment: codebuild.BuildEnvironment = {
      buildImage: props.buildImage ?? codebuild.LinuxBuildImage.STANDARD_7_0,
      computeType: codebuild.ComputeType.SMALL,
      privileged: false,
    };
    const logGroups: logs.LogGroup[] = [];
    const logging = (logId: string): codebuild.LoggingOptions => {
      const logGroup = new logs.LogGroup(this, logId, {
        retention: props.logRetention ?? logs.RetentionDays.ONE_YEAR,
        removalPolicy: RemovalPolicy.RETAIN,
      });
      logGroups.push(logGroup);
      return { cloudWatch: { logGroup } };
    };

    this.fetch = new codebuild.Project(this, 'Fetch', {
      projectName: `${props.namePrefix}-fetch`,
      description: 'stepdeploy FetchSource: clones one source at a branch and stores sources/<source>/<commit>.zip',
      // No source of its own (NO_SOURCE): FetchSource overrides type, location and version per
      // source. A GitHub placeholder would make CreateProject demand a GitHub credential in the
      // account even when no source is on GitHub. CodeBuild clones with the account's source
      // credential for the git host (`aws codebuild import-source-credentials`, a connection
      // included); the stack grants the role what each source needs (fetch-source-access.ts).
      buildSpec: props.fetchBuildSpec,
      environment,
      timeout: props.fetchTimeout,
      queuedTimeout: props.fetchQueuedTimeout,
      logging: logging('FetchLogs'),
      artifacts: new S3ArtifactsWithoutGrant({
        bucket,
        path: SOURCES_PREFIX.slice(0, -1),
        name: 'snapshot.zip',
        // fetch-source.yml names the zip after the resolved commit: sources/<source>/<commit>.zip.
        overrideArtifactName: true,
      }),
    });
    artifacts.grantBucketLocation(this.fetch);
    artifacts.grantWriteObjects(this.fetch, SOURCES_PREFIX);

    this.build = new codebuild.Project(this, 'Build', {
      projectName: `${props.namePrefix}-build`,
      description:
        'stepdeploy BuildTemplates: runs the build buildspec on artifacts/<environment>/<execution>/source.zip',
      source: new S3SourceWithoutGrant({ bucket, key: `${ARTIFACTS_PREFIX}placeholder/source.zip` }),
      buildSpec: props.buildBuildSpec,
      environment,
      timeout: props.buildTimeout,
      queuedTimeout: props.buildQueuedTimeout,
      logging: logging('BuildLogs'),
      artifacts: new S3ArtifactsWithoutGrant({ bucket, path: ARTIFACTS_PREFIX.slice(0, -1), name: 'build.zip' }),
    });
    artifacts.grantBucketLocation(this.build);
    artifacts.grantReadObjects(this.build, ARTIFACTS_PREFIX);
    artifacts.grantWriteObjects(this.build, ARTIFACTS_PREFIX);

    this.deploy = new codebuild.Project(this, 'Deploy', {
      projectName: `${props.namePrefix}-deploy`,
      role: new iam.Role(this, 'DeployRole', {
        roleName: deployProjectRoleName(props.namePrefix),
        assumedBy: new iam.ServicePrincipal('codebuild.amazonaws.com'),
        description: `stepdeploy ${props.namePrefix} deploy project: assumes the environments' deploy roles`,
      }),
      description: "stepdeploy Deploy: runs the deploy buildspec on build.zip with the environment's deploy role",
      source: new S3SourceWithoutGrant({ bucket, key: `${ARTIFACTS_PREFIX}placeholder/build.zip` }),
      buildSpec: props.deployBuildSpec,
      environment,
      timeout: props.deployTimeout,
      queuedTimeout: props.deployQueuedTimeout,
      logging: logging('DeployLogs'),
    });
    artifacts.grantBucketLocation(this.deploy);
    artifacts.grantReadObjects(this.deploy, ARTIFACTS_PREFIX);
    // The build's fence (buildspecs/deploy.yml) reads its environment's lease before it deploys.
    artifacts.grantReadKeys(this.deploy, LEASE_KEY_PATTERN);
    artifacts.acknowledgeKeyWildcard(
      this.deploy.role!,
      LEASE_KEY_PATTERN,
      'the deploy fence reads its environment lease before deploying.',
    );
    this.deploy.addToRolePolicy(
      new iam.PolicyStatement({ actions: ['sts:AssumeRole'], resources: [...new Set(props.deployRoleArns)] }),
    );
    this.logGroups = logGroups;

    artifacts.acknowledgePrefixWildcard(
      this.fetch,
      SOURCES_PREFIX,
      'sources/<source>/<commit>.zip, named after the commit the fetch resolves.',
    );
    artifacts.acknowledgePrefixWildcard(
      this.build,
      ARTIFACTS_PREFIX,
      'reads artifacts/<environment>/<execution>/source.zip and writes build.zip next to it.',
    );
    // The deploy project's role is its own construct (a fixed name), not under the project.
    artifacts.acknowledgePrefixWildcard(
      this.deploy.role!,
      ARTIFACTS_PREFIX,
      'reads artifacts/<environment>/<execution>/build.zip.',
    );
    for (const project of [this.fetch, this.build, this.deploy]) {
      const ref = `<${logicalIdOf(project)}>`;
      const acknowledge = (...acks: Array<{ id: string; reason: string }>) => {
        Validations.of(project).acknowledge(...acks);
        Validations.of(project.role!).acknowledge(...acks);
      };
      acknowledge(
        {
          id: `AwsSolutions-IAM5[Resource::${findingArnPrefix(project, 'codebuild')}report-group/${ref}-*]`,
          reason:
            'Added by the CodeBuild Project construct: test report groups named after this project, created on demand; none exists to name.',
        },
        {
          id: `AwsSolutions-IAM5[Resource::${findingArnPrefix(project, 'logs')}log-group:/aws/codebuild/${ref}:*]`,
          reason:
            "Added by the CodeBuild Project construct for the project's default log group (its streams are named per build); the project logs to its own log group instead.",
        },
        {
          id: 'AwsSolutions-CB4',
          reason:
            'Without a customer managed key CodeBuild encrypts artifacts with the AWS managed aws/s3 key, in a bucket that is SSL-only and reached through prefix-scoped roles; a customer managed key would add key-policy grants to five roles with no requirement asking for it.',
        },
      );
    }
  }

  public get all(): ReadonlyArray<codebuild.Project> {
    return [this.fetch, this.build, this.deploy];
  }
}
