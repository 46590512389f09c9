/**
 * The JSON the console server sends the page (and the page sends back). Plain data only: dates as
 * ISO strings, no SDK objects, no credentials.
 */

export type Status = 'PENDING' | 'RUNNING' | 'SUCCEEDED' | 'FAILED' | 'TIMED_OUT' | 'ABORTED' | 'PENDING_REDRIVE';

/** A deployment record (shared/contracts.ts DeploymentRecord), as the page reads it. */
export interface DeploymentView {
  readonly environment: string;
  readonly execution: string;
  readonly startedAt: string;
  readonly requestedBy: string | null;
  readonly deployedAt: string;
  readonly sources: ReadonlyArray<{ readonly name: string; readonly branch: string; readonly commit: string }>;
  /** A rollback: the execution whose build it deployed again. */
  readonly redeployOf?: string | null;
  /** Who approved it, where the environment requires approval. */
  readonly approval?: {
    readonly approvedBy: string;
    readonly comment: string | null;
    readonly approvedAt: string;
  } | null;
}

export interface EnvironmentView {
  readonly environment: string;
  readonly current: DeploymentView | null;
  /** Newest first. */
  readonly history: ReadonlyArray<DeploymentView>;
}

export interface ExecutionRow {
  readonly executionArn: string;
  readonly name: string;
  readonly status: string;
  readonly startDate?: string;
  readonly stopDate?: string;
  readonly redriveCount: number;
  readonly environment?: string;
  /** Every source's branch: the input's, the default branch for the others. */
  readonly branches?: Record<string, string>;
  readonly requestedBy?: string;
  /** RUNNING, and waiting at AwaitApproval for a decision. */
  readonly waitingForApproval?: true;
}

export interface IterationNode {
  readonly index: number;
  /** The source (`app @ main`) or hook it runs for, `#index` until its first state is entered. */
  readonly label: string;
  readonly status: string;
  readonly startedAt?: number;
  readonly endedAt?: number;
  /** The inner state entered last. */
  readonly current?: string;
  readonly buildId?: string;
  /** The Map's inner states as this iteration ran them, in the ItemProcessor's order. */
  readonly states: ReadonlyArray<StateRun>;
}

/** One state's latest run: at the top level, or inside one Map iteration. */
export interface StateRun {
  readonly name: string;
  readonly status: string;
  readonly startedAt?: number;
  readonly endedAt?: number;
  readonly attempts: number;
  readonly error?: string;
  readonly cause?: string;
  readonly buildId?: string;
  readonly input?: string;
  readonly output?: string;
  /** A Map's iterations, by index. */
  readonly iterations: ReadonlyArray<IterationNode>;
}

/** A state of the definition, as the graph draws it. */
export interface StateShape {
  readonly name: string;
  readonly type: string;
  readonly comment?: string;
  readonly end: boolean;
  /** A Map's ItemProcessor: drawn inside the Map's box. */
  readonly inner?: SubGraph;
}

export interface SubGraph {
  readonly nodes: ReadonlyArray<StateShape>;
  readonly edges: ReadonlyArray<GraphEdge>;
}

export interface GraphNode extends StateShape, StateRun {}

export interface GraphEdge {
  readonly from: string;
  readonly to: string;
  readonly label?: string;
}

export interface ExecutionDetail {
  readonly execution: {
    readonly executionArn: string;
    readonly name: string;
    readonly status: string;
    readonly startDate?: string;
    readonly stopDate?: string;
    readonly input?: string;
    readonly output?: string;
    readonly error?: string;
    readonly cause?: string;
    /** Error and cause in one line, as the CLI prints them (`States.TaskFailed: build FAILED in BUILD`). */
    readonly failure?: string;
    readonly redriveCount: number;
    readonly redriveStatus?: string;
    readonly environment?: string;
    readonly requestedBy?: string;
  };
  /** RUNNING at AwaitApproval: the page offers Approve and Reject. */
  readonly waitingForApproval: boolean;
  /** The same execution in the AWS Step Functions console (none locally). */
  readonly consoleUrl?: string;
  readonly nodes: ReadonlyArray<GraphNode>;
  readonly edges: ReadonlyArray<GraphEdge>;
}

export interface BuildLogPage {
  readonly found: boolean;
  readonly status?: string;
  readonly currentPhase?: string;
  readonly complete?: boolean;
  /** The CloudWatch console link of the log on AWS. */
  readonly logLink?: string;
  readonly phases: ReadonlyArray<{ type: string; status?: string; durationSeconds?: number }>;
  /** Lines after the count the page asked from. */
  readonly lines: ReadonlyArray<string>;
  /** The count to ask from next time. */
  readonly next: number;
}

export interface FormOptions {
  readonly environments: ReadonlyArray<{ name: string; branches: ReadonlyArray<string> }>;
  readonly sources: ReadonlyArray<{ name: string; defaultBranch: string }>;
  /** Where the calls go (`AWS eu-west-1`, `local runtime at …`). */
  readonly target: string;
  /** How often the page refreshes what is running. */
  readonly pollMs: number;
}

export interface StartRequest {
  readonly environment?: unknown;
  readonly branches?: Record<string, unknown>;
  readonly requestedBy?: unknown;
  readonly name?: string;
}

export interface StartResult {
  /** Field (`environment`, `branches.app`, `requestedBy`, `name`, `form`) → the CLI's message. */
  readonly problems: Record<string, string>;
  readonly executionArn?: string;
}

export interface DecisionRequest {
  readonly executionArn: string;
  readonly action: 'approve' | 'reject';
  /** approve: optional. */
  readonly comment?: string;
  /** reject: required. */
  readonly reason?: string;
}

export interface DecisionResult {
  readonly message: string;
  readonly decidedBy: string;
}

export interface RollbackRequest {
  readonly environment: string;
  /** The earlier execution whose build deploys again; default the deployment before the current one. */
  readonly to?: string;
}
