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
import { type Attempt, ExecutionHistory, ExecutionRun } from './execution-run';

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

const warned = new Set<string>();

/** A skipped execution record is reported once per process, not at every poll of ListExecutions. */
function warnOnce(message: string): void {
  if (warned.has(message)) return;
  warned.add(message);
  console.warn(`stepdeploy local runtime: ${message}`);
}

/**
 * The engine has no `$$.Task.Token`: the context carries this placeholder, and each start of a
 * `.waitForTaskToken` task replaces it in its parameters with a fresh token.
 */
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

/**
 * Step Functions resolves TimeoutSecondsPath against the state's input; aws-local-stepfunctions
 * 3.0.0 resolves it against the effective parameters, where `$.approval.timeoutSeconds` is not.
 * So the engine gets a bound it never reaches (23 days: setTimeout's limit is 2^31 ms) and the
 * class times the attempt itself from the input its StateEntered event carries (see follow()).
 */
function withoutTimeoutPaths(definition: StateMachineDefinition, paths: Map<string, string>): StateMachineDefinition {
  const states = Object.fromEntries(
    Object.entries(definition.States).map(([name, state]) => {
      if (typeof state.TimeoutSecondsPath !== 'string') return [name, state];
      paths.set(name, state.TimeoutSecondsPath);
      const { TimeoutSecondsPath: _path, ...rest } = state;
      return [name, { ...rest, TimeoutSeconds: 2_000_000 }];
    }),
  );
  return { ...definition, States: states };
}

/** A reference path of plain field names (`$.approval.timeoutSeconds`) into a value. */
function referencePath(value: unknown, path: string): unknown {
  return path
    .replace(/^\$\.?/, '')
    .split('.')
    .filter((key) => key !== '')
    .reduce<unknown>(
      (v, key) => (v !== null && typeof v === 'object' ? (v as Record<string, unknown>)[key] : undefined),
      value,
    );
}

interface PendingTask {
  readonly executionName: string;
  readonly stateName: string;
  readonly createdAt: number;
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

export class LocalStateMachine {
  readonly stateMachineArn: string;
  readonly createdAt = Date.now();
  private readonly store: ExecutionStore;
  /** The definition as the engine runs it (see pinExecutionContext), validated at construction. */
  private readonly pinned: StateMachineDefinition;
  private readonly states: ReadonlyMap<string, StateDefinition>;
  /** Tokens whose task ended (answered, timed out, stopped): SendTask* answers TaskTimedOut for them, as AWS does. */
  private readonly closedTokens = new Set<string>();
  /** A nested state's top-level ancestor (absent for top-level states). */
  private readonly topLevelOf = new Map<string, string>();
  /**
   * Per execution, its latest run, from its start until it has ended and recorded its end: a
   * long-running `local serve` keeps only these in memory, the rest is on disk.
   */
  private readonly runs = new Map<string, ExecutionRun>();
  /** The `.waitForTaskToken` tasks waiting, by token: SendTaskSuccess and SendTaskFailure name only the token. */
  private readonly tasks = new Map<string, PendingTask>();
  /** Task states whose timeout comes from their input (TimeoutSecondsPath), which this class enforces itself. */
  private readonly timeoutPaths = new Map<string, string>();
  /** Per execution and state, the running attempt's TimeoutSecondsPath timer. */
  private readonly pathTimers = new Map<string, NodeJS.Timeout>();

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
    this.pinned = withoutTimeoutPaths(
      pinExecutionContext(options.definition) as StateMachineDefinition,
      this.timeoutPaths,
    );
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
    this.store.saveRecord(record);
    this.run(record, this.options.definition.StartAt, input, this.newHistory(record, []), false);
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
    // The run that just ended may still be finishing: its history is the one on disk, and it writes no more to it.
    const history = this.runs.get(record.name)?.history ?? this.newHistory(record, this.store.loadHistory(record.name));
    history.append('top', [
      {
        timestamp: record.redriveDate,
        type: 'ExecutionRedriven',
        executionRedrivenEventDetails: { redriveCount: record.redriveCount },
      },
    ]);
    this.run(record, stateName, input, history, true);
    return record;
  }

