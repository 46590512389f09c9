import { readFileSync } from 'node:fs';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { dirname, join, resolve } from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import { loadConfig, type PipelineConfig } from '../shared/config';
import type { Environment } from '../shared/env';
import { ConfigError } from '../shared/errors';
import { loadDefinition, type Substitutions } from '../workflows/definition';
import { projectTimeouts, type ProjectTimeouts } from '../infra/definition-timeouts';
import { codeBuildOperations, createApiHandler, stepFunctionsOperations } from './api';
import {
  BuildRegistry,
  InvalidInputException,
  startBuild,
  toCodeBuildApiBuild,
  type Build,
  type ProjectDefinition,
  type StartBuildParameters,
  type StartedBuild,
} from './codebuild';
import { LocalStateMachine, type ExecutionListener, type TaskContext, type TaskImplementation } from './engine';
import { LOCAL_APPROVAL_PATH, serveApprovalUrl } from './approval-url';
import { LocalApiError } from './errors';
import { readLogEvents } from './codebuild/log-events';
import { cloudWatchLogsOperations, type LocalLogStreams } from './logs';
import { adoptLegacyExecutions } from './executions';
import { type FunctionLogSink, functionLogsToStderr, withFunctionLogs } from './function-logs';
import { buildStateChange, executionStatusChange, type EventBridgeEvent } from './events';
import type { FaultPlan } from './faults';
import { prepareExampleRepositories } from './examples';
import { checkLocalRepositories } from './local-repositories';
import { artifactsBucketName, LOCAL_ACCOUNT, LOCAL_REGION, localStateMachineArn } from './names';
import { type LocalSlackActions, localSlackActions, SLACK_ACTIONS_PATH } from './slack-actions';
import { type LocalWebhooks, localWebhooks, WEBHOOK_PATH_PREFIX } from './webhooks';
import {
  closeServer,
  createLocalS3Handler,
  listenLocal,
  LOCAL_S3_CREDENTIALS,
  localS3Client,
  localS3Environment,
} from './s3';

/**
 * The embedded runtime: the deploy state machine from workflows/ with every Task mapped to its
 * local implementation — `lambda:invoke` to the same tasks/<name>/handler modules, in process;
 * `codebuild:startBuild.sync` to the local CodeBuild runner — S3 on s3rver, and the Step
 * Functions / CodeBuild / S3 APIs on one 127.0.0.1 endpoint. Data lives under `.stepdeploy/`.
 */

export interface LocalRuntimeOptions {
  /** The pipeline config file. */
  readonly configPath: string;
  /** Where executions, builds and S3 data live. @default `.stepdeploy` beside the config file */
  readonly home?: string;
  /** Port of the local AWS endpoint. @default 0 (ephemeral) */
  readonly port?: number;
  readonly listeners?: ReadonlyArray<ExecutionListener>;
  /** Every build log line. */
  readonly onBuildLog?: (line: string, buildId: string) => void;
  /** Every build's phase changes. */
  readonly onBuildProgress?: (build: Build) => void;
  /** Milliseconds before each retry instead of the definition's backoff (tests). */
  readonly retryIntervalMs?: number;
  /**
   * Receives the EventBridge events AWS would emit (execution status, build state).
   * @default the tasks/notify handler, which prints each message when no webhook is configured
   */
  readonly notify?: (event: EventBridgeEvent) => Promise<unknown>;
  /** Fail Task attempts or S3 requests on purpose (tests). */
  readonly faults?: FaultPlan;
  /** What the webhook receiver decides and why (`/webhooks/*`). @default nothing: the HTTP answers say it */
  readonly onWebhookLog?: (line: string) => void;
  /**
   * The projects' timeouts, instead of the definition's (infra/definition-timeouts.ts), e.g. a
   * tiny build timeout (tests). Fractions of a minute are taken locally. @default the definition's
   */
  readonly projectTimeouts?: Partial<Record<'fetch' | 'build' | 'deploy', Partial<ProjectTimeouts>>>;
  /**
   * Each line a function (task handler, EventBridge target) writes to `console`: its log group on AWS.
   * @default stderr, prefixed with the state (or function) name, so stdout stays the caller's
   */
  readonly onFunctionLog?: FunctionLogSink;
}

