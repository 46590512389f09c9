import './polyfills';
import { StateMachine } from 'aws-local-stepfunctions';
import { allStates, type StateDefinition, type StateMachineDefinition } from '../workflows/definition';
import {
  ExecutionStore,
  TERMINAL_STATUSES,
  type ExecutionRecord,
  type ExecutionStatus,
  type NestedSuccess,
} from './executions';
import {
  taskResource,
  threadOf,
  translate,
  type EventLog,
  type HistoryEvent,
  type HistoryEventInit,
  type StateLookup,
} from './history';
import { randomBytes } from 'node:crypto';
import { LocalApiError } from './errors';

/**
 * Runs the byte-identical state machine definition with aws-local-stepfunctions and keeps what
 * the Step Functions API would show: execution records and AWS-shaped history, persisted.
 * It adds what the engine lacks: redrive (restart at the failed top-level state with its recorded
 * input, same execution ARN; inside a Map, only what did not succeed runs again), stop, and
 * idempotent StartExecution.
 */

export interface TaskContext {
  readonly executionArn: string;
  readonly executionName: string;
  readonly stateName: string;
  /** The state's TimeoutSeconds: a local build gets the same bound. */
  readonly timeoutSeconds: number | undefined;
  /** Aborted when the execution is stopped. */
  readonly signal: AbortSignal;
  /** For `.waitForTaskToken` resources: the token that SendTaskSuccess / SendTaskFailure will name. */
  readonly taskToken?: string;
  /**
   * For resources that wait (`.sync`, `.waitForTaskToken`): records TaskSubmitted with the
   * submission's response (e.g. StartBuild's `{ Build }`), as AWS does, so readers of the history
   * can follow the job while it runs.
   */
  readonly submitted: (output: unknown) => void;
}

/** Implements a Task's Resource locally: receives the state's effective parameters. */
export type TaskImplementation = (parameters: unknown, context: TaskContext) => Promise<unknown>;

export interface ExecutionListener {
  /** Every history event, as it is recorded. */
  onHistoryEvent?(execution: ExecutionRecord, event: HistoryEvent): void;
  /** RUNNING at start and redrive, then the terminal status. */
  onStatusChange?(execution: ExecutionRecord): void;
}

export interface LocalStateMachineOptions {
  readonly name: string;
  readonly definition: StateMachineDefinition;
  readonly region: string;
  readonly account: string;
  /** Where executions persist. */
  readonly directory: string;
  /** Local implementations keyed by Task Resource ARN (e.g. `arn:aws:states:::lambda:invoke`). */
  readonly resources: Readonly<Record<string, TaskImplementation>>;
  readonly listeners?: ReadonlyArray<ExecutionListener>;
  /** Milliseconds to wait before each retry instead of the definition's backoff (tests). */
  readonly retryIntervalMs?: number;
}

/**
 * The engine has no `$$.Task.Token`: the context carries this placeholder, and each start of a
 * `.waitForTaskToken` task replaces it in its parameters with a fresh token.
 */
const warned = new Set<string>();

/** A skipped execution record is reported once per process, not at every poll of ListExecutions. */
function warnOnce(message: string): void {
  if (warned.has(message)) return;
  warned.add(message);
  console.warn(`stepdeploy local runtime: ${message}`);
}

const TASK_TOKEN_PLACEHOLDER = 'stepdeploy-local-task-token-placeholder';

/**
 * aws-local-stepfunctions 3.0.0 overwrites `$$.Execution.StartTime` and `$$.Execution.Input` at every
 * run — a redrive, each Map iteration — with the time and input of that run. Step Functions keeps
 * the execution's own start time and input across redrives, and stepdeploy orders deployments by
 * that start time: a redriven older execution would otherwise look newer than everything started
 * before its redrive. The engine keeps other Execution fields we give it, so the definition it runs
 * reads these two through aliases that hold the execution's values.
 */