  /** StopExecution: aborts the run and whatever local task it is in (a build is stopped too). */
  stop(executionArn: string, error?: string, cause?: string): ExecutionRecord {
    const record = this.describe(executionArn);
    const run = this.runs.get(record.name);
    if (!run || run.ended) return record;
    if (error !== undefined) record.error = error;
    if (cause !== undefined) record.cause = cause;
    run.controller.abort();
    run.abort();
    return record;
  }

  describe(executionArn: string): ExecutionRecord {
    const name = this.nameOf(executionArn);
    const record = this.runs.get(name)?.record ?? this.store.loadRecord(name);
    if (!record) throw new LocalApiError('ExecutionDoesNotExist', `Execution Does Not Exist: '${executionArn}'`);
    return record;
  }

  history(executionArn: string): HistoryEvent[] {
    const name = this.describe(executionArn).name;
    return this.runs.get(name)?.history.events ?? this.store.loadHistory(name);
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
    return this.runs.get(record.name)?.done ?? record;
  }

  /** Stops every running execution (shutdown). */
  async stopAll(): Promise<void> {
    const done = [...this.runs.keys()].map((name) => {
      const arn = this.executionArn(name);
      this.stop(arn, 'Local.RuntimeStopped', 'the local runtime was shut down');
      return this.wait(arn);
    });
    await Promise.all(done);
  }

