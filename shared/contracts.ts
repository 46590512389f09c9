import type { HookConfig, SourceType } from './config';

/**
 * The payloads that flow between the states of workflows/deploy-pipeline.asl.json.
 * The ASL's Parameters and ResultSelectors build and read exactly these shapes.
 */

/** Execution input (public contract, DESIGN.md). */
export interface ExecutionInput {
  readonly environment: string;
  readonly branches?: Readonly<Record<string, string>>;
  /** Full commit ids by source: deploy exactly that commit of the source's branch (a trigger's push). */
  readonly commits?: Readonly<Record<string, string>>;
  readonly requestedBy?: string;
  /** An earlier execution of this environment whose build to deploy again (`stepdeploy rollback`), instead of branches. */
  readonly redeploy?: string;
}

/** One source resolved for an execution: what FetchSources fetches. */
export interface PlannedSource {
  readonly name: string;
  readonly branch: string;
  /** Repository URL, or an absolute path for LOCAL_GIT. */
  readonly repository: string;
  readonly sourceType: SourceType;
  /** Where the source lands in the combined artifact: "." or "config/". */
  readonly path: string;
  /** Name of the Secrets Manager secret with a token that reads the repository over HTTPS (ResolveSource), if any. */
  readonly credentialsSecret: string | null;
  /** The commit the input pins this source to (ResolveSource checks it is the branch's head), or null. */
  readonly commit: string | null;
  /**
   * The CodeConnections connection FetchSourceThroughConnection clones through (SourceAuthOverride),
   * or null: FetchSource, with the account's credential for the provider. Absent in the plans of
   * executions started before it existed (a redrive of one takes FetchSource).
   */
  readonly connectionArn?: string | null;
}

/** ValidateInput's output; the rest of the execution reads it as its state. */
export interface Plan {
  readonly environment: string;
  readonly execution: string;
  readonly requestedBy: string | null;
  readonly account: string;
  readonly region: string;
  readonly deployRoleArn: string;
  readonly variables: Readonly<Record<string, string>>;
  readonly sources: ReadonlyArray<PlannedSource>;
  readonly hooks: ReadonlyArray<HookConfig>;
  /** The environment's approval rule: the ApprovalRequired Choice reads `required`. */
  readonly approval: PlannedApproval;
  /** null until AwaitApproval's result replaces it; stays null where no approval is required. */
  readonly decision: ApprovalDecision | null;
  /** The earlier execution whose build this one deploys again (a rollback); null for a deployment of branches. */
  readonly redeployOf: string | null;
}

/**
 * What ValidateInput adds for a redeploy: the results FetchSources, CombineConfigAndCode and
 * BuildTemplates gave the execution whose build is deployed again, so that Deploy, the hooks and
 * RecordDeployment read the state they always read.
 */
export interface RedeployPrepared {
  /** The execution whose build.zip deploys (a rollback of a rollback names the original build). */
  readonly redeployOf: string;
  /** The plan's sources at the branches that build was made from. */
  readonly sources: ReadonlyArray<PlannedSource>;
  readonly fetched: ReadonlyArray<FetchedSource>;
  readonly artifact: Omit<CombineSourcesResult, 'manifest'>;
  readonly build: { readonly buildId: string };
}

/** The environment's approval rule, as the state machine uses it. */
export interface PlannedApproval {
  readonly required: boolean;
  /** AwaitApproval's TimeoutSecondsPath: timeoutMinutes in whole seconds, at least 1. */
  readonly timeoutSeconds: number;
  readonly allowSelfApproval: boolean;
}

/** AwaitApproval's result (what decide-approval sends with SendTaskSuccess), recorded with the deployment. */
export interface ApprovalDecision {
  /** The approver's identity: on AWS the caller's IAM ARN (function URL, AWS_IAM auth); locally the git user. */
  readonly approvedBy: string;
  readonly comment: string | null;
  readonly approvedAt: string;
}

/** ValidateInput's event. */
export interface ValidateInputEvent {
  readonly input: unknown;
  readonly execution: string;
}

/** ResolveSource's output: the branch's commit, read before any clone, and whether its snapshot is stored. */
export interface ResolvedSource {
  /** null when the repository could not be read before the fetch: the fetch build resolves it. */
  readonly commit: string | null;
  /** What FetchSource fetches: the commit when resolved (pinned), else the branch. */
  readonly sourceVersion: string;
  /** true: sources/<source>/<commit>.zip exists, at least SNAPSHOT_EXPIRY_MARGIN_DAYS (16) from its expiry, and FetchSource is skipped. */
  readonly snapshotStored: boolean;
  readonly snapshotKey: string | null;
}