const PINNED_CONTEXT: ReadonlyArray<readonly [string, string]> = [
  ['$$.Execution.StartTime', '$$.Execution.StepdeployStartTime'],
  ['$$.Execution.Input', '$$.Execution.StepdeployInput'],
];

function pinExecutionContext(value: unknown, key?: string): unknown {
  if (typeof value === 'string') {
    return key === 'Comment' ? value : PINNED_CONTEXT.reduce((text, [from, to]) => text.split(from).join(to), value);
  }
  if (Array.isArray(value)) return value.map((v) => pinExecutionContext(v));
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, pinExecutionContext(v, k)]));
  }
  return value;
}

interface PendingTask {
  readonly executionName: string;
  readonly resolve: (output: unknown) => void;
  readonly reject: (error: Error) => void;
}

function replaceDeep(value: unknown, from: string, to: string): unknown {
  if (value === from) return to;
  if (Array.isArray(value)) return value.map((v) => replaceDeep(v, from, to));
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, replaceDeep(v, from, to)]));
  }
  return value;
}

/** One start of a Task state (its first or a retry): where its history goes, and what it submitted before that was known. */
interface Attempt {
  thread?: string;
  /** Submissions made before follow() read the attempt's StateEntered (a replayed attempt's recorded one among them). */
  early?: unknown[];
}

interface Running {
  readonly record: ExecutionRecord;
  readonly abort: () => void;
  readonly controller: AbortController;
  readonly done: Promise<ExecutionRecord>;
}

export class LocalStateMachine {
  readonly stateMachineArn: string;
  readonly createdAt = Date.now();
  private readonly store: ExecutionStore;
  /** The definition as the engine runs it (see pinExecutionContext), validated at construction. */
  private readonly pinned: StateMachineDefinition;
  private readonly states: ReadonlyMap<string, StateDefinition>;
  private readonly running = new Map<string, Running>();
  private readonly histories = new Map<string, HistoryEvent[]>();
  private readonly tasks = new Map<string, PendingTask>();
  /** Per execution and Task state name, raw task results not yet shown in TaskSucceeded (FIFO). */
  private readonly taskResults = new Map<string, unknown[]>();
  /** Per execution, the last event id of each thread, for previousEventId. */
  private readonly lastIds = new Map<string, Map<string, number>>();
  /** A nested state's top-level ancestor (absent for top-level states). */
  private readonly topLevelOf = new Map<string, string>();
  /** Per redriven execution, the nested successes of the earlier attempts not replayed yet. */
  private readonly replays = new Map<string, NestedSuccess[]>();
  /**
   * Per execution and Task state name, the attempts whose handler the engine called and whose
   * StateEntered (or StateRetried) follow() has not read yet (FIFO). The engine calls a task's
   * handler right after it logs that event, so follow() gives each attempt its history thread in
   * this order; the attempt's TaskSubmitted goes to that thread, whenever the task submits.
   */
  private readonly invocations = new Map<string, Attempt[]>();
  /** Per execution, the controller of its latest run: what an earlier run's tasks and cleanup must not touch. */
  private readonly latestRun = new Map<string, AbortController>();

  constructor(private readonly options: LocalStateMachineOptions) {
    this.stateMachineArn = `arn:aws:states:${options.region}:${options.account}:stateMachine:${options.name}`;
    this.store = new ExecutionStore(options.directory);
    const visited = allStates(options.definition);
    this.states = new Map(visited.map(({ name, state }) => [name, state]));
    for (const { name, state, parents } of visited) {
      if (parents.length > 0) this.topLevelOf.set(name, parents[0]!);
      if (state.Type === 'Task' && !options.resources[state.Resource!]) {
        throw new Error(`state ${name}: no local implementation for resource ${state.Resource}`);
      }
    }
    this.pinned = pinExecutionContext(options.definition) as StateMachineDefinition;
    // Throws on an invalid definition, once, instead of at every StartExecution.
    new StateMachine(this.pinned as never);
    this.failOrphans();
  }

  get name(): string {
    return this.options.name;
  }

