import { Duration, Token } from 'aws-cdk-lib';
import type * as codebuild from 'aws-cdk-lib/aws-codebuild';
import * as iam from 'aws-cdk-lib/aws-iam';
import { Construct } from 'constructs';
import { DEPLOYMENTS_PREFIX, type ArtifactsBucket } from './artifacts-bucket';
import { TaskFunction } from './task-function';

/** The deploy lease of each environment (tasks/deploy/lease.ts). */
export const LEASE_KEY_PATTERN = `${DEPLOYMENTS_PREFIX}*/lease.json`;
/** What is deployed where (tasks/record-deployment); Deploy refuses to deploy over a newer execution. */
export const CURRENT_KEY_PATTERN = `${DEPLOYMENTS_PREFIX}*/current.json`;

/**
 * Added to the deploy build's queued and build timeouts: the lease is taken a little before
 * StartBuild, and a build finishes (artifacts, logs) a little after its timeout.
 */
export const LEASE_MARGIN = Duration.minutes(5);

export interface DeployFunctionProps {
  readonly artifacts: ArtifactsBucket;
  /** The deploy project: the only project the function starts, watches and stops. */
  readonly project: codebuild.IProject;
  /** The deploy project's build timeout. */
  readonly buildTimeout: Duration;
  /** The deploy project's queued timeout. */
  readonly queuedTimeout: Duration;
  /**
   * The Deploy Task's TimeoutSeconds: how long the state machine waits for the task token. The
   * lease and the function's own run must fit in it, so that a deploy that takes too long ends as
   * its build's timeout (with the build's logs) rather than as States.Timeout.
   */
  readonly waitTimeout: Duration;
  /**
   * How long one invocation may run: it reads the lease and current.json, writes the lease and
   * starts the build, a few requests.
   * @default Duration.seconds(60)
   */
  readonly timeout?: Duration;
  /**
   * Repository root holding `tasks/`.
   * @default - TaskFunction's default
   */
  readonly projectRoot?: string;
}

/**
 * Deploy (`lambda:invoke.waitForTaskToken` on tasks/deploy): takes the environment's deploy lease
 * with S3 conditional writes, then starts the deploy build and returns; DeployCompletion hands
 * the build's end back to the state machine. The lease lasts as long as the deploy build can
 * (queue + build + margin), so it never lapses under a build that still runs.
 */
export class DeployFunction extends Construct {
  public readonly task: TaskFunction;
  /** How long a lease lasts when nobody gives it back (DEPLOY_LEASE_SECONDS). */
  public readonly leaseDuration: Duration;

  constructor(scope: Construct, id: string, props: DeployFunctionProps) {
    super(scope, id);
    const timeout = props.timeout ?? Duration.seconds(60);
    this.leaseDuration = Duration.seconds(
      props.queuedTimeout.toSeconds() + props.buildTimeout.toSeconds() + LEASE_MARGIN.toSeconds(),
    );
    const needed = this.leaseDuration.toSeconds() + timeout.toSeconds();
    const wait = props.waitTimeout.toSeconds();
    if (!Token.isUnresolved(needed) && !Token.isUnresolved(wait) && needed > wait) {
      throw new Error(
        `the Deploy Task must wait at least as long as a deploy can take: queued ${props.queuedTimeout.toHumanString()} + build ${props.buildTimeout.toHumanString()} + margin ${LEASE_MARGIN.toHumanString()} + the function's ${timeout.toHumanString()} = ${needed} seconds, got TimeoutSeconds ${wait}; ` +
          "raise Deploy's TimeoutSeconds in workflows/deploy-pipeline.asl.json or lower the deploy project's timeouts",
      );
    }

    this.task = new TaskFunction(this, 'Function', {
      task: 'deploy',
      description:
        "stepdeploy Deploy: takes the environment's deploy lease and starts the deploy build (the state waits for its task token)",
      timeout,
      environment: {
        ARTIFACT_BUCKET: props.artifacts.bucketName,
        DEPLOY_PROJECT_NAME: props.project.projectName,
        DEPLOY_LEASE_SECONDS: String(this.leaseDuration.toSeconds()),
      },
      projectRoot: props.projectRoot,
    });
    const role = this.task.role;

    role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'RunDeployBuild',
        // BatchGetBuilds: whether the build holding a lease still runs; ListBuildsForProject: the
        // build of a lease whose id was never recorded (found by its lease id); StopBuild: a redrive
        // stops the build of its own earlier run, and a lease lost before it was recorded.
        actions: [
          'codebuild:StartBuild',
          'codebuild:StopBuild',
          'codebuild:BatchGetBuilds',
          'codebuild:ListBuildsForProject',
        ],
        resources: [props.project.projectArn],
      }),
    );
    const { artifacts } = props;
    artifacts.grantReadKeys(role, CURRENT_KEY_PATTERN, LEASE_KEY_PATTERN);
    artifacts.grantWriteKeys(role, LEASE_KEY_PATTERN);
    // The first deploy of an environment finds neither object: without ListBucket S3 answers that
    // read with 403, not 404, and Deploy would fail instead of taking a new lease.
    artifacts.grantList(role, DEPLOYMENTS_PREFIX);
    artifacts.acknowledgeKeyWildcard(
      role,
      CURRENT_KEY_PATTERN,
      'one current.json per environment, read to refuse deploying over a newer execution.',
    );
    artifacts.acknowledgeKeyWildcard(
      role,
      LEASE_KEY_PATTERN,
      'one deploy lease per environment, taken with conditional writes.',
    );
  }
}