/** Wraps each resource so a fault plan can fail an attempt before the task runs. */
function withFaults(
  resources: Record<string, TaskImplementation>,
  faults: FaultPlan | undefined,
): Record<string, TaskImplementation> {
  const plan = faults?.task;
  if (!plan) return resources;
  const attempts = new Map<string, number>();
  return Object.fromEntries(
    Object.entries(resources).map(([resource, implementation]) => [
      resource,
      (parameters: unknown, context: TaskContext) => {
        const key = `${context.executionName}/${context.stateName}`;
        const attempt = (attempts.get(key) ?? 0) + 1;
        attempts.set(key, attempt);
        const fault = plan(context.stateName, attempt);
        return fault ? Promise.reject(fault) : implementation(parameters, context);
      },
    ]),
  );
}

/** A Lambda function, called in process with the invocation payload. */
type LambdaHandler = (event: unknown) => Promise<unknown>;

/** What every tasks/<task>/handler module exports: one instance of its function, made from its environment. */
interface HandlerModule {
  readonly createHandler: (env: Environment) => LambdaHandler;
}

const FUNCTIONS = {
  ValidateInputFunctionArn: 'validate-input',
  CombineSourcesFunctionArn: 'combine-sources',
  ResolveSourceFunctionArn: 'resolve-source',
  RunHookFunctionArn: 'run-hook',
  RecordDeploymentFunctionArn: 'record-deployment',
  DeployFunctionArn: 'deploy',
  AwaitApprovalFunctionArn: 'await-approval',
} as const;

const PROJECT_ROOT = resolve(__dirname, '..');

function localSubstitutions(config: PipelineConfig): Substitutions {
  const fn = (task: string): string =>
    `arn:aws:lambda:${LOCAL_REGION}:${LOCAL_ACCOUNT}:function:${config.pipeline}-${task}`;
  return {
    ArtifactsBucket: artifactsBucketName(config),
    ValidateInputFunctionArn: fn(FUNCTIONS.ValidateInputFunctionArn),
    CombineSourcesFunctionArn: fn(FUNCTIONS.CombineSourcesFunctionArn),
    ResolveSourceFunctionArn: fn(FUNCTIONS.ResolveSourceFunctionArn),
    RunHookFunctionArn: fn(FUNCTIONS.RunHookFunctionArn),
    RecordDeploymentFunctionArn: fn(FUNCTIONS.RecordDeploymentFunctionArn),
    DeployFunctionArn: fn(FUNCTIONS.DeployFunctionArn),
    AwaitApprovalFunctionArn: fn(FUNCTIONS.AwaitApprovalFunctionArn),
    FetchProjectName: `${config.pipeline}-fetch`,
    BuildProjectName: `${config.pipeline}-build`,
  };
}

/**
 * Where local builds get their project role's credentials (the local S3's fixed ones), as a
 * CodeBuild build gets them from the container credentials endpoint: never in the environment.
 */
const CONTAINER_CREDENTIALS_PATH = '/stepdeploy-local/container-credentials';

function containerCredentials(res: ServerResponse): void {
  const body = JSON.stringify({
    AccessKeyId: LOCAL_S3_CREDENTIALS.accessKeyId,
    SecretAccessKey: LOCAL_S3_CREDENTIALS.secretAccessKey,
    Expiration: new Date(Date.now() + 60 * 60 * 1000).toISOString(),
  });
  res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}

/**
 * This runtime's Lambda functions: each made by its module's createHandler at its first invocation
 * (a cold start) and kept, with its own environment — what Lambda and the stack set (infra/), the
 * SDK endpoints of this runtime — so that its clients and config are this runtime's, never
 * another's in the same process (process.env is not touched).
 */
