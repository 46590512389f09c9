import type { ExecutionRecord, NestedSuccess } from './executions';
import type { HistoryEvent, HistoryEventInit } from './history';

/**
 * An execution's history in memory while it runs: events get their ids here, and
 * previousEventId chains within a thread (the top level, or one Map iteration).
 */
export class ExecutionHistory {
  /** Per thread, the id of its last event. */
  private readonly lastIds = new Map<string, number>();

  constructor(
    readonly events: HistoryEvent[],
    private readonly appended: (events: ReadonlyArray<HistoryEvent>, added: ReadonlyArray<HistoryEvent>) => void,
  ) {}

  append(thread: string, inits: ReadonlyArray<HistoryEventInit>): void {
    // A Map's iterations number from 0 again: an earlier Map's threads must not chain into this one's.
    if (inits.some((e) => e.type === 'MapStateStarted')) {
      for (const key of [...this.lastIds.keys()]) if (key !== 'top') this.lastIds.delete(key);
    }
    const added: HistoryEvent[] = [];
    for (const init of inits) {
      const previousEventId = this.lastIds.get(thread) ?? this.lastIds.get('top') ?? this.events.at(-1)?.id ?? 0;
      const event = { ...init, id: this.events.length + 1, previousEventId } as HistoryEvent;
      this.events.push(event);
      this.lastIds.set(thread, event.id);
      added.push(event);
    }
    this.appended(this.events, added);
  }
}

/** One start of a Task state (its first or a retry): where its history goes, and what it submitted before that was known. */
export interface Attempt {
  thread?: string;
  /** Submissions made before the run read the attempt's StateEntered (a replayed attempt's recorded one among them). */
  early?: unknown[];
}

/**
 * One run of an execution: its start or one of its redrives. It owns what the engine's event
 * stream and the task handlers share while it runs. A run that ended may still have tasks
 * finishing (a Map aborts its other iterations, but not the task they are in); they hold this
 * object, not the execution's name, so nothing they do reaches the next run.
 */
export class ExecutionRun {
  readonly controller = new AbortController();
  /** Aborts the engine's run; set once the engine has started it. */
  abort: () => void = () => undefined;
  /** Resolves when the run has ended and recorded its end; set once the engine has started it. */
  done!: Promise<ExecutionRecord>;
  /** Set when the run recorded the execution's terminal status: nothing of the run changes the record after that. */
  ended = false;
  /** Per Task state name, raw task results not yet shown in TaskSucceeded (FIFO). */
  private readonly taskResults = new Map<string, unknown[]>();
  /**
   * Per Task state name, the attempts whose handler the engine called and whose StateEntered (or
   * StateRetried) the run has not read yet (FIFO). The engine calls a task's handler right after
   * it logs that event, so attempts pair with those events in this order.
   */
  private readonly attempts = new Map<string, Attempt[]>();

  constructor(
    readonly record: ExecutionRecord,
    readonly history: ExecutionHistory,
    /** The nested successes of earlier runs not replayed yet (see takeReplay). */
    private readonly replays: NestedSuccess[],
  ) {}

  /** An earlier run's success of this nested state with these parameters, once each (iterations can be alike). */
  takeReplay(stateName: string, parameters: string): NestedSuccess | undefined {
    const at = this.replays.findIndex((s) => s.state === stateName && s.input === parameters);
    return at === -1 ? undefined : this.replays.splice(at, 1)[0];
  }

  /** The engine called a Task's handler: the attempt waits for its StateEntered or StateRetried. */
  attemptCalled(stateName: string, attempt: Attempt): void {
    this.attempts.set(stateName, [...(this.attempts.get(stateName) ?? []), attempt]);
  }

  /** The run read a Task's StateEntered or StateRetried: the attempt whose handler was called for it. */
  nextAttempt(stateName: string): Attempt | undefined {
    return this.attempts.get(stateName)?.shift();
  }

  taskReturned(stateName: string, result: unknown): void {
    this.taskResults.set(stateName, [...(this.taskResults.get(stateName) ?? []), result]);
  }

  /** The result a Task's StateExited shows in its TaskSucceeded. */
  nextTaskResult(stateName: string): unknown {
    return this.taskResults.get(stateName)?.shift();
  }
}
