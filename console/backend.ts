import { BatchGetBuildsCommand, type Build } from '@aws-sdk/client-codebuild';
import {
  DescribeExecutionCommand,
  type DescribeExecutionCommandOutput,
  ListExecutionsCommand,
  type ExecutionListItem,
  RedriveExecutionCommand,
  StartExecutionCommand,
  StopExecutionCommand,
} from '@aws-sdk/client-sfn';
import { BuildLogReader } from '../cli/build-logs';
import { executionName } from '../cli/execution-name';
import { checkExecutionName } from '../cli/execution-ref';
import { executionDefinition, fullHistory, toGraphEvents } from '../cli/follow';
import { ExecutionGraph } from '../cli/graph';
import { decide } from '../cli/commands/approve';
import { waitsForApproval } from '../cli/commands/executions';
import { rollbackInput } from '../cli/commands/rollback';
import { readHistory, readStatus } from '../cli/commands/status';
import { failureLine } from '../cli/view';
import type { Target } from '../cli/target';
import { graphOf, mapIterations } from './graph-data';
import { loadConfig, type PipelineConfig } from '../shared/config';
import { checkExecutionInput } from '../tasks/validate-input/validate-input';
import { APPROVAL_STATES, type StateMachineDefinition } from '../workflows/definition';
import type {
  BuildLogPage,
  DecisionRequest,
  DecisionResult,
  RollbackRequest,
  EnvironmentView,
  ExecutionDetail,
  ExecutionRow,
  StartRequest,
  StartResult,
} from './api-types';

/**
 * What the console pages show, read through the same SDK clients as the CLI (a Target: AWS, an
 * endpoint, or the local runtime), so the page works against anything that answers these APIs.
 * The page never talks to AWS itself: it gets plain JSON built here, with no credential in it.
 */

const DESCRIBE_CONCURRENCY = 8;
const [AWAIT_APPROVAL] = APPROVAL_STATES;
/** The executions list reads at most this many (ListExecutions pages of 1,000). */
export const MAX_EXECUTIONS = 1000;
/** About a screen of rows: described before the list answers. */
const DESCRIBED_AT_ONCE = 50;

interface InputFields {
  readonly environment?: string;
  readonly branches?: Record<string, string>;
  readonly requestedBy?: string;
}

function parseInput(text: string | undefined): InputFields {
  try {
    const value = JSON.parse(text ?? '{}') as InputFields;
    return value !== null && typeof value === 'object' ? value : {};
  } catch {
    return {};
  }
}

function iso(date: Date | undefined): string | undefined {
  return date?.toISOString();
}

/** A problem from checkExecutionInput (`branches.app: "x" is not allowed…`) → the form field it is about. */
export function fieldOf(problem: string): string {
  const field = problem.slice(0, problem.indexOf(':'));
  return field === '(input)' || field === '' ? 'form' : field;
}

export interface ConsoleBackendOptions {
  /**
   * The approval function's URL on AWS (`--approval-url`, else STEPDEPLOY_APPROVAL_URL), which
   * approve and reject call signed with this process's credentials, as the CLI does.
   * @default - the environment variable; locally not needed
   */
  readonly approvalUrl?: string;
}

export class ConsoleBackend {
  /** An execution's input never changes: described once. */
  private readonly inputs = new Map<string, InputFields>();
  /** Executions to describe in the background, and the batch being described. */
  private readonly later = new Set<string>();
  private describing: Promise<void> | undefined;
  /** A build's log group and stream never change. */
  private readonly readers = new Map<string, BuildLogReader | null>();

  constructor(
    private readonly target: Target,
    private readonly configPath: string,
    private readonly options: ConsoleBackendOptions = {},
  ) {}

  config(): PipelineConfig {
    return loadConfig(this.configPath);
  }

  /** What the start form needs: environments with their branch policy, sources with default branches. */
  formOptions(): {
    environments: Array<{ name: string; branches: string[] }>;
    sources: Array<{ name: string; defaultBranch: string }>;
  } {
    const config = this.config();
    return {
      environments: Object.entries(config.environments).map(([name, e]) => ({ name, branches: [...e.branches] })),
      sources: Object.entries(config.sources).map(([name, s]) => ({ name, defaultBranch: s.defaultBranch })),
    };
  }

  async environments(): Promise<EnvironmentView[]> {
    const statuses = await readStatus(this.target, this.configPath);
    const bucket = this.target.bucket();
    return Promise.all(
      statuses.map(async ({ environment, deployed }) => ({
        environment,
        current: deployed,
        history: await readHistory(this.target, bucket, environment),
      })),
    );
  }

