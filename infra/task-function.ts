import { existsSync } from 'node:fs';
import { join, relative } from 'node:path';
import { type Duration, RemovalPolicy, type Size, Token, Validations } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as nodejs from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';

/** The repository root: tasks/, package-lock.json. */
export const PROJECT_ROOT = join(__dirname, '..');

export interface TaskFunctionProps {
  /** The task folder: `tasks/<task>/handler.ts` exports `handler`. */
  readonly task: string;
  /** Must not exceed the calling Task's TimeoutSeconds; at most 15 minutes. */
  readonly timeout: Duration;
  readonly description: string;
  /**
   * @default 256
   */
  readonly memorySize?: number;
  /**
   * /tmp size.
   * @default Size.mebibytes(512)
   */
  readonly ephemeralStorageSize?: Size;
  /**
   * @default - none
   */
  readonly environment?: Readonly<Record<string, string>>;
  /**
   * Shell commands run after esbuild, given the output folder (e.g. to copy a file into the bundle).
   * @default - none
   */
  readonly afterBundling?: (outputDir: string) => string[];
  /**
   * Repository root holding `tasks/` and `package-lock.json`.
   * @default PROJECT_ROOT
   */
  readonly projectRoot?: string;
  /**
   * @default logs.RetentionDays.ONE_YEAR
   */
  readonly logRetention?: logs.RetentionDays;
}

/**
 * One `tasks/<task>/handler.ts` as a Lambda function: Node.js 22, bundled by the local esbuild
 * (never Docker) together with the pinned AWS SDK the tests ran, X-Ray active, its own log group
 * and a role that starts with nothing but writing to that log group.
 */
export class TaskFunction extends Construct {
  public readonly function: nodejs.NodejsFunction;
  public readonly role: iam.Role;
  public readonly logGroup: logs.LogGroup;

  constructor(scope: Construct, id: string, props: TaskFunctionProps) {
    super(scope, id);
    const projectRoot = props.projectRoot ?? PROJECT_ROOT;
    const entry = join(projectRoot, 'tasks', props.task, 'handler.ts');
    if (!existsSync(entry)) {
      throw new Error(
        `task "${props.task}" has no handler: ${relative(process.cwd(), entry) || entry} does not exist; create it (exporting "handler") or fix the task name`,
      );
    }
    const timeoutSeconds = props.timeout.toSeconds();
    if (!Token.isUnresolved(timeoutSeconds) && (timeoutSeconds < 1 || timeoutSeconds > 900)) {
      throw new Error(
        `timeout of task "${props.task}" must be between 1 second and 15 minutes (the Lambda limit), got ${props.timeout.toHumanString()}; lower the Task's TimeoutSeconds in the definition`,
      );
    }

    this.logGroup = new logs.LogGroup(this, 'Logs', {
      retention: props.logRetention ?? logs.RetentionDays.ONE_YEAR,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    this.role = new iam.Role(this, 'Role', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: `stepdeploy ${props.task} task`,
    });
    // Instead of AWSLambdaBasicExecutionRole (logs:* on every log group): this log group only.
    this.logGroup.grantWrite(this.role);

    const afterBundling = props.afterBundling;
    this.function = new nodejs.NodejsFunction(this, 'Resource', {
      entry,
      handler: 'handler',
      projectRoot,
      depsLockFilePath: join(projectRoot, 'package-lock.json'),
      runtime: lambda.Runtime.NODEJS_22_X,
      architecture: lambda.Architecture.ARM_64,
      description: props.description,
      timeout: props.timeout,
      memorySize: props.memorySize ?? 256,
      ephemeralStorageSize: props.ephemeralStorageSize,
      environment: { ...props.environment },
      role: this.role,
      logGroup: this.logGroup,
      tracing: lambda.Tracing.ACTIVE,
      bundling: {
        forceDockerBundling: false,
        // NodejsFunction leaves @aws-sdk/* to the runtime by default. The runtime's SDK is whatever
        // version Lambda ships, and an older one silently drops IfMatch/IfNoneMatch, turning the
        // deploy lease and current.json compare-and-swap into blind overwrites: bundle the pinned one.
        externalModules: [],
        target: 'node22',
        minify: true,
        sourceMap: true,
        sourcesContent: false,
        commandHooks: afterBundling
          ? {
              beforeBundling: () => [],
              beforeInstall: () => [],
              afterBundling: (_inputDir: string, outputDir: string) => afterBundling(outputDir),
            }
          : undefined,
      },
    });
    Validations.of(this.function).acknowledge({
      id: 'AwsSolutions-L1',
      reason:
        "Node.js 22 is the runtime the task code and the pinned AWS SDK bundled with it (not the runtime's SDK) are built and tested for (TOOLCHAIN.md); move to Node.js 24 together with the toolchain.",
    });
    Validations.of(this.role).acknowledge({
      id: 'AwsSolutions-IAM5[Resource::*]',
      reason:
        'X-Ray tracing: xray:PutTraceSegments and xray:PutTelemetryRecords support no resource-level permissions (Service Authorization Reference).',
    });
  }
}