  get definition(): StateMachineDefinition {
    return this.options.definition;
  }

  executionArn(name: string): string {
    return `arn:aws:states:${this.options.region}:${this.options.account}:execution:${this.options.name}:${name}`;
  }

  /** StartExecution: the same name and input while running returns the running execution (AWS's idempotency). */
  start(name: string, input: unknown): ExecutionRecord {
    const inputText = JSON.stringify(input ?? {});
    const existing = this.store.loadRecord(name);
    if (existing) {
      if (existing.status === 'RUNNING' && existing.input === inputText) return existing;
      throw new LocalApiError('ExecutionAlreadyExists', `Execution Already Exists: '${this.executionArn(name)}'`);
    }
    const record: ExecutionRecord = {
      executionArn: this.executionArn(name),
      stateMachineArn: this.stateMachineArn,
      name,
      status: 'RUNNING',
      startDate: Date.now(),
      input: inputText,
      redriveCount: 0,
    };
    this.histories.set(name, []);
    this.store.saveRecord(record);
    this.run(record, this.options.definition.StartAt, input, false);
    return record;
  }

  /**
   * RedriveExecution: restarts the failed top-level state with its recorded input; earlier states
   * do not run again. Inside a Map, as Step Functions "redrives only the iterations that failed"
   * and keeps the results of the steps that succeeded, a Task state that succeeded in an earlier
   * attempt with the same parameters is not run again: its recorded result (and submission) is
   * replayed. So a redriven FetchSources keeps the commits its sources were resolved to, and a
   * redriven PostDeployHooks does not run a hook that already succeeded.
   */
  redrive(executionArn: string): ExecutionRecord {
    const record = this.describe(executionArn);
    if (!['FAILED', 'TIMED_OUT', 'ABORTED'].includes(record.status) || !record.lastTopLevelState) {
      throw new LocalApiError(
        'ExecutionNotRedrivable',
        `Execution '${executionArn}' is ${record.status} and cannot be redriven: only FAILED, TIMED_OUT or ABORTED executions can`,
      );
    }
    const { name: stateName, input } = record.lastTopLevelState;
    record.status = 'RUNNING';
    record.redriveCount += 1;
    record.redriveDate = Date.now();
    delete record.stopDate;
    delete record.error;
    delete record.cause;
    this.store.saveRecord(record);
    this.record(record, 'top', [
      {
        timestamp: record.redriveDate,
        type: 'ExecutionRedriven',
        executionRedrivenEventDetails: { redriveCount: record.redriveCount },
      },
    ]);
    this.run(record, stateName, input, true);
    return record;
  }

  /** StopExecution: aborts the run and whatever local task it is in (a build is stopped too). */
  stop(executionArn: string, error?: string, cause?: string): ExecutionRecord {
    const record = this.describe(executionArn);
    const running = this.running.get(record.name);
    if (!running) return record;
    if (error !== undefined) record.error = error;
    if (cause !== undefined) record.cause = cause;
    running.controller.abort();
    running.abort();
    return record;
  }

  describe(executionArn: string): ExecutionRecord {
    const name = this.nameOf(executionArn);
    const record = this.running.get(name)?.record ?? this.store.loadRecord(name);
    if (!record) throw new LocalApiError('ExecutionDoesNotExist', `Execution Does Not Exist: '${executionArn}'`);
    return record;
  }

  history(executionArn: string): HistoryEvent[] {
    const name = this.describe(executionArn).name;
    return this.histories.get(name) ?? this.store.loadHistory(name);
  }

  list(status?: ExecutionStatus): ExecutionRecord[] {
    return this.store
      .records(this.stateMachineArn, warnOnce)
      .filter((r) => status === undefined || r.status === status)
      .sort((a, b) => b.startDate - a.startDate);
  }

  /** Resolves when the execution reaches a terminal status. */
  async wait(executionArn: string): Promise<ExecutionRecord> {
    const record = this.describe(executionArn);
    return this.running.get(record.name)?.done ?? record;
  }

