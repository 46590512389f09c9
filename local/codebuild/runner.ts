import { randomUUID } from 'node:crypto';
import { closeSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { S3Client } from '@aws-sdk/client-s3';
import {
  artifactTarget,
  collectArtifactFiles,
  expandArtifactName,
  referencedVariables,
  uploadArtifacts,
} from './artifacts';
import { parseBuildspec, type Buildspec, type PhaseName, type PhaseSpec } from './buildspec';
import { BuildFailedError, InvalidInputException, ResourceNotFoundException } from './errors';
import { logEventLine, logEventsFile } from './log-events';
import { BuildRegistry } from './registry';
import { ShellSession } from './shell';
import { GIT_SOURCE_TYPES, fetchGitSource, fetchS3Source } from './sources';
import { CONNECTION_ARN, SOURCE_AUTH_OVERRIDE_TYPES } from '../../shared/config';
import type {
  ArtifactsSettings,
  Build,
  BuildPhase,
  BuildRequest,
  BuildStatus,
  EnvironmentVariable,
  PhaseContext,
  PhaseType,
  ProjectDefinition,
  SourceAuth,
  SourceType,
  StartBuildParameters,
  StartBuildSyncOutput,
} from './types';

export interface RunnerDeps {
  readonly s3: S3Client;
  /** The local state root (`.stepdeploy`): builds live under `<root>/builds/<build id>/`. */
  readonly root: string;
  /** Share one registry between builds so StopBuild and BatchGetBuilds see them all. @default a new registry on root */
  readonly registry?: BuildRegistry;
  /** @default 'us-east-1' */
  readonly region?: string;
  /** Account id in ARNs. @default '000000000000' */
  readonly accountId?: string;
  /** CODEBUILD_INITIATOR and Build.Initiator. @default 'stepdeploy-local' */
  readonly initiator?: string;
  /** Every log line, as it is written to `<build dir>/build.log`. */
  readonly onLog?: (line: string, buildId: string) => void;
  /** A copy of the build at every phase change (for a live view). */
  readonly onProgress?: (build: Build) => void;
  /** @default () => new Date() */
  readonly clock?: () => Date;
  /** PATH given to builds. @default the parent's PATH */
  readonly path?: string;
}

export interface StartedBuild {
  /** The build as StartBuild returns it (SUBMITTED). */
  readonly build: Build;
  /** Settles when the build ends: the `.sync` result, or a BuildFailedError (`States.TaskFailed`). */
  readonly completion: Promise<StartBuildSyncOutput>;
}

const COMMAND_PHASES: ReadonlyArray<readonly [PhaseName, PhaseType]> = [
  ['install', 'INSTALL'],
  ['pre_build', 'PRE_BUILD'],
  ['build', 'BUILD'],
  ['post_build', 'POST_BUILD'],
];

/** Environment passed through from the parent: nothing else is (no credentials, no tokens). */
const INHERITED = ['LANG', 'LC_ALL', 'LC_CTYPE', 'TZ', 'USER', 'LOGNAME'] as const;

/** `codebuild:startBuild.sync` locally: runs the build to its end. */
export async function runBuild(request: BuildRequest, deps: RunnerDeps): Promise<StartBuildSyncOutput> {
  return startBuild(request, deps).completion;
}

/**
 * The local handler for `arn:aws:states:::codebuild:startBuild.sync`: takes the state's
 * Parameters, finds the project by ProjectName and runs the build to its end.
 */
export function makeStartBuildSyncHandler(
  projects: Readonly<Record<string, ProjectDefinition>>,
  deps: RunnerDeps,
): (parameters: StartBuildParameters) => Promise<StartBuildSyncOutput> {
  return async (parameters) => {
    const project = projects[parameters.ProjectName];
    if (!project) {
      throw new ResourceNotFoundException(
        `build project ${JSON.stringify(parameters.ProjectName)} is not defined locally (known: ${Object.keys(projects).join(', ')})`,
      );
    }
    return runBuild({ ...parameters, project }, deps);
  };
}

/** StartBuild: validates the request, then runs the build in the background. */
export function startBuild(request: BuildRequest, deps: RunnerDeps): StartedBuild {
  validateRequest(request);
  const run = new LocalBuild(request, deps);
  return { build: run.snapshot(), completion: run.run() };
}

class Aborted extends Error {
  constructor(readonly status: 'TIMED_OUT' | 'STOPPED') {
    super(status);
    this.name = 'Aborted';
  }
}

class LocalBuild {
  private readonly registry: BuildRegistry;
  private readonly clock: () => Date;
  private readonly build: Build;
  private readonly uuid = randomUUID();
  private readonly dir: string;
  private readonly srcDir: string;
  private readonly sourceType: SourceType;
  private readonly sourceLocation?: string;
  private readonly artifacts: ArtifactsSettings;
  private readonly timeoutMs: number;
  private logFd: number | undefined;
  private eventsFd: number | undefined;
  private phase: BuildPhase | undefined;
  private session: ShellSession | undefined;
  private abortStatus: 'TIMED_OUT' | 'STOPPED' | undefined;
  private abortWaiters: Array<(a: Aborted) => void> = [];
  private failed = false;

  constructor(
    private readonly request: BuildRequest,
    private readonly deps: RunnerDeps,
  ) {
    this.registry = deps.registry ?? new BuildRegistry(deps.root);
    this.clock = deps.clock ?? (() => new Date());
    const project = request.project;
    const id = `${project.name}:${this.uuid}`;
    this.dir = this.registry.buildDir(id);
    this.srcDir = join(this.dir, 'src');
    this.sourceType = request.SourceTypeOverride ?? project.source?.type ?? 'NO_SOURCE';
    this.sourceLocation = request.SourceLocationOverride ?? project.source?.location;
    this.artifacts = request.ArtifactsOverride ?? project.artifacts ?? { Type: 'NO_ARTIFACTS' };
    const minutes = request.TimeoutInMinutesOverride ?? project.timeoutInMinutes ?? 60;
    this.timeoutMs = minutes * 60_000;
    const region = deps.region ?? 'us-east-1';
    const account = deps.accountId ?? '000000000000';
    const now = this.now();
    this.build = {
      Id: id,
      Arn: `arn:aws:codebuild:${region}:${account}:build/${id}`,
      BuildNumber: this.registry.nextBuildNumber(project.name),
      StartTime: now,
      CurrentPhase: 'SUBMITTED',
      BuildStatus: 'IN_PROGRESS',
      BuildComplete: false,
      ProjectName: project.name,
      Initiator: deps.initiator ?? 'stepdeploy-local',
      ...(request.SourceVersion !== undefined ? { SourceVersion: request.SourceVersion } : {}),
      Source: {
        Type: this.sourceType,
        ...(this.sourceLocation !== undefined ? { Location: this.sourceLocation } : {}),
        // Reported as BatchGetBuilds does; a local git source needs no credential to be cloned.
        ...(request.SourceAuthOverride !== undefined ? { Auth: { ...request.SourceAuthOverride } } : {}),
      },
      Phases: [{ PhaseType: 'SUBMITTED', StartTime: now }],
      Environment: {
        Type: 'LINUX_CONTAINER',
        Image: 'stepdeploy/local',
        ComputeType: 'BUILD_GENERAL1_SMALL',
        PrivilegedMode: false,
        EnvironmentVariables: [
          ...(project.environmentVariables ?? []),
          ...(request.EnvironmentVariablesOverride ?? []),
        ].map((v) => ({ Name: v.Name, Type: v.Type ?? 'PLAINTEXT', Value: v.Value })),
      },
      Logs: {
        GroupName: `/aws/codebuild/${project.name}`,
        StreamName: this.uuid,
        DeepLink: pathToFileURL(join(this.dir, 'build.log')).href,
      },
      TimeoutInMinutes: minutes,
      QueuedTimeoutInMinutes: request.QueuedTimeoutInMinutesOverride ?? project.queuedTimeoutInMinutes ?? 480,
    };
    this.phase = this.build.Phases[0];
    this.registry.markRunning(id, () => this.abort('STOPPED'));
    this.publish();
  }

  snapshot(): Build {
    return structuredClone(this.build);
  }

  async run(): Promise<StartBuildSyncOutput> {
    const timer = setTimeout(() => this.abort('TIMED_OUT'), this.timeoutMs);
    try {
      await this.lifecycle();
    } catch (error) {
      if (error instanceof Aborted) this.endPhase(error.status, abortContext(error.status));
      else {
        // A fault of the runner itself, not of the build's commands.
        this.container(`Build fault: ${(error as Error).stack ?? String(error)}`);
        this.endPhase('FAULT', [{ StatusCode: 'INTERNAL_ERROR', Message: (error as Error).message }]);
        this.build.BuildStatus = 'FAULT';
      }
      this.failed = true;
    } finally {
      clearTimeout(timer);
    }
    await this.finalize();
    this.registry.markDone(this.build.Id);
    const result = this.snapshot();
    if (result.BuildStatus !== 'SUCCEEDED') throw new BuildFailedError(result);
    return { Build: result };
  }

  private async lifecycle(): Promise<void> {
    this.endPhase('SUCCEEDED');
    this.startPhase('QUEUED');
    this.endPhase('SUCCEEDED');

    this.startPhase('PROVISIONING');
    for (const d of ['src', 'home', 'tmp', 'driver']) mkdirSync(join(this.dir, d), { recursive: true });
    this.logFd = openSync(join(this.dir, 'build.log'), 'a');
    this.eventsFd = openSync(logEventsFile(this.dir), 'a');
    this.container(`Running on stepdeploy local CodeBuild, build ${this.build.Id}`);
    this.endPhase('SUCCEEDED');

    this.startPhase('DOWNLOAD_SOURCE');
    let spec: Buildspec;
    try {
      spec = parseBuildspec(this.request.project.buildspec);
    } catch (error) {
      this.failPhase('YAML_FILE_ERROR', (error as Error).message);
      return;
    }
    try {
      const fetched = await this.race(this.fetchSource());
      if (fetched.resolvedSourceVersion !== undefined) this.build.ResolvedSourceVersion = fetched.resolvedSourceVersion;
    } catch (error) {
      if (error instanceof Aborted) throw error;
      this.failPhase('CLIENT_ERROR', (error as Error).message);
      return;
    }
    this.container(`CODEBUILD_SRC_DIR=${this.srcDir}`);
    const defined = COMMAND_PHASES.filter(([name]) => spec.phases[name] !== undefined);
    this.container(`Phases found in YAML: ${defined.length}`);
    for (const [name, type] of defined) this.container(` ${type}: ${spec.phases[name]?.commands.length ?? 0} commands`);
    this.endPhase('SUCCEEDED');

    const session = new ShellSession({
      shell: spec.shell,
      cwd: this.srcDir,
      env: this.environment(spec),
      driverDir: join(this.dir, 'driver'),
      onLine: (line) => this.log(line),
    });
    this.session = session;

    let upload = true;
    let sessionLost = false;
    for (const [name, type] of COMMAND_PHASES) {
      const phaseSpec = spec.phases[name];
      const outcome = await this.runPhase(type, phaseSpec);
      if (outcome === 'SUCCEEDED') continue;
      this.failed = true;
      if (outcome === 'SESSION_LOST') {
        sessionLost = true;
        upload = false;
        break;
      }
      await this.race(session.setVariable('CODEBUILD_BUILD_SUCCEEDING', '0'));
      const onFailure = phaseSpec?.onFailure;
      if (onFailure === 'CONTINUE') continue;
      // Build phase transitions: a failed INSTALL or PRE_BUILD (or ABORT) goes straight to
      // FINALIZING; a failed BUILD goes on to POST_BUILD; UPLOAD_ARTIFACTS is attempted after it.
      if (onFailure === 'ABORT' || type === 'INSTALL' || type === 'PRE_BUILD') {
        upload = false;
        break;
      }
    }

    const finalVars = sessionLost ? {} : await this.race(session.readVariables(this.variablesToRead(spec)));
    const exported = spec.exportedVariables.filter((n) => finalVars[n] !== undefined);
    if (exported.length > 0 || spec.exportedVariables.length > 0) {
      this.build.ExportedEnvironmentVariables = exported.map((n) => ({ Name: n, Value: finalVars[n] as string }));
    }
    if (upload) await this.uploadPhase(spec, finalVars);
  }

  private async runPhase(
    type: PhaseType,
    spec: PhaseSpec | undefined,
  ): Promise<'SUCCEEDED' | 'FAILED' | 'SESSION_LOST'> {
    this.startPhase(type);
    this.container(`Entering phase ${type}`);
    let failure: PhaseContext | undefined;
    const runAll = async (commands: ReadonlyArray<string>): Promise<boolean> => {
      for (const command of commands) {
        this.container(`Running command ${command}`);
        const outcome = await this.race((this.session as ShellSession).run(command));
        if ('ended' in outcome) {
          const how = outcome.ended.signal ? `signal ${outcome.ended.signal}` : `exit code ${outcome.ended.code}`;
          this.container(`The build's shell ended unexpectedly (${how}) while running ${command}`);
          failure = {
            StatusCode: 'COMMAND_EXECUTION_ERROR',
            Message: `Error while executing command: ${command}. Reason: the build's shell ended (${how})`,
          };
          return false;
        }
        if (outcome.exitCode !== 0) {
          this.container(`Command did not exit successfully ${command} exit status ${outcome.exitCode}`);
          failure ??= {
            StatusCode: 'COMMAND_EXECUTION_ERROR',
            Message: `Error while executing command: ${command}. Reason: exit status ${outcome.exitCode}`,
          };
          return true;
        }
      }
      return true;
    };
    if (spec) {
      const alive = (await runAll(spec.commands)) && (await runAll(spec.finally));
      if (!alive) {
        this.endPhase('FAILED', [failure as PhaseContext]);
        return 'SESSION_LOST';
      }
    }
    this.endPhase(failure ? 'FAILED' : 'SUCCEEDED', failure ? [failure] : undefined);
    return failure ? 'FAILED' : 'SUCCEEDED';
  }

  private async uploadPhase(spec: Buildspec, vars: Record<string, string>): Promise<void> {
    this.startPhase('UPLOAD_ARTIFACTS');
    const artifacts = spec.artifacts;
    if (!artifacts || this.artifacts.Type === 'NO_ARTIFACTS') {
      this.endPhase('SUCCEEDED');
      return;
    }
    try {
      const name =
        this.artifacts.OverrideArtifactName && artifacts.name !== undefined
          ? expandArtifactName(artifacts.name, vars)
          : (this.artifacts.Name ?? '');
      const target = artifactTarget(this.artifacts, name, this.uuid);
      const files = collectArtifactFiles(this.srcDir, artifacts);
      this.container(`Uploading ${files.length} files to s3://${target.bucket}/${target.key} (${target.packaging})`);
      await this.race(uploadArtifacts(this.deps.s3, target, files, join(this.dir, 'artifact.zip')));
      this.build.Artifacts = {
        Location: `arn:aws:s3:::${target.bucket}/${target.key}`,
        ...(this.artifacts.OverrideArtifactName ? { OverrideArtifactName: true } : {}),
      };
      this.endPhase('SUCCEEDED');
    } catch (error) {
      if (error instanceof Aborted) throw error;
      this.failed = true;
      this.failPhase('CLIENT_ERROR', (error as Error).message);
    }
  }

  private async finalize(): Promise<void> {
    if (this.phase?.PhaseStatus === undefined) this.endPhase(this.abortStatus ?? 'FAILED');
    this.startPhase('FINALIZING');
    if (this.session) await this.session.close();
    this.endPhase('SUCCEEDED');
    this.startPhase('COMPLETED');
    if (this.build.BuildStatus === 'IN_PROGRESS') {
      this.build.BuildStatus = this.abortStatus ?? (this.failed ? 'FAILED' : 'SUCCEEDED');
    }
    this.build.EndTime = this.now();
    this.build.BuildComplete = true;
    this.container(`Build ${this.build.Id} ${this.build.BuildStatus}`);
    this.publish();
    if (this.logFd !== undefined) closeSync(this.logFd);
    if (this.eventsFd !== undefined) closeSync(this.eventsFd);
    this.logFd = this.eventsFd = undefined;
  }

  private async fetchSource(): Promise<{ resolvedSourceVersion?: string }> {
    const log = (line: string): void => this.container(line);
    const type = this.sourceType;
    if (type === 'NO_SOURCE') return {};
    const location = this.sourceLocation as string;
    if (type === 'S3') {
      return fetchS3Source({
        s3: this.deps.s3,
        location,
        srcDir: this.srcDir,
        downloadPath: join(this.dir, 'source.zip'),
        log,
      });
    }
    return fetchGitSource({
      type,
      location,
      ...(this.request.SourceVersion !== undefined ? { version: this.request.SourceVersion } : {}),
      srcDir: this.srcDir,
      env: {
        PATH: this.deps.path ?? process.env.PATH ?? '/usr/bin:/bin',
        HOME: join(this.dir, 'home'),
        LANG: 'C',
        GIT_TERMINAL_PROMPT: '0',
        GIT_CONFIG_NOSYSTEM: '1',
        GIT_CONFIG_GLOBAL: '/dev/null',
      },
      log,
    });
  }

  /**
   * The build's environment, whitelisted: nothing of the parent's but PATH and locale, a
   * per-build HOME and TMPDIR. Precedence as CodeBuild documents: StartBuild override > project
   * > buildspec env.variables; the CODEBUILD_ variables are the runner's.
   */
  private environment(spec: Buildspec): Record<string, string> {
    const region = this.deps.region ?? 'us-east-1';
    const base: Record<string, string> = {
      PATH: this.deps.path ?? process.env.PATH ?? '/usr/bin:/bin',
      HOME: join(this.dir, 'home'),
      TMPDIR: join(this.dir, 'tmp'),
      SHELL: spec.shell === 'bash' ? 'bash' : '/bin/sh',
      AWS_REGION: region,
      AWS_DEFAULT_REGION: region,
    };
    for (const name of INHERITED) {
      const value = process.env[name];
      if (value !== undefined) base[name] = value;
    }
    const fromList = (list: ReadonlyArray<EnvironmentVariable> | undefined): Record<string, string> =>
      Object.fromEntries((list ?? []).map((v) => [v.Name, v.Value]));
    const b = this.build;
    const codebuild: Record<string, string> = {
      CODEBUILD_BUILD_ID: b.Id,
      CODEBUILD_BUILD_ARN: b.Arn,
      CODEBUILD_BUILD_NUMBER: String(b.BuildNumber),
      CODEBUILD_BUILD_IMAGE: b.Environment.Image,
      CODEBUILD_BUILD_SUCCEEDING: '1',
      CODEBUILD_INITIATOR: b.Initiator,
      CODEBUILD_SRC_DIR: this.srcDir,
      CODEBUILD_START_TIME: String(b.StartTime),
      CODEBUILD_LOG_PATH: b.Logs.StreamName,
    };
    if (b.ResolvedSourceVersion !== undefined) codebuild.CODEBUILD_RESOLVED_SOURCE_VERSION = b.ResolvedSourceVersion;
    if (b.SourceVersion !== undefined) codebuild.CODEBUILD_SOURCE_VERSION = b.SourceVersion;
    if (this.sourceLocation !== undefined) codebuild.CODEBUILD_SOURCE_REPO_URL = this.sourceLocation;
    return {
      ...base,
      ...spec.variables,
      ...fromList(this.request.project.environmentVariables),
      ...fromList(this.request.EnvironmentVariablesOverride),
      ...codebuild,
    };
  }

  private variablesToRead(spec: Buildspec): string[] {
    const names = new Set<string>(spec.exportedVariables);
    if (spec.artifacts?.name !== undefined) for (const n of referencedVariables(spec.artifacts.name)) names.add(n);
    return [...names];
  }

  private abort(status: 'TIMED_OUT' | 'STOPPED'): void {
    if (this.abortStatus || this.build.BuildComplete) return;
    this.abortStatus = status;
    this.container(status === 'TIMED_OUT' ? 'Build timed out' : 'Build stopped');
    this.session?.kill('SIGKILL');
    const error = new Aborted(status);
    for (const w of this.abortWaiters.splice(0)) w(error);
  }

  /** Runs a step unless the build is timed out or stopped first. */
  private race<T>(step: Promise<T>): Promise<T> {
    if (this.abortStatus) return Promise.reject(new Aborted(this.abortStatus));
    return new Promise<T>((resolve, reject) => {
      this.abortWaiters.push(reject);
      step.then(resolve, reject).finally(() => {
        this.abortWaiters = this.abortWaiters.filter((w) => w !== reject);
      });
    });
  }

  private startPhase(type: PhaseType): void {
    this.phase = { PhaseType: type, StartTime: this.now() };
    this.build.Phases.push(this.phase);
    this.build.CurrentPhase = type;
    this.publish();
  }

  private endPhase(status: Exclude<BuildStatus, 'IN_PROGRESS'>, contexts?: PhaseContext[]): void {
    const phase = this.phase;
    if (!phase || phase.PhaseStatus !== undefined) return;
    phase.PhaseStatus = status;
    phase.EndTime = this.now();
    phase.DurationInSeconds = Math.floor((phase.EndTime - phase.StartTime) / 1000);
    if (phase.PhaseType !== 'SUBMITTED' && phase.PhaseType !== 'QUEUED') {
      phase.Contexts = contexts ?? [{ StatusCode: '', Message: '' }];
      this.container(`Phase complete: ${phase.PhaseType} State: ${status}`);
      const c = phase.Contexts[0] as PhaseContext;
      this.container(`Phase context status code: ${c.StatusCode} Message: ${c.Message}`);
    }
    this.publish();
  }

  private failPhase(code: string, message: string): void {
    this.failed = true;
    for (const line of message.split('\n')) this.container(line);
    this.endPhase('FAILED', [{ StatusCode: code, Message: message }]);
  }

  private container(message: string): void {
    this.log(`[Container] ${formatTime(this.clock())} ${message}`);
  }

  private log(line: string): void {
    if (this.logFd !== undefined) writeSync(this.logFd, `${line}\n`);
    if (this.eventsFd !== undefined) writeSync(this.eventsFd, logEventLine({ timestamp: this.now(), message: line }));
    this.deps.onLog?.(line, this.build.Id);
  }

  private publish(): void {
    this.registry.save(this.build);
    this.deps.onProgress?.(this.snapshot());
  }

  private now(): number {
    return this.clock().getTime();
  }
}

function abortContext(status: 'TIMED_OUT' | 'STOPPED'): PhaseContext[] {
  return status === 'TIMED_OUT'
    ? [{ StatusCode: 'BUILD_TIMED_OUT', Message: 'Build has timed out. ' }]
    : [{ StatusCode: 'BUILD_STOPPED', Message: 'Build was stopped. ' }];
}

function formatTime(d: Date): string {
  const p = (n: number, w = 2): string => String(n).padStart(w, '0');
  return (
    `${d.getUTCFullYear()}/${p(d.getUTCMonth() + 1)}/${p(d.getUTCDate())} ` +
    `${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())}.${p(d.getUTCMilliseconds(), 3)}`
  );
}

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const SOURCE_TYPES: ReadonlyArray<SourceType> = [...GIT_SOURCE_TYPES, 'S3', 'NO_SOURCE'];

const SOURCE_AUTH_TYPES = ['OAUTH', 'CODECONNECTIONS', 'SECRETS_MANAGER'];

/**
 * StartBuild's SourceAuthOverride: one of CodeBuild's SourceAuth types, a connection ARN for
 * CODECONNECTIONS, and only on the sources CodeBuild applies it to ("BitBucket, GitHub, GitLab, or
 * GitLab Self Managed"); refused for any other rather than silently not used.
 */
function sourceAuthProblems(auth: SourceAuth | undefined, type: SourceType): string[] {
  if (auth === undefined) return [];
  const problems: string[] = [];
  if (!SOURCE_AUTH_TYPES.includes(auth.Type)) {
    problems.push(`SourceAuthOverride.Type ${JSON.stringify(auth.Type)} is not one of ${SOURCE_AUTH_TYPES.join(', ')}`);
  }
  if (auth.Type === 'CODECONNECTIONS' && !CONNECTION_ARN.test(auth.Resource ?? '')) {
    problems.push(
      `SourceAuthOverride.Resource ${JSON.stringify(auth.Resource ?? null)} is not a CodeConnections connection ARN`,
    );
  }
  if (!(SOURCE_AUTH_OVERRIDE_TYPES as ReadonlySet<string>).has(type)) {
    problems.push(
      `SourceAuthOverride applies to ${[...SOURCE_AUTH_OVERRIDE_TYPES].join(', ')} sources only, not to a ${type} source`,
    );
  }
  return problems;
}

/** What CodeBuild's StartBuild itself refuses, refused before any build exists. */
function validateRequest(request: BuildRequest): void {
  const problems: string[] = [];
  const project = request.project;
  if (request.ProjectName !== project.name) {
    problems.push(
      `ProjectName ${JSON.stringify(request.ProjectName)} does not match the project definition ${JSON.stringify(project.name)}`,
    );
  }
  const type = request.SourceTypeOverride ?? project.source?.type ?? 'NO_SOURCE';
  if (!SOURCE_TYPES.includes(type))
    problems.push(`SourceTypeOverride ${JSON.stringify(type)} is not one of ${SOURCE_TYPES.join(', ')}`);
  const location = request.SourceLocationOverride ?? project.source?.location;
  if (type !== 'NO_SOURCE' && (location === undefined || location === '')) {
    problems.push(`a ${type} source needs a location (SourceLocationOverride or the project's source location)`);
  }
  problems.push(...sourceAuthProblems(request.SourceAuthOverride, type));
  const checkVars = (list: ReadonlyArray<EnvironmentVariable> | undefined, what: string): void => {
    (list ?? []).forEach((v, i) => {
      if (!ENV_NAME.test(v.Name))
        problems.push(`${what}[${i}].Name ${JSON.stringify(v.Name)} is not a valid variable name`);
      else if (v.Name.startsWith('CODEBUILD_'))
        problems.push(`${what}[${i}].Name ${v.Name}: the CODEBUILD_ prefix is reserved`);
      if ((v.Type ?? 'PLAINTEXT') !== 'PLAINTEXT') {
        problems.push(`${what}[${i}] (${v.Name}) has Type ${v.Type}: only PLAINTEXT variables run locally`);
      }
      if (typeof v.Value !== 'string') problems.push(`${what}[${i}].Value (${v.Name}) must be a string`);
    });
  };
  checkVars(project.environmentVariables, 'project environmentVariables');
  checkVars(request.EnvironmentVariablesOverride, 'EnvironmentVariablesOverride');
  const artifacts = request.ArtifactsOverride ?? project.artifacts;
  if (artifacts) {
    if (artifacts.Type !== 'S3' && artifacts.Type !== 'NO_ARTIFACTS')
      problems.push(`artifacts Type ${JSON.stringify(artifacts.Type)} is not S3 or NO_ARTIFACTS`);
    if (artifacts.Type === 'S3' && !artifacts.Location)
      problems.push('artifacts Type S3 needs a Location (the bucket name)');
    if (artifacts.Packaging !== undefined && artifacts.Packaging !== 'ZIP' && artifacts.Packaging !== 'NONE') {
      problems.push(`artifacts Packaging ${JSON.stringify(artifacts.Packaging)} is not ZIP or NONE`);
    }
  }
  const timeout = request.TimeoutInMinutesOverride ?? project.timeoutInMinutes;
  if (timeout !== undefined && !(timeout > 0))
    problems.push(`the timeout must be a positive number of minutes, got ${timeout}`);
  const queued = request.QueuedTimeoutInMinutesOverride ?? project.queuedTimeoutInMinutes;
  if (queued !== undefined && !(queued > 0))
    problems.push(`the queued timeout must be a positive number of minutes, got ${queued}`);
  if (problems.length > 0) throw new InvalidInputException(`StartBuild ${request.ProjectName}: ${problems.join('; ')}`);
}