function localFunctions(config: PipelineConfig, configPath: string, endpoint: string): (task: string) => LambdaHandler {
  const made = new Map<string, LambdaHandler>();
  return (task) => {
    let fn = made.get(task);
    if (fn === undefined) {
      const { createHandler } = require(`../tasks/${task}/handler`) as HandlerModule;
      fn = createHandler({
        AWS_REGION: LOCAL_REGION,
        AWS_DEFAULT_REGION: LOCAL_REGION,
        AWS_LAMBDA_FUNCTION_NAME: `${config.pipeline}-${task}`,
        // The local S3's credentials stand for the function role's; its endpoints for the AWS APIs.
        ...localS3Environment(endpoint),
        AWS_ENDPOINT_URL_SFN: endpoint,
        AWS_ENDPOINT_URL_CODEBUILD: endpoint,
        ARTIFACT_BUCKET: artifactsBucketName(config),
        DEPLOY_PROJECT_NAME: deployProjectName(config),
        STEPDEPLOY_CONFIG_PATH: configPath,
      });
      made.set(task, fn);
    }
    return fn;
  };
}

/** The deploy project is started by the Deploy task (tasks/deploy), not by the state machine. */
function deployProjectName(config: PipelineConfig): string {
  return `${config.pipeline}-deploy`;
}

/** The state that starts each of the pipeline's projects. */
function stateOfProject(config: PipelineConfig, project: string): string | undefined {
  const substitutions = localSubstitutions(config);
  if (project === substitutions.FetchProjectName) return 'FetchSource';
  if (project === substitutions.BuildProjectName) return 'BuildTemplates';
  if (project === deployProjectName(config)) return 'Deploy';
  return undefined;
}

/** CodeBuild's wire requests are camelCase; the local runner takes the Step Functions (PascalCase) spelling. */
function pascalCaseKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(pascalCaseKeys);
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(
    Object.entries(value).map(([k, v]) => [k.charAt(0).toUpperCase() + k.slice(1), pascalCaseKeys(v)]),
  );
}

/**
 * Lambda's invoke integration locally: the handler gets a JSON copy of the payload (as it would
 * over the wire), and a thrown error becomes the state's error the way Lambda reports it —
 * error name = errorType, cause = `{"errorType","errorMessage","trace"}`.
 */
function lambdaInvoke(functions: ReadonlyMap<string, () => LambdaHandler>, logs: FunctionLogSink): TaskImplementation {
  return async (parameters, context) => {
    const { FunctionName, Payload } = parameters as { FunctionName?: string; Payload?: unknown };
    const load = FunctionName === undefined ? undefined : functions.get(FunctionName);
    if (!load) {
      const err = new Error(
        JSON.stringify({ errorType: 'ResourceNotFoundException', errorMessage: `Function not found: ${FunctionName}` }),
      );
      err.name = 'Lambda.ResourceNotFoundException';
      throw err;
    }
    try {
      const functionName = FunctionName!.slice(FunctionName!.lastIndexOf(':') + 1);
      const result = await withFunctionLogs({ functionName, stateName: context.stateName }, logs, () =>
        load()(JSON.parse(JSON.stringify(Payload ?? {}))),
      );
      return {
        ExecutedVersion: '$LATEST',
        StatusCode: 200,
        Payload: result === undefined ? null : JSON.parse(JSON.stringify(result)),
      };
    } catch (thrown) {
      const error = thrown instanceof Error ? thrown : new Error(String(thrown));
      const mapped = new Error(
        JSON.stringify({ errorType: error.name, errorMessage: error.message, trace: (error.stack ?? '').split('\n') }),
      );
      mapped.name = error.name;
      throw mapped;
    }
  };
}

export class LocalRuntime {
  private constructor(
    readonly config: PipelineConfig,
    readonly configPath: string,
    readonly home: string,
    readonly machine: LocalStateMachine,
    readonly builds: BuildRegistry,
    readonly endpoint: string,
    readonly bucket: string,
    private readonly server: Server,
    private readonly s3: S3Client,
    private readonly events: EventDelivery,
    private readonly webhooks: LocalWebhooks,
    private readonly slackActions: LocalSlackActions,
    private readonly front: FrontHandlers,
    /** The example repositories this start made (the bundled example's sources, on first run). */
    readonly createdRepositories: ReadonlyArray<string>,
  ) {}