  /** Newest first, up to MAX_EXECUTIONS, each with its environment and branches (described once, then cached). */
  async executions(filter: { environment?: string; status?: string } = {}): Promise<ExecutionRow[]> {
    const stateMachineArn = await this.target.stateMachineArn();
    const items: ExecutionListItem[] = [];
    let nextToken: string | undefined;
    do {
      const page = await this.target.sfn.send(
        new ListExecutionsCommand({
          stateMachineArn,
          maxResults: MAX_EXECUTIONS,
          nextToken,
          ...(filter.status ? { statusFilter: filter.status as ExecutionListItem['status'] } : {}),
        }),
      );
      items.push(...(page.executions ?? []));
      nextToken = page.nextToken;
    } while (nextToken && items.length < MAX_EXECUTIONS);
    const listed = items.slice(0, MAX_EXECUTIONS);
    const missing = listed.map((e) => e.executionArn!).filter((arn) => !this.inputs.has(arn));
    // The first screen is described now; the rest in the background, so a long list answers at once
    // and fills in its environments and branches as the page refreshes.
    await this.describeMissing(missing.slice(0, DESCRIBED_AT_ONCE));
    this.describeLater(missing.slice(DESCRIBED_AT_ONCE));
    const defaults = Object.fromEntries(Object.entries(this.config().sources).map(([n, s]) => [n, s.defaultBranch]));
    // Only running executions can wait: one short history read each (waitsForApproval).
    const waiting = new Set(
      (
        await Promise.all(
          listed
            .filter((item) => item.status === 'RUNNING')
            .map(async (item) => ((await waitsForApproval(this.target, item.executionArn!)) ? item.executionArn : '')),
        )
      ).filter(Boolean),
    );
    return listed
      .map((item): ExecutionRow => {
        const input = this.inputs.get(item.executionArn!) ?? {};
        return {
          executionArn: item.executionArn!,
          name: item.name!,
          status: item.status!,
          startDate: iso(item.startDate),
          stopDate: iso(item.stopDate),
          redriveCount: item.redriveCount ?? 0,
          environment: input.environment,
          branches: input.environment ? { ...defaults, ...input.branches } : undefined,
          requestedBy: input.requestedBy,
          ...(waiting.has(item.executionArn) ? { waitingForApproval: true as const } : {}),
        };
      })
      .filter((row) => !filter.environment || row.environment === filter.environment);
  }

  private describeLater(arns: string[]): void {
    for (const arn of arns) this.later.add(arn);
    if (this.describing || this.later.size === 0) return;
    const batch = [...this.later].filter((arn) => !this.inputs.has(arn));
    this.later.clear();
    this.describing = this.describeMissing(batch).finally(() => {
      this.describing = undefined;
      this.describeLater([]);
    });
  }

  private async describeMissing(arns: string[]): Promise<void> {
    const queue = [...arns];
    const worker = async (): Promise<void> => {
      for (let arn = queue.shift(); arn !== undefined; arn = queue.shift()) {
        try {
          const described = await this.target.sfn.send(new DescribeExecutionCommand({ executionArn: arn }));
          this.inputs.set(arn, parseInput(described.input));
        } catch {
          // Shown without environment; described again on the next refresh.
        }
      }
    };
    await Promise.all(Array.from({ length: DESCRIBE_CONCURRENCY }, worker));
  }

  async execution(executionArn: string): Promise<ExecutionDetail> {
    const [described, definition, events] = await Promise.all([
      this.target.sfn.send(new DescribeExecutionCommand({ executionArn })),
      executionDefinition(this.target, executionArn),
      fullHistory(this.target, executionArn),
    ]);
    const graph = new ExecutionGraph(definition);
    graph.apply(toGraphEvents(events));
    const data = stateData(definition, events);
    const iterations = mapIterations(definition, events);
    const { nodes, edges } = graphOf(definition);
    return {
      execution: executionFields(described),
      waitingForApproval: described.status === 'RUNNING' && graph.state(AWAIT_APPROVAL)?.status === 'RUNNING',
      consoleUrl: this.target.consoleUrl(executionArn),
      nodes: nodes.map((node) => {
        const view = graph.state(node.name);
        return {
          ...node,
          status: view?.status ?? 'PENDING',
          startedAt: view?.startedAt,
          endedAt: view?.endedAt,
          attempts: view?.attempts ?? 0,
          error: view?.error,
          cause: view?.cause,
          buildId: view?.buildId,
          input: data.get(node.name)?.input,
          output: data.get(node.name)?.output,
          iterations: iterations.get(node.name) ?? [],
        };
      }),
      edges,
    };
  }

  /** A build's phases and the log lines after `token` (GetLogEvents), for the state details panel. */
  async buildLog(buildId: string, token: number): Promise<BuildLogPage> {
    const { builds } = await this.target.codebuild.send(new BatchGetBuildsCommand({ ids: [buildId] }));
    const build: Build | undefined = builds?.[0];
    if (!build) return { found: false, lines: [], next: token, phases: [] };
    // The page keeps the count of lines it has: the reader here reads from the head, once per build.
    let reader = this.readers.get(buildId);
    if (reader === undefined) {
      reader = BuildLogReader.of(this.target.logs, build) ?? null;
      this.readers.set(buildId, reader);
    }
    const lines = reader ? await this.allLines(buildId, reader) : [];
    return {
      found: true,
      status: build.buildStatus,
      currentPhase: build.currentPhase,
      complete: build.buildComplete === true,
      logLink: build.logs?.deepLink?.startsWith('https://') ? build.logs.deepLink : undefined,
      phases: (build.phases ?? []).map((p) => ({
        type: p.phaseType ?? '',
        status: p.phaseStatus,
        durationSeconds: p.durationInSeconds,
      })),
      lines: lines.slice(token),
      next: lines.length,
    };
  }

