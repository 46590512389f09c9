/**
 * Shapes of the local CodeBuild runner. Request and result use the Step Functions spelling
 * (PascalCase, as `arn:aws:states:::codebuild:startBuild.sync` sends and returns them); times in
 * the result are epoch milliseconds, as Step Functions serializes service timestamps.
 */

export type SourceType =
  | 'LOCAL_GIT'
  | 'GITHUB'
  | 'GITHUB_ENTERPRISE'
  | 'GITLAB'
  | 'GITLAB_SELF_MANAGED'
  | 'BITBUCKET'
  | 'CODECOMMIT'
  | 'S3'
  | 'NO_SOURCE';

export interface EnvironmentVariable {
  readonly Name: string;
  readonly Value: string;
  /** Only PLAINTEXT runs locally. @default 'PLAINTEXT' */
  readonly Type?: string;
}

export interface ArtifactsSettings {
  /** @default 'NO_ARTIFACTS' for a project without artifacts settings */
  readonly Type: 'S3' | 'NO_ARTIFACTS';
  /** The bucket name. */
  readonly Location?: string;
  /** @default '' (the bucket root) */
  readonly Path?: string;
  readonly Name?: string;
  /** @default 'NONE' (files uploaded one by one), as CodeBuild */
  readonly Packaging?: 'ZIP' | 'NONE';
  /** @default 'NONE' */
  readonly NamespaceType?: 'NONE' | 'BUILD_ID';
  /** Use the buildspec's `artifacts.name` when it has one. @default false */
  readonly OverrideArtifactName?: boolean;
}

/** A build project: what `CreateProject` would hold. */
export interface ProjectDefinition {
  readonly name: string;
  /** The buildspec YAML text (the project's inline buildspec). */
  readonly buildspec: string;
  /** @default { type: 'NO_SOURCE' } */
  readonly source?: { readonly type: SourceType; readonly location?: string };
  /** @default { Type: 'NO_ARTIFACTS' } */
  readonly artifacts?: ArtifactsSettings;
  /** Project-level environment variables. @default [] */
  readonly environmentVariables?: ReadonlyArray<EnvironmentVariable>;
  /** Fractions of a minute are accepted locally (tests). @default 60 */
  readonly timeoutInMinutes?: number;
  /**
   * How long a build may wait in the queue. Local builds start at once (no queue), so it is only
   * reported, as BatchGetBuilds does. @default 480 (CodeBuild's)
   */
  readonly queuedTimeoutInMinutes?: number;
}

/** The StartBuild parameters the state machine sends (PascalCase, as in the ASL). */
export interface StartBuildParameters {
  readonly ProjectName: string;
  readonly SourceTypeOverride?: SourceType;
  readonly SourceLocationOverride?: string;
  readonly SourceVersion?: string;
  readonly ArtifactsOverride?: ArtifactsSettings;
  readonly EnvironmentVariablesOverride?: ReadonlyArray<EnvironmentVariable>;
  readonly TimeoutInMinutesOverride?: number;
  readonly QueuedTimeoutInMinutesOverride?: number;
  /** The credential this build clones with instead of the account's (FetchSourceThroughConnection). */
  readonly SourceAuthOverride?: SourceAuth;
}

/** CodeBuild's SourceAuth: `Resource` is the connection's ARN for CODECONNECTIONS. */
export interface SourceAuth {
  readonly Type: string;
  readonly Resource?: string;
}

export interface BuildRequest extends StartBuildParameters {
  /** The project named by ProjectName. */
  readonly project: ProjectDefinition;
}

export type BuildStatus = 'IN_PROGRESS' | 'SUCCEEDED' | 'FAILED' | 'FAULT' | 'TIMED_OUT' | 'STOPPED';

export type PhaseType =
  | 'SUBMITTED'
  | 'QUEUED'
  | 'PROVISIONING'
  | 'DOWNLOAD_SOURCE'
  | 'INSTALL'
  | 'PRE_BUILD'
  | 'BUILD'
  | 'POST_BUILD'
  | 'UPLOAD_ARTIFACTS'
  | 'FINALIZING'
  | 'COMPLETED';

export interface PhaseContext {
  readonly StatusCode: string;
  readonly Message: string;
}

export interface BuildPhase {
  PhaseType: PhaseType;
  PhaseStatus?: Exclude<BuildStatus, 'IN_PROGRESS'>;
  StartTime: number;
  EndTime?: number;
  DurationInSeconds?: number;
  Contexts?: PhaseContext[];
}

/** The `Build` object of BatchGetBuilds, as the `.sync` integration returns it under `Build`. */
export interface Build {
  Id: string;
  Arn: string;
  BuildNumber: number;
  StartTime: number;
  EndTime?: number;
  CurrentPhase: PhaseType;
  BuildStatus: BuildStatus;
  BuildComplete: boolean;
  ProjectName: string;
  Initiator: string;
  SourceVersion?: string;
  ResolvedSourceVersion?: string;
  Source: { Type: SourceType; Location?: string; Auth?: SourceAuth };
  Phases: BuildPhase[];
  Artifacts?: { Location: string; OverrideArtifactName?: boolean };
  Environment: {
    Type: 'LINUX_CONTAINER';
    Image: string;
    ComputeType: 'BUILD_GENERAL1_SMALL';
    PrivilegedMode: false;
    EnvironmentVariables: EnvironmentVariable[];
  };
  Logs: { GroupName: string; StreamName: string; DeepLink: string };
  TimeoutInMinutes: number;
  QueuedTimeoutInMinutes: number;
  ExportedEnvironmentVariables?: Array<{ Name: string; Value: string }>;
}

/** What `startBuild.sync` puts in the state's result. */
export interface StartBuildSyncOutput {
  readonly Build: Build;
}