  /**
   * Puts a handler in front of the AWS APIs on this endpoint (the console of `local serve`): it
   * answers the requests that are its own and returns false for the others.
   */
  servePages(pages: (req: IncomingMessage, res: ServerResponse) => boolean): void {
    this.front.pages = pages;
  }

  static async start(options: LocalRuntimeOptions): Promise<LocalRuntime> {
    const configPath = resolve(options.configPath);
    const config = loadConfig(configPath);
    const home = resolve(options.home ?? join(dirname(configPath), '.stepdeploy'));
    const bucket = artifactsBucketName(config);
    const substitutions = localSubstitutions(config);
    const createdRepositories = prepareExampleRepositories(config, configPath, home);
    await checkLocalRepositories(config, configPath);
    // Read before anything listens: a missing buildspec fails the start, not the build that needs it.
    const buildspecs = readBuildspecs(config, configPath);

    const functionLogs = options.onFunctionLog ?? functionLogsToStderr;
    const s3Handler = await createLocalS3Handler({
      directory: join(home, 's3'),
      buckets: [bucket],
      fault: options.faults?.s3,
      conflict: options.faults?.conditionalWrite,
    });
    // The machine and the functions are made after the server listens (they need the endpoint), so route late.
    let api: ReturnType<typeof createApiHandler> | undefined;
    let webhooks: LocalWebhooks | undefined;
    let slackActions: LocalSlackActions | undefined;
    const front: FrontHandlers = {};
    const { server, endpoint } = await listenLocal((req, res) => {
      if (front.pages?.(req, res)) return;
      if (req.method === 'GET' && req.url === CONTAINER_CREDENTIALS_PATH) containerCredentials(res);
      else if (req.url === LOCAL_APPROVAL_PATH)
        void serveApprovalUrl(req, res, () => handlerOf('decide-approval') as never);
      else if (webhooks !== undefined && req.url?.startsWith(WEBHOOK_PATH_PREFIX)) webhooks.handle(req, res);
      else if (slackActions !== undefined && req.url === SLACK_ACTIONS_PATH) slackActions.handle(req, res);
      else (api ?? s3Handler)(req, res);
    }, options.port);

    const functionOf = localFunctions(config, configPath, endpoint);
    const handlerOf =
      (task: string): LambdaHandler =>
      (event) =>
        withFunctionLogs({ functionName: `${config.pipeline}-${task}` }, functionLogs, () => functionOf(task)(event));
    const s3 = localS3Client(endpoint, LOCAL_REGION);

    const functions = new Map<string, () => LambdaHandler>(
      Object.entries(FUNCTIONS).map(([key, task]) => [
        substitutions[key as keyof typeof FUNCTIONS],
        () => functionOf(task),
      ]),
    );
    // The EventBridge rules of the stack, as targets with their event patterns.
    const events = new EventDelivery([
      { target: options.notify ?? ((event) => handlerOf('notify')(event)), matches: () => true },
      {
        target: (event) => handlerOf('deploy-complete')(event),
        matches: (event) => deployCompleteRule(event, deployProjectName(config)),
      },
    ]);
    const registry = new BuildRegistry(home);
    const projects = localProjects(config, buildspecs, substitutions, home, endpoint, options.projectTimeouts);
    const buildDeps: BuildDeps = { projects, registry, s3, home, options, events };
    const codebuild: TaskImplementation = (parameters, context) =>
      runLocalBuild(parameters as StartBuildParameters, context, buildDeps);

    const executionsDirectory = join(home, 'executions', config.pipeline);
    adoptLegacyExecutions(join(home, 'executions'), executionsDirectory, localStateMachineArn(config.pipeline));
    const machine = new LocalStateMachine({
      name: config.pipeline,
      definition: loadDefinition(substitutions),
      region: LOCAL_REGION,
      account: LOCAL_ACCOUNT,
      directory: executionsDirectory,
      resources: withFaults(
        {
          'arn:aws:states:::lambda:invoke': lambdaInvoke(functions, functionLogs),
          'arn:aws:states:::lambda:invoke.waitForTaskToken': lambdaInvoke(functions, functionLogs),
          'arn:aws:states:::codebuild:startBuild.sync': codebuild,
        },
        options.faults,
      ),
      listeners: [
        ...(options.listeners ?? []),
        { onStatusChange: (execution) => events.send(executionStatusChange(execution, LOCAL_REGION, LOCAL_ACCOUNT)) },
      ],
      retryIntervalMs: options.retryIntervalMs,
    });
    api = createApiHandler(
      {
        stepFunctions: stepFunctionsOperations(machine),
        codeBuild: codeBuildOperations({
          batchGetBuilds: (ids) => {
            const { builds, buildsNotFound } = registry.batchGetBuilds(ids);
            return { builds: builds.map(toCodeBuildApiBuild), buildsNotFound };
          },
          startBuild: (request) => {
            const { idempotencyToken, ...parameters } = request;
            const token = typeof idempotencyToken === 'string' ? idempotencyToken : undefined;
            const fingerprint = JSON.stringify(parameters);
            const earlier =
              token === undefined
                ? undefined
                : asApiError(() => registry.buildForToken(token, fingerprint, Date.now()));
            if (earlier) return toCodeBuildApiBuild(earlier);
            const started = launchBuild(
              pascalCaseKeys(parameters) as StartBuildParameters,
              'stepdeploy-local-api',
              buildDeps,
            );
            if (token !== undefined) registry.rememberToken(token, fingerprint, started.build.Id, Date.now());
            // The outcome reaches its owner as a build state-change event, as on AWS.
            started.completion.catch(() => undefined);
            return toCodeBuildApiBuild(started.build);
          },
          stopBuild: (id) => toCodeBuildApiBuild(registry.stopBuild(id)),
          listBuildsForProject: ({ projectName, ...options }) => {
            if (!projects.has(projectName))
              throw new LocalApiError('ResourceNotFoundException', `Project cannot be found: ${projectName}`);
            return asApiError(() => registry.listBuildsForProject(projectName, options));
          },
        }),
        logs: cloudWatchLogsOperations(buildLogStreams(projects, registry), options.faults?.logs),
      },
      s3Handler,
    );
    webhooks = localWebhooks({
      config,
      configPath,
      home,
      endpoint,
      stateMachineArn: machine.stateMachineArn,
      region: LOCAL_REGION,
      log: options.onWebhookLog ?? (() => undefined),
    });
    slackActions = localSlackActions({
      config,
      home,
      endpoint,
      region: LOCAL_REGION,
      logs: functionLogs,
    });
    return new LocalRuntime(
      config,
      configPath,
      home,
      machine,
      registry,
      endpoint,
      bucket,
      server,
      s3,
      events,
      webhooks,
      slackActions,
      front,
      createdRepositories,
    );
  }