  /** Stops every running execution (shutdown). */
  async stopAll(): Promise<void> {
    const done = [...this.running.keys()].map((name) => {
      const arn = this.executionArn(name);
      this.stop(arn, 'Local.RuntimeStopped', 'the local runtime was shut down');
      return this.wait(arn);
    });
    await Promise.all(done);
  }

  private nameOf(executionArn: string): string {
    const prefix = `arn:aws:states:${this.options.region}:${this.options.account}:execution:${this.options.name}:`;
    if (!executionArn.startsWith(prefix) || executionArn.length === prefix.length) {
      throw new LocalApiError('ExecutionDoesNotExist', `Execution Does Not Exist: '${executionArn}'`);
    }
    return executionArn.slice(prefix.length);
  }

  private lookup(): StateLookup {
    return {
      resourceOf: (name) => this.states.get(name)?.Resource,
      timeoutOf: (name) => this.states.get(name)?.TimeoutSeconds,
      parametersOf: (name) => this.states.get(name)?.Parameters,
    };
  }

  private taskHandlers(
    record: ExecutionRecord,
    controller: AbortController,
  ): Record<string, (input: unknown) => Promise<never>> {
    const handlers: Record<string, (input: unknown) => Promise<never>> = {};
    for (const [stateName, state] of this.states) {
      if (state.Type !== 'Task') continue;
      const implementation = this.options.resources[state.Resource!]!;
      const top = this.topLevelOf.get(stateName);
      const context = (onSubmitted: (output: unknown) => void, taskToken?: string): TaskContext => ({
        executionArn: record.executionArn,
        executionName: record.name,
        stateName,
        timeoutSeconds: state.TimeoutSeconds,
        signal: controller.signal,
        taskToken,
        submitted: onSubmitted,
      });
      const run = state.Resource!.endsWith('.waitForTaskToken')
        ? (input: unknown, onSubmitted: (output: unknown) => void) =>
            this.waitForTaskToken(
              record,
              input,
              implementation,
              (token) => context(onSubmitted, token),
              controller.signal,
            )
        : (input: unknown, onSubmitted: (output: unknown) => void) => implementation(input, context(onSubmitted));
      handlers[stateName] = async (input) => {
        const parameters = JSON.stringify(input ?? null);
        // A task of an earlier run can still end after its execution did (a Map aborts its other
        // iterations, but not the task they are in): it must neither take nor save anything then.
        const current = (): boolean => this.latestRun.get(record.name) === controller;
        const replayed =
          top === undefined || !current() ? undefined : this.takeReplay(record.name, stateName, parameters);
        // Synchronously, before the engine logs anything else: follow() pairs attempts in this order.
        const key = `${record.name}/${stateName}`;
        // A replayed attempt submits what it recorded, as the task did then: on its own thread, once known.
        const attempt: Attempt =
          replayed !== undefined && 'submitted' in replayed ? { early: [replayed.submitted] } : {};
        if (current()) this.invocations.set(key, [...(this.invocations.get(key) ?? []), attempt]);
        let result: unknown;
        if (replayed) {
          result = replayed.result;
        } else {
          let submitted: { output: unknown } | undefined;
          result = await run(input, (output) => {
            submitted = { output };
            this.submitted(record, stateName, attempt, output, current());
          });
          if (top !== undefined && current()) {
            const success: NestedSuccess = {
              top,
              state: stateName,
              input: parameters,
              result,
              ...(submitted ? { submitted: submitted.output } : {}),
            };
            record.nestedSuccesses = [...(record.nestedSuccesses ?? []), success];
            this.store.saveRecord(record);
          }
        }
        if (current()) this.taskResults.set(key, [...(this.taskResults.get(key) ?? []), result]);
        return result as never;
      };
    }
    return handlers;
  }