  /** Executions whose run is held in memory (tests: nothing stays once every execution has ended). */
  get runsInMemory(): number {
    return this.runs.size;
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

  /** An execution's history, saved and shown to the listeners at every event. */
  private newHistory(record: ExecutionRecord, events: HistoryEvent[]): ExecutionHistory {
    return new ExecutionHistory(events, (all, added) => {
      for (const event of added) {
        for (const listener of this.options.listeners ?? []) listener.onHistoryEvent?.(record, event);
      }
      this.store.saveHistory(record.name, [...all]);
    });
  }

  /** Whether `run` is its execution's latest, still in memory: a task of a run that ended must neither take nor save anything. */
  private isCurrent(run: ExecutionRun): boolean {
    return this.runs.get(run.record.name) === run;
  }

  private taskHandlers(run: ExecutionRun): Record<string, (input: unknown) => Promise<never>> {
    const { record } = run;
    const handlers: Record<string, (input: unknown) => Promise<never>> = {};
    for (const [stateName, state] of this.states) {
      if (state.Type !== 'Task') continue;
      const implementation = this.options.resources[state.Resource!]!;
      const top = this.topLevelOf.get(stateName);
      const context = (onSubmitted: (output: unknown) => void, taskToken?: string): TaskContext => ({
        executionArn: record.executionArn,
        executionName: record.name,
        stateName,
        signal: run.controller.signal,
        taskToken,
        submitted: onSubmitted,
      });
      const invoke = state.Resource!.endsWith('.waitForTaskToken')
        ? (input: unknown, onSubmitted: (output: unknown) => void) =>
            this.waitForTaskToken(input, implementation, (token) => context(onSubmitted, token), run.controller.signal)
        : (input: unknown, onSubmitted: (output: unknown) => void) => implementation(input, context(onSubmitted));
      handlers[stateName] = async (input) => {
        const parameters = JSON.stringify(input ?? null);
        const replayed = top === undefined || !this.isCurrent(run) ? undefined : run.takeReplay(stateName, parameters);
        // A replayed attempt submits what it recorded, as the task did then: on its own thread, once known.
        const attempt: Attempt =
          replayed !== undefined && 'submitted' in replayed ? { early: [replayed.submitted] } : {};
        // Before any await: attempts pair with the engine's StateEntered events in the order of these calls.
        if (this.isCurrent(run)) run.attemptCalled(stateName, attempt);
        let result: unknown;
        if (replayed) {
          result = replayed.result;
        } else {
          let submitted: { output: unknown } | undefined;
          result = await invoke(input, (output) => {
            submitted = { output };
            this.submitted(run, stateName, attempt, output);
          });
          if (top !== undefined && this.isCurrent(run)) {
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
        if (this.isCurrent(run)) run.taskReturned(stateName, result);
        return result as never;
      };
    }
    return handlers;
  }

  /** `.waitForTaskToken`: run the resource with a fresh token, then wait for SendTaskSuccess / SendTaskFailure. */
  private async waitForTaskToken(
    input: unknown,
    implementation: TaskImplementation,
    context: (taskToken: string) => TaskContext,
    signal: AbortSignal,
  ): Promise<unknown> {
    const token = randomBytes(48).toString('base64url');
    const { executionName, stateName } = context(token);
    const result = new Promise<unknown>((resolve, reject) =>
      this.tasks.set(token, { executionName, stateName, createdAt: Date.now(), resolve, reject }),
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
      this.closedTokens.add(token);
    }
  }

  /** Starts (StateEntered, StateRetried) or ends the timer of a state whose timeout is a TimeoutSecondsPath. */
  private timeAttempt(executionName: string, event: EventLog): void {
    if (!('state' in event) || event.state === undefined) return;
    const path = this.timeoutPaths.get(event.state.name);
    if (path === undefined) return;
    const key = `${executionName}/${event.state.name}`;
    clearTimeout(this.pathTimers.get(key));
    this.pathTimers.delete(key);
    if (event.type !== 'StateEntered' && event.type !== 'StateRetried') return;
    const seconds = referencePath(event.state.input, path);
    if (typeof seconds !== 'number' || !Number.isInteger(seconds) || seconds < 1) return;
    const stateName = event.state.name;
    const timer = setTimeout(() => {
      this.pathTimers.delete(key);
      for (const [token, task] of this.tasks) {
        if (task.executionName !== executionName || task.stateName !== stateName) continue;
        this.tasks.delete(token);
        this.closedTokens.add(token);
        const timeout = new Error(`the task did not answer within ${seconds} seconds (TimeoutSecondsPath ${path})`);
        timeout.name = 'States.Timeout';
        task.reject(timeout);
      }
    }, seconds * 1000);
    timer.unref();
    this.pathTimers.set(key, timer);
  }

  /**
   * The engine failed a `.waitForTaskToken` state (its TimeoutSeconds ran out): its task no longer
   * waits, so its token is closed and the handler still awaiting it ends.
   */
  private closeTimedOutTasks(executionName: string, stateName: string, timedOutAt: number): void {
    for (const [token, task] of this.tasks) {
      if (task.executionName !== executionName || task.stateName !== stateName) continue;
      // A retry's attempt started after the timeout has a token of its own.
      if (task.createdAt > timedOutAt) continue;
      this.tasks.delete(token);
      this.closedTokens.add(token);
      task.reject(new Error('the task timed out'));
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

  /**
   * The errors the Step Functions API reference documents for SendTaskSuccess/Failure/Heartbeat:
   * InvalidToken (not a token), TaskTimedOut ("the task token has either expired or the task
   * associated with the token has already been closed"), TaskDoesNotExist (a token of no task here,
   * e.g. one issued before this runtime restarted).
   */
  private pendingTask(taskToken: string): PendingTask {
    const task = this.tasks.get(taskToken);
    if (task) return task;
    if (!/^[A-Za-z0-9_-]{64}$/.test(taskToken))
      throw new LocalApiError('InvalidToken', 'Invalid Token: not a task token');
    if (this.closedTokens.has(taskToken))
      throw new LocalApiError('TaskTimedOut', 'Task Timed Out: the task of this token timed out or was already closed');
    throw new LocalApiError('TaskDoesNotExist', 'Task Does Not Exist: no task of this runtime has this token');
  }

  private run(
    record: ExecutionRecord,
    startAt: string,
    input: unknown,
    history: ExecutionHistory,
    redriven: boolean,
  ): void {
    // Only the restarted state's nested successes can be replayed; those of earlier states are done with.
    const replayable = redriven ? (record.nestedSuccesses ?? []).filter((s) => s.top === startAt) : [];
    if (replayable.length > 0) record.nestedSuccesses = replayable;
    else delete record.nestedSuccesses;
    const run = new ExecutionRun(record, history, [...replayable]);
    // Before the engine starts: it calls the first task's handler before machine.run() returns.
    this.runs.set(record.name, run);
    // Validated once, when this machine was created (BENCHMARKS.md, section 7).
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
      overrides: { taskResourceLocalHandlers: this.taskHandlers(run) as never, retryIntervalOverrides },
    });
    run.abort = execution.abort;
    run.done = this.follow(run, execution.eventLogs, execution.result, redriven);
    this.notifyStatus(record);
  }

  private async follow(
    run: ExecutionRun,
    events: AsyncGenerator<EventLog>,
    result: Promise<unknown>,
    redriven: boolean,
  ): Promise<ExecutionRecord> {
    const { record } = run;
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
        event.type === 'StateExited' && event.state.type === 'Task' ? run.nextTaskResult(event.state.name) : undefined;
      run.history.append(thread, translate(event, this.lookup(), this.options.region, taskResult));
      this.timeAttempt(run.record.name, event);
      if (event.type === 'StateFailed' && event.state.type === 'Task' && event.Error === 'States.Timeout')
        this.closeTimedOutTasks(run.record.name, event.state.name, event.timestamp);
      if ((event.type === 'StateEntered' && event.state.type === 'Task') || event.type === 'StateRetried') {
        const attempt = run.nextAttempt(event.state.name);
        if (attempt) this.attemptStarted(run, event.state.name, attempt, thread);
      }
      this.apply(run, event);
      if (run.ended) break;
    }
    const outcome = await settled;
    // Not the record's status: a redrive may have made it RUNNING again by now, for its own run.
    if (!run.ended) {
      // The engine ended without a terminal event (it threw before logging one): never leave it hanging.
      const message = outcome.ok
        ? 'the execution ended without a result'
        : String((outcome.error as Error)?.message ?? outcome.error);
      this.apply(run, { type: 'ExecutionFailed', timestamp: Date.now(), Error: 'States.Runtime', Cause: message });
      run.history.append('top', [
        {
          timestamp: Date.now(),
          type: 'ExecutionFailed',
          executionFailedEventDetails: { error: 'States.Runtime', cause: message },
        },
      ]);
    }
    if (this.isCurrent(run)) this.runs.delete(record.name);
    return record;
  }

  /** The run read the attempt's StateEntered (or StateRetried): what it submitted already goes to its thread. */
  private attemptStarted(run: ExecutionRun, stateName: string, attempt: Attempt, thread: string): void {
    attempt.thread = thread;
    for (const output of attempt.early?.splice(0) ?? [])
      run.history.append(thread, [this.submittedEvent(stateName, output)]);
  }

  /**
   * TaskSubmitted goes to the attempt's own thread; until the run has read the attempt's
   * StateEntered, it waits on the attempt. A task of a run that ended writes nothing: its thread
   * ids are not the next run's.
   */
  private submitted(run: ExecutionRun, stateName: string, attempt: Attempt, output: unknown): void {
    if (!this.isCurrent(run)) return;
    if (attempt.thread !== undefined) run.history.append(attempt.thread, [this.submittedEvent(stateName, output)]);
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

  /** Updates the execution record from an engine event; a terminal one ends the run. */
  private apply(run: ExecutionRun, event: EventLog): void {
    const { record } = run;
    const finish = (status: ExecutionStatus, fields: Partial<ExecutionRecord>): void => {
      Object.assign(record, fields);
      record.status = status;
      record.stopDate = event.timestamp;
      // Before the listeners hear of it: one may redrive at once, and this run must then touch nothing more.
      run.ended = true;
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
      this.newHistory(record, this.store.loadHistory(record.name)).append('top', [
        {
          timestamp: record.stopDate,
          type: 'ExecutionFailed',
          executionFailedEventDetails: { error: record.error, cause: record.cause },
        },
      ]);
    }
  }
}