  /**
   * What a build's log lines are labelled with where several builds print at once: the state that
   * runs it, and for a fetch build its source (`FetchSource app`), as `watch` labels Map iterations.
   */
  buildLabel(buildId: string): string {
    const build = this.builds.get(buildId);
    const project = build?.ProjectName ?? buildId.split(':')[0]!;
    const state = stateOfProject(this.config, project);
    const source = build?.Environment.EnvironmentVariables.find((v) => v.Name === 'STEPDEPLOY_SOURCE')?.Value;
    return state === 'FetchSource' && source ? `${state} ${source}` : (state ?? project);
  }

  /** An S3 client for the local S3 (reading artifacts, deployments). */
  get s3Client(): S3Client {
    return this.s3;
  }

  async close(): Promise<void> {
    await this.machine.stopAll();
    await this.events.drain();
    this.webhooks.close();
    this.slackActions.close();
    this.s3.destroy();
    await closeServer(this.server);
  }
}

interface FrontHandlers {
  pages?: (req: IncomingMessage, res: ServerResponse) => boolean;
}

interface BuildDeps {
  readonly projects: ReadonlyMap<string, ProjectDefinition>;
  readonly registry: BuildRegistry;
  readonly s3: S3Client;
  readonly home: string;
  readonly options: LocalRuntimeOptions;
  readonly events: EventDelivery;
}