  /** An earlier attempt's success of this nested state with these parameters, once each (iterations can be alike). */
  private takeReplay(executionName: string, stateName: string, parameters: string): NestedSuccess | undefined {
    const pool = this.replays.get(executionName);
    const at = pool?.findIndex((s) => s.state === stateName && s.input === parameters) ?? -1;
    return at === -1 ? undefined : pool!.splice(at, 1)[0];
  }

  /** `.waitForTaskToken`: run the resource with a fresh token, then wait for SendTaskSuccess / SendTaskFailure. */
  private async waitForTaskToken(
    record: ExecutionRecord,
    input: unknown,
    implementation: TaskImplementation,
    context: (taskToken: string) => TaskContext,
    signal: AbortSignal,
  ): Promise<unknown> {
    const token = randomBytes(48).toString('base64url');
    const result = new Promise<unknown>((resolve, reject) =>
      this.tasks.set(token, { executionName: record.name, resolve, reject }),
    );
    const onAbort = (): void => this.tasks.get(token)?.reject(new Error('the execution was stopped'));
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      const taskContext = context(token);
      taskContext.submitted(await implementation(replaceDeep(input, TASK_TOKEN_PLACEHOLDER, token), taskContext));
      return await result;
    } finally {
      signal.removeEventListener('abort', onAbort);
      this.tasks.delete(token);
    }
  }

  /** SendTaskSuccess: `output` is the JSON text the task's result is parsed from. */
  sendTaskSuccess(taskToken: string, output: string): void {
    const task = this.pendingTask(taskToken);
    let parsed: unknown;
    try {
      parsed = JSON.parse(output);
    } catch (err) {
      throw new LocalApiError('InvalidOutput', `Invalid Output: ${(err as Error).message}`);
    }
    task.resolve(parsed);
  }

  /** SendTaskFailure: the task fails with this error name and cause. */
  sendTaskFailure(taskToken: string, error = 'States.TaskFailed', cause = ''): void {
    const failure = new Error(cause);
    failure.name = error;
    this.pendingTask(taskToken).reject(failure);
  }

  /** SendTaskHeartbeat: the local engine has no HeartbeatSeconds; it only checks the token. */
  sendTaskHeartbeat(taskToken: string): void {
    this.pendingTask(taskToken);
  }

  private pendingTask(taskToken: string): PendingTask {
    const task = this.tasks.get(taskToken);
    if (!task)
      throw new LocalApiError(
        'TaskDoesNotExist',
        'Task Does Not Exist: the task token is unknown, or its task already ended',
      );
    return task;
  }

  private run(record: ExecutionRecord, startAt: string, input: unknown, redriven: boolean): void {
    const controller = new AbortController();
    // Before the engine starts: it calls the first task's handler before machine.run() returns.
    this.latestRun.set(record.name, controller);
    // Only the restarted state's nested successes can be replayed; those of earlier states are done with.
    const replayable = redriven ? (record.nestedSuccesses ?? []).filter((s) => s.top === startAt) : [];
    if (replayable.length > 0) record.nestedSuccesses = replayable;
    else delete record.nestedSuccesses;
    this.replays.set(record.name, [...replayable]);
    // Validated once, when this machine was created: validating at every start cost 0.2-0.6 s.
    const machine = new StateMachine({ ...this.pinned, StartAt: startAt } as never, {
      validationOptions: { noValidate: true },
    });
    const retryIntervalOverrides =
      this.options.retryIntervalMs === undefined
        ? undefined
        : Object.fromEntries([...this.states.keys()].map((n) => [n, this.options.retryIntervalMs!]));
    const startTime = new Date(record.startDate).toISOString();
    const executionInput = JSON.parse(record.input) as never;
    const execution = machine.run(input as never, {
      noThrowOnAbort: true,
      context: {
        Execution: {
          Id: record.executionArn,
          Name: record.name,
          Input: executionInput,
          StartTime: startTime,
          StepdeployInput: executionInput,
          StepdeployStartTime: startTime,
          RedriveCount: record.redriveCount,
        },
        StateMachine: { Id: this.stateMachineArn, Name: this.options.name },
        Task: { Token: TASK_TOKEN_PLACEHOLDER },
      },
      overrides: { taskResourceLocalHandlers: this.taskHandlers(record, controller) as never, retryIntervalOverrides },
    });
    const done = this.follow(record, execution.eventLogs, execution.result, redriven, controller).finally(() => {
      if (this.running.get(record.name)?.controller === controller) this.running.delete(record.name);
    });
    this.running.set(record.name, { record, abort: execution.abort, controller, done });
    this.notifyStatus(record);
  }

  private async follow(
    record: ExecutionRecord,
    events: AsyncGenerator<EventLog>,
    result: Promise<unknown>,
    redriven: boolean,
    controller: AbortController,
  ): Promise<ExecutionRecord> {
    const settled = result.then(
      (output) => ({ ok: true as const, output }),
      (error: unknown) => ({ ok: false as const, error }),
    );
    for await (const event of events) {
      if (redriven && event.type === 'ExecutionStarted') continue;
      if (
        event.type === 'StateEntered' &&
        event.index === undefined &&
        this.options.definition.States[event.state.name]
      ) {
        record.lastTopLevelState = { name: event.state.name, input: event.state.input };
      }
      const thread = threadOf(event);
      if (event.type === 'StateExited' && thread === 'top' && record.nestedSuccesses !== undefined) {
        // A top-level state that ended is never restarted by a redrive: what succeeded inside it is done with.
        const exited = event.state.name;
        record.nestedSuccesses = record.nestedSuccesses.filter((s) => s.top !== exited);
        if (record.nestedSuccesses.length === 0) delete record.nestedSuccesses;
      }
      const taskResult =
        event.type === 'StateExited' && event.state.type === 'Task'
          ? this.taskResults.get(`${record.name}/${event.state.name}`)?.shift()
          : undefined;
      this.record(record, thread, translate(event, this.lookup(), this.options.region, taskResult));
      if ((event.type === 'StateEntered' && event.state.type === 'Task') || event.type === 'StateRetried') {
        const invocation = this.invocations.get(`${record.name}/${event.state.name}`)?.shift();
        if (invocation) this.attemptStarted(record, event.state.name, invocation, thread);
      }
      this.apply(record, event);
      if (['ExecutionSucceeded', 'ExecutionFailed', 'ExecutionAborted', 'ExecutionTimeout'].includes(event.type)) break;
    }
    const outcome = await settled;
    // A redrive may have started a new run already (it may once the status is terminal): leave its state alone.
    const latest = this.latestRun.get(record.name) === controller;
    if (latest) {
      for (const queues of [this.taskResults, this.invocations]) {
        for (const key of [...queues.keys()]) if (key.startsWith(`${record.name}/`)) queues.delete(key);
      }
      this.replays.delete(record.name);
      this.latestRun.delete(record.name);
    }
    if (record.status === 'RUNNING') {
      // The engine ended without a terminal event (it threw before logging one): never leave it hanging.
      const message = outcome.ok
        ? 'the execution ended without a result'
        : String((outcome.error as Error)?.message ?? outcome.error);
      this.apply(record, { type: 'ExecutionFailed', timestamp: Date.now(), Error: 'States.Runtime', Cause: message });
      this.record(record, 'top', [
        {
          timestamp: Date.now(),
          type: 'ExecutionFailed',
          executionFailedEventDetails: { error: 'States.Runtime', cause: message },
        },
      ]);
    }
    // The history is on disk: a long-running `local serve` keeps only running executions in memory.
    if (latest) {
      this.histories.delete(record.name);
      this.lastIds.delete(record.name);
    }
    return record;
  }

  /** follow() read the attempt's StateEntered (or StateRetried): what it submitted already goes to its thread. */
  private attemptStarted(record: ExecutionRecord, stateName: string, attempt: Attempt, thread: string): void {
    attempt.thread = thread;
    for (const output of attempt.early?.splice(0) ?? [])
      this.record(record, thread, [this.submittedEvent(stateName, output)]);
  }

  /**
   * TaskSubmitted goes to the attempt's own thread; until follow() has read the attempt's
   * StateEntered, it waits on the attempt. A task of a run that ended writes nothing: its thread
   * ids are not the next run's.
   */
  private submitted(
    record: ExecutionRecord,
    stateName: string,
    attempt: Attempt,
    output: unknown,
    current: boolean,
  ): void {
    if (!current) return;
    if (attempt.thread !== undefined) this.record(record, attempt.thread, [this.submittedEvent(stateName, output)]);
    else attempt.early = [...(attempt.early ?? []), output];
  }

  private submittedEvent(stateName: string, output: unknown): HistoryEventInit {
    const { resourceType, resource } = taskResource(this.states.get(stateName)?.Resource ?? '');
    return {
      timestamp: Date.now(),
      type: 'TaskSubmitted',
      taskSubmittedEventDetails: {
        resourceType,
        resource,
        output: JSON.stringify(output ?? null),
        outputDetails: { truncated: false },
      },
    };
  }

  /** Updates the execution record from an engine event. */
  private apply(record: ExecutionRecord, event: EventLog): void {
    const finish = (status: ExecutionStatus, fields: Partial<ExecutionRecord>): void => {
      Object.assign(record, fields);
      record.status = status;
      record.stopDate = event.timestamp;
      this.store.saveRecord(record);
      this.notifyStatus(record);
    };
    switch (event.type) {
      case 'ExecutionSucceeded':
        finish('SUCCEEDED', { output: JSON.stringify(event.output) });
        return;
      case 'ExecutionFailed':
        finish('FAILED', {
          error: event.Error,
          cause: typeof event.Cause === 'string' ? event.Cause : JSON.stringify(event.Cause),
        });
        return;
      case 'ExecutionAborted':
        finish('ABORTED', {});
        return;
      case 'ExecutionTimeout':
        finish('TIMED_OUT', { error: 'States.Timeout' });
        return;
      default:
        if (event.type === 'StateEntered') this.store.saveRecord(record);
    }
  }

  /** Appends events with ids; previousEventId chains within a thread (top level, or one Map iteration). */
  private record(record: ExecutionRecord, thread: string, events: ReadonlyArray<HistoryEventInit>): void {
    const history = this.histories.get(record.name) ?? this.store.loadHistory(record.name);
    this.histories.set(record.name, history);
    const threads = this.lastIds.get(record.name) ?? new Map<string, number>();
    this.lastIds.set(record.name, threads);
    if (events.some((e) => e.type === 'MapStateStarted')) {
      for (const key of [...threads.keys()]) if (key !== 'top') threads.delete(key);
    }
    for (const init of events) {
      const previousEventId = threads.get(thread) ?? threads.get('top') ?? history.at(-1)?.id ?? 0;
      const event = { ...init, id: history.length + 1, previousEventId } as HistoryEvent;
      history.push(event);
      threads.set(thread, event.id);
      for (const listener of this.options.listeners ?? []) listener.onHistoryEvent?.(record, event);
    }
    this.store.saveHistory(record.name, history);
  }

  private notifyStatus(record: ExecutionRecord): void {
    for (const listener of this.options.listeners ?? []) listener.onStatusChange?.(record);
  }

  /** Executions left RUNNING by a runtime that stopped cannot continue: mark them FAILED, and so redrivable. */
  private failOrphans(): void {
    for (const record of this.store.records(this.stateMachineArn, warnOnce)) {
      if (TERMINAL_STATUSES.includes(record.status)) continue;
      record.status = 'FAILED';
      record.stopDate = Date.now();
      record.error = 'Local.RuntimeStopped';
      record.cause = 'the local runtime stopped while this execution was running; redrive it to continue';
      this.store.saveRecord(record);
      this.record(record, 'top', [
        {
          timestamp: record.stopDate,
          type: 'ExecutionFailed',
          executionFailedEventDetails: { error: record.error, cause: record.cause },
        },
      ]);
    }
  }
}
