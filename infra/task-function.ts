import { execFileSync } from 'node:child_process';
import { cpSync, existsSync } from 'node:fs';
import { join, relative } from 'node:path';
import { AssetHashType, DockerImage, type Duration, RemovalPolicy, type Size, Token, Validations } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as nodejs from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';

/** The repository root: tasks/, package-lock.json. */
export const PROJECT_ROOT = join(__dirname, '..');

/**
 * Where the built package keeps every task's handler, bundled by `npm run build` (bundleTask):
 * `lambda/<task>/index.js` beside the built infra/. An installed package has neither the TypeScript
 * sources nor esbuild (a devDependency), so its functions use these, as aws-cdk-lib ships the
 * handlers of its own custom resources. In the repository the folder does not exist.
 */
export const PREBUNDLED_ROOT = join(__dirname, '..', 'lambda');

/**
 * How every handler is bundled, ahead (bundleTask) or at synth (NodejsFunction): Node.js 22,
 * minified, and with every module inside, the AWS SDK included (no external).
 * NodejsFunction leaves @aws-sdk/* to the runtime by default. The runtime's SDK is whatever version
 * Lambda ships, and an older one silently drops IfMatch/IfNoneMatch, turning the deploy lease and
 * current.json compare-and-swap into blind overwrites: bundle the pinned one.
 * No source map: Lambda reads one only with NODE_OPTIONS=--enable-source-maps, which slows cold
 * starts and every stack trace; unread, the maps were 58% of each bundle and of the npm package.
 */
const BUNDLING = { target: 'node22', minify: true, sourceMap: false } as const;

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
   * A folder of handlers bundled ahead by bundleTask (`<task>/index.js`): the function's code is
   * that bundle, and `tasks/<task>/handler.ts` is not read.
   * @default PREBUNDLED_ROOT when it holds this task (the installed package), else none
   */
  readonly prebundledRoot?: string;
  /**
   * @default logs.RetentionDays.ONE_YEAR
   */
  readonly logRetention?: logs.RetentionDays;
}

/**
 * One `tasks/<task>/handler.ts` as a Lambda function: Node.js 22, bundled by the local esbuild
 * (never Docker) together with the pinned AWS SDK the tests ran — at synth in the repository, at
 * `npm run build` for the package — X-Ray active, its own log group and a role that starts with
 * nothing but writing to that log group.
 */
export class TaskFunction extends Construct {
  public readonly function: lambda.Function;
  public readonly role: iam.Role;
  public readonly logGroup: logs.LogGroup;

  constructor(scope: Construct, id: string, props: TaskFunctionProps) {
    super(scope, id);
    const code = taskCode(props);
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

    const common = {
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
    } satisfies Partial<lambda.FunctionProps>;
    const afterBundling = props.afterBundling;
    this.function =
      code.kind === 'prebundled'
        ? new lambda.Function(this, 'Resource', {
            ...common,
            handler: 'index.handler',
            code: prebundledCode(code.directory, afterBundling),
          })
        : new nodejs.NodejsFunction(this, 'Resource', {
            ...common,
            entry: code.entry,
            handler: 'handler',
            projectRoot: code.projectRoot,
            depsLockFilePath: join(code.projectRoot, 'package-lock.json'),
            bundling: {
              ...BUNDLING,
              externalModules: [],
              forceDockerBundling: false,
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

type TaskCode =
  | { readonly kind: 'prebundled'; readonly directory: string }
  | { readonly kind: 'source'; readonly entry: string; readonly projectRoot: string };

/** The handler bundled ahead when there is one (or one was asked for), else the TypeScript source. */
function taskCode(props: TaskFunctionProps): TaskCode {
  const prebundled = join(props.prebundledRoot ?? PREBUNDLED_ROOT, props.task);
  if (existsSync(join(prebundled, 'index.js'))) return { kind: 'prebundled', directory: prebundled };
  if (props.prebundledRoot !== undefined) {
    throw new Error(
      `task "${props.task}" has no bundled handler: ${join(prebundled, 'index.js')} does not exist; run \`npm run build\` or fix prebundledRoot`,
    );
  }
  const projectRoot = props.projectRoot ?? PROJECT_ROOT;
  const entry = join(projectRoot, 'tasks', props.task, 'handler.ts');
  if (!existsSync(entry)) {
    throw new Error(
      `task "${props.task}" has no handler: ${relative(process.cwd(), entry) || entry} does not exist; create it (exporting "handler") or fix the task name`,
    );
  }
  return { kind: 'source', entry, projectRoot };
}

/**
 * A bundle made ahead as the function's code. afterBundling runs on a copy (CDK's local bundling,
 * never Docker), and the asset is named by the hash of that output: the same bundle and the same
 * added files give the same hash on every machine, and a changed config file a new one.
 */
function prebundledCode(directory: string, afterBundling: TaskFunctionProps['afterBundling']): lambda.Code {
  if (!afterBundling) return lambda.Code.fromAsset(directory);
  return lambda.Code.fromAsset(directory, {
    assetHashType: AssetHashType.OUTPUT,
    bundling: {
      // Never pulled: local bundling always succeeds or throws.
      image: DockerImage.fromRegistry('stepdeploy-local-bundling-only'),
      local: {
        tryBundle(outputDir: string): boolean {
          cpSync(directory, outputDir, { recursive: true });
          const commands = afterBundling(outputDir);
          if (commands.length > 0) execFileSync('bash', ['-c', commands.join(' && ')], { stdio: 'inherit' });
          return true;
        },
      },
    },
  });
}

/**
 * Bundles `tasks/<task>/handler.ts` into `<outDir>/index.js` with the settings
 * NodejsFunction uses at synth: `npm run build` does this for every task, so that the installed
 * package deploys these bundles (PREBUNDLED_ROOT) with no esbuild and no TypeScript.
 */
export async function bundleTask(task: string, outDir: string, projectRoot: string = PROJECT_ROOT): Promise<void> {
  const esbuild = require('esbuild') as typeof import('esbuild');
  await esbuild.build({
    entryPoints: [join(projectRoot, 'tasks', task, 'handler.ts')],
    bundle: true,
    platform: 'node',
    target: BUNDLING.target,
    outfile: join(outDir, 'index.js'),
    minify: BUNDLING.minify,
    sourcemap: BUNDLING.sourceMap,
    logLevel: 'warning',
  });
}