interface EventRule {
  readonly target: (event: EventBridgeEvent) => Promise<unknown>;
  readonly matches: (event: EventBridgeEvent) => boolean;
}

/** The runner's input errors, as the CodeBuild API answers them. */
function asApiError<T>(call: () => T): T {
  try {
    return call();
  } catch (err) {
    if (err instanceof InvalidInputException) throw new LocalApiError('InvalidInputException', err.message);
    throw err;
  }
}

/** The stack's rule for deploy-complete: the deploy project's builds ending, the executions ending badly. */
function deployCompleteRule(event: EventBridgeEvent, deployProject: string): boolean {
  if (event['detail-type'] === 'CodeBuild Build State Change') {
    return (
      event.detail['project-name'] === deployProject &&
      ['SUCCEEDED', 'FAILED', 'FAULT', 'STOPPED', 'TIMED_OUT'].includes(String(event.detail['build-status']))
    );
  }
  return ['FAILED', 'ABORTED', 'TIMED_OUT'].includes(String(event.detail.status));
}

/**
 * EventBridge's delivery, locally: asynchronous, never in the execution's way, and a failing
 * target is logged, never propagated (a Slack outage must not fail a deployment).
 */
class EventDelivery {
  private readonly pending = new Set<Promise<unknown>>();

  constructor(private readonly rules: ReadonlyArray<EventRule>) {}

  send(event: EventBridgeEvent): void {
    for (const rule of this.rules) {
      if (!rule.matches(event)) continue;
      const delivery = Promise.resolve()
        .then(() => rule.target(event))
        .catch((err: unknown) =>
          console.error(`event delivery failed (${event['detail-type']}): ${(err as Error)?.message ?? String(err)}`),
        )
        .finally(() => this.pending.delete(delivery));
      this.pending.add(delivery);
    }
  }

  async drain(): Promise<void> {
    while (this.pending.size > 0) await Promise.all([...this.pending]);
  }
}

/** Starts a local build; its state changes go out as EventBridge events, as CodeBuild's do. */
function launchBuild(parameters: StartBuildParameters, initiator: string, deps: BuildDeps): StartedBuild {
  const project = deps.projects.get(parameters.ProjectName);
  if (!project) {
    throw new LocalApiError('ResourceNotFoundException', `Project cannot be found: ${parameters.ProjectName}`);
  }
  let lastStatus: string | undefined;
  return startBuild(
    { ...parameters, project },
    {
      s3: deps.s3,
      root: deps.home,
      registry: deps.registry,
      region: LOCAL_REGION,
      accountId: LOCAL_ACCOUNT,
      initiator,
      onLog: deps.options.onBuildLog,
      onProgress: (build) => {
        // CodeBuild emits a state-change event when a build starts and when it ends.
        if (build.BuildStatus !== lastStatus) {
          lastStatus = build.BuildStatus;
          deps.events.send(buildStateChange(build, LOCAL_REGION, LOCAL_ACCOUNT));
        }
        deps.options.onBuildProgress?.(build);
      },
    },
  );
}

/** `codebuild:startBuild.sync`: starts the build, stops it when the execution stops, resolves at its end. */
async function runLocalBuild(
  parameters: StartBuildParameters,
  context: TaskContext,
  deps: BuildDeps,
): Promise<unknown> {
  const started = launchBuild(parameters, `states/${context.executionName}`, deps);
  context.submitted({ Build: started.build });
  const stop = (): void => {
    deps.registry.stopBuild(started.build.Id);
  };
  context.signal.addEventListener('abort', stop, { once: true });
  try {
    return await started.completion;
  } finally {
    context.signal.removeEventListener('abort', stop);
  }
}

const CODEBUILD_LOG_GROUP = '/aws/codebuild/';