  /** Each build's lines read so far; one read at a time per build, so two pages never read the same lines twice. */
  private readonly lines = new Map<string, { lines: string[]; reading: Promise<unknown> }>();

  private async allLines(buildId: string, reader: BuildLogReader): Promise<string[]> {
    const known = this.lines.get(buildId) ?? { lines: [], reading: Promise.resolve() };
    this.lines.set(buildId, known);
    const read = known.reading.then(async () => {
      known.lines.push(...(await reader.read()).map((l) => l.message));
    });
    known.reading = read.catch(() => undefined);
    await read;
    return known.lines;
  }

  /** Checks the input with the CLI's (and ValidateInput's) rules; starts only when there is no problem. */
  async start(request: StartRequest, dryRun: boolean): Promise<StartResult> {
    const branches = Object.fromEntries(
      Object.entries(request.branches ?? {}).filter(([, branch]) => typeof branch === 'string' && branch !== ''),
    );
    const input = {
      environment: request.environment,
      branches,
      ...(request.requestedBy ? { requestedBy: request.requestedBy } : {}),
    };
    const problems: Record<string, string> = {};
    for (const problem of checkExecutionInput(input, this.config())) problems[fieldOf(problem)] ??= problem;
    let name: string | undefined;
    if (request.name) {
      try {
        name = checkExecutionName(request.name);
      } catch (err) {
        problems.name = (err as Error).message;
      }
    }
    if (Object.keys(problems).length > 0 || dryRun) return { problems };
    name ??= executionName(String(request.environment));
    const started = await this.target.sfn.send(
      new StartExecutionCommand({
        stateMachineArn: await this.target.stateMachineArn(),
        name,
        input: JSON.stringify(input),
      }),
    );
    return { problems, executionArn: started.executionArn };
  }

  /** The CLI's `approve` / `reject`: through the approval function, as the git user locally, signed on AWS. */
  async decide(request: DecisionRequest): Promise<DecisionResult> {
    const answer = await decide(
      this.target,
      request.executionArn,
      request.action,
      { comment: request.comment, reason: request.reason, approvalUrl: this.options.approvalUrl },
      this.configPath,
    );
    return { message: answer.message ?? '', decidedBy: answer.decidedBy ?? '' };
  }

  /** The CLI's `rollback --env E [--to X]`: checked with ValidateInput's rules, then started. */
  async rollback(request: RollbackRequest): Promise<StartResult> {
    const input = await rollbackInput(this.target, { env: request.environment, to: request.to }, this.configPath);
    const started = await this.target.sfn.send(
      new StartExecutionCommand({
        stateMachineArn: await this.target.stateMachineArn(),
        name: executionName(input.environment),
        input: JSON.stringify(input),
      }),
    );
    return { problems: {}, executionArn: started.executionArn };
  }

  async redrive(executionArn: string): Promise<void> {
    await this.target.sfn.send(new RedriveExecutionCommand({ executionArn }));
  }

  async stop(executionArn: string, cause?: string): Promise<void> {
    await this.target.sfn.send(new StopExecutionCommand({ executionArn, ...(cause ? { cause } : {}) }));
  }
}

function executionFields(d: DescribeExecutionCommandOutput): ExecutionDetail['execution'] {
  const input = parseInput(d.input);
  return {
    ...(d.error || d.cause ? { failure: failureLine({ error: d.error, cause: d.cause }) } : {}),
    executionArn: d.executionArn!,
    name: d.name!,
    status: d.status!,
    startDate: iso(d.startDate),
    stopDate: iso(d.stopDate),
    input: d.input,
    output: d.output,
    error: d.error,
    cause: d.cause,
    redriveCount: d.redriveCount ?? 0,
    redriveStatus: d.redriveStatus,
    environment: input.environment,
    requestedBy: input.requestedBy,
  };
}

/** The input and output of each top-level state's latest run, from its StateEntered / StateExited events. */
function stateData(
  definition: StateMachineDefinition,
  events: ReadonlyArray<{
    stateEnteredEventDetails?: { name?: string; input?: string };
    stateExitedEventDetails?: { name?: string; output?: string };
  }>,
): Map<string, { input?: string; output?: string }> {
  const top = new Set(Object.keys(definition.States));
  const data = new Map<string, { input?: string; output?: string }>();
  for (const event of events) {
    const entered = event.stateEnteredEventDetails;
    if (entered?.name && top.has(entered.name)) data.set(entered.name, { input: entered.input });
    const exited = event.stateExitedEventDetails;
    if (exited?.name && top.has(exited.name)) {
      const known = data.get(exited.name) ?? {};
      data.set(exited.name, { ...known, output: exited.output });
    }
  }
  return data;
}