/** One FetchSources iteration's output (the DescribeSnapshot or ReuseSnapshot Pass state). */
export interface FetchedSource {
  readonly name: string;
  readonly branch: string;
  readonly path: string;
  readonly commit: string;
  /** The build that fetched the snapshot; null when an earlier execution's snapshot was reused. */
  readonly fetchBuildId: string | null;
  /** sources/<source>/<commit>.zip */
  readonly snapshotKey: string;
}

export interface CodeBuildEnvironmentVariable {
  readonly Name: string;
  readonly Type: 'PLAINTEXT';
  readonly Value: string;
}

export interface CombineSourcesEvent {
  readonly environment: string;
  readonly execution: string;
  readonly requestedBy: string | null;
  /** The environment's AWS account and region (the plan's), which the build and deploy jobs target. */
  readonly account: string;
  readonly region: string;
  readonly deployRoleArn: string;
  readonly variables: Readonly<Record<string, string>>;
  readonly sources: ReadonlyArray<FetchedSource>;
}

export interface CombineSourcesResult {
  /** artifacts/<environment>/<execution>/source.zip */
  readonly key: string;
  /** "<bucket>/<key>", the form CodeBuild's S3 SourceLocationOverride takes. */
  readonly location: string;
  /** artifacts/<environment>/<execution>: where build.zip goes. */
  readonly buildPath: string;
  readonly manifest: Manifest;
  /** ENVIRONMENT, STEPDEPLOY_EXECUTION, STEPDEPLOY_ACCOUNT, STEPDEPLOY_REGION, STEPDEPLOY_COMMIT_<SOURCE>, STEPDEPLOY_BRANCH_<SOURCE>, the environment's variables. */
  readonly buildEnvironment: ReadonlyArray<CodeBuildEnvironmentVariable>;
  /** buildEnvironment plus STEPDEPLOY_DEPLOY_ROLE_ARN. */
  readonly deployEnvironment: ReadonlyArray<CodeBuildEnvironmentVariable>;
}

/** stepdeploy-manifest.json, inside source.zip. */
export interface Manifest {
  readonly environment: string;
  readonly execution: string;
  readonly requestedBy: string | null;
  readonly createdAt: string;
  readonly sources: ReadonlyArray<{
    readonly name: string;
    readonly branch: string;
    readonly commit: string;
    readonly snapshotKey: string;
    readonly path: string;
  }>;
}

export interface RunHookEvent {
  readonly hook: HookConfig;
  readonly environment: string;
  readonly execution: string;
}

export interface RunHookResult {
  readonly name: string;
  readonly status: number;
  readonly attempts: number;
  readonly durationMs: number;
}

export interface RecordDeploymentEvent {
  readonly environment: string;
  readonly execution: string;
  /** `$$.Execution.StartTime`: orders executions of one environment (newest wins). */
  readonly startedAt: string;
  readonly requestedBy: string | null;
  readonly sources: ReadonlyArray<FetchedSource>;
  readonly artifactKey: string;
  readonly buildId: string;
  readonly deployBuildId: string;
  readonly approval: ApprovalDecision | null;
  readonly redeployOf: string | null;
}

export interface RecordDeploymentResult {
  /** deployments/<environment>/current.json */
  readonly currentKey: string;
  /** false when a newer execution's deployment was already current: history was written, current.json kept. */
  readonly current: boolean;
  /** deployments/<environment>/history/<deployedAt>-<execution>.json */
  readonly historyKey: string;
}

/** What deployments/<environment>/current.json and each history entry hold. */
export interface DeploymentRecord {
  readonly environment: string;
  readonly execution: string;
  /** When the execution started: current.json only ever moves to a newer execution. */
  readonly startedAt: string;
  readonly requestedBy: string | null;
  readonly deployedAt: string;
  readonly artifactKey: string;
  readonly buildId: string;
  readonly deployBuildId: string;
  readonly sources: ReadonlyArray<{ readonly name: string; readonly branch: string; readonly commit: string }>;
  /** The execution whose build this deployment deployed again (a rollback); absent or null otherwise. */
  readonly redeployOf?: string | null;
  /** Who approved it, where the environment requires approval (absent in records written before approvals). */
  readonly approval?: ApprovalDecision | null;
}