/** Each project's builds log to `/aws/codebuild/<project>`, one stream per build (the UUID of its id), as on AWS. */
function buildLogStreams(projects: ReadonlyMap<string, ProjectDefinition>, registry: BuildRegistry): LocalLogStreams {
  const projectOf = (group: string): string | undefined =>
    group.startsWith(CODEBUILD_LOG_GROUP) ? group.slice(CODEBUILD_LOG_GROUP.length) : undefined;
  return {
    hasGroup: (group) => projects.has(projectOf(group) ?? ''),
    events: (group, stream) => {
      const id = `${projectOf(group)}:${stream}`;
      const build = registry.get(id);
      return build ? readLogEvents(registry.buildDir(id), build.StartTime) : undefined;
    },
  };
}

interface Buildspecs {
  readonly fetch: string;
  readonly build: string;
  readonly deploy: string;
}

/**
 * The fetch buildspec is stepdeploy's own (beside this code, in the repository and in the package);
 * build and deploy are the config's, relative to its folder, as the CDK stack reads them.
 */
function readBuildspecs(config: PipelineConfig, configPath: string): Buildspecs {
  const configDir = dirname(configPath);
  const read = (path: string, setting: string): string => {
    try {
      return readFileSync(path, 'utf8');
    } catch (err) {
      throw new ConfigError(
        `${setting} in ${configPath}: cannot read buildspec ${path} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); create it (\`stepdeploy init\` can write the default buildspecs) or point ${setting} at an existing file`,
        { cause: err },
      );
    }
  };
  return {
    fetch: readFileSync(join(PROJECT_ROOT, 'buildspecs', 'fetch-source.yml'), 'utf8'),
    build: read(resolve(configDir, config.buildspecs.build), 'buildspecs.build'),
    deploy: read(resolve(configDir, config.buildspecs.deploy), 'buildspecs.deploy'),
  };
}

/** The three CodeBuild projects the CDK stack creates, with the same buildspecs. */
function localProjects(
  config: PipelineConfig,
  buildspecs: Buildspecs,
  substitutions: Substitutions,
  home: string,
  endpoint: string,
  overrides: LocalRuntimeOptions['projectTimeouts'] = {},
): Map<string, ProjectDefinition> {
  // The stack's timeouts, from the one definition: a build that runs out ends TIMED_OUT as on AWS.
  const definition = projectTimeouts();
  const limits = (project: 'fetch' | 'build' | 'deploy'): ProjectTimeouts => ({
    ...definition[project],
    ...overrides[project],
  });
  // Builds on this machine may write to the example's local "accounts" under .stepdeploy/.
  const environmentVariables = [{ Name: 'STEPDEPLOY_LOCAL_HOME', Value: home, Type: 'PLAINTEXT' }];
  const projects: ProjectDefinition[] = [
    {
      name: substitutions.FetchProjectName,
      buildspec: buildspecs.fetch,
      artifacts: {
        Type: 'S3',
        Location: substitutions.ArtifactsBucket,
        Packaging: 'ZIP',
        NamespaceType: 'NONE',
        OverrideArtifactName: true,
      },
      environmentVariables,
      ...limits('fetch'),
    },
    {
      name: substitutions.BuildProjectName,
      buildspec: buildspecs.build,
      artifacts: { Type: 'S3', Location: substitutions.ArtifactsBucket, Packaging: 'ZIP', NamespaceType: 'NONE' },
      environmentVariables,
      ...limits('build'),
    },
    {
      name: deployProjectName(config),
      buildspec: buildspecs.deploy,
      // The deploy project's role reads the lease (the build's fence): the local S3, with
      // credentials from a container credentials endpoint, as CodeBuild gives a build its role.
      environmentVariables: [
        ...environmentVariables,
        { Name: 'AWS_ENDPOINT_URL_S3', Value: endpoint, Type: 'PLAINTEXT' },
        {
          Name: 'AWS_CONTAINER_CREDENTIALS_FULL_URI',
          Value: `${endpoint}${CONTAINER_CREDENTIALS_PATH}`,
          Type: 'PLAINTEXT',
        },
      ],
      ...limits('deploy'),
    },
  ];
  return new Map(projects.map((p) => [p.name, p]));
}
