import type { StateMachine } from 'aws-local-stepfunctions';

/** One entry of the engine's event log (the package does not export the type). */
export type EventLog = ReturnType<StateMachine['run']>['eventLogs'] extends AsyncGenerator<infer E> ? E : never;

/**
 * Turns the local engine's event log into Step Functions execution history events, with AWS's
 * event types and detail fields, so that GetExecutionHistory readers (the CLI's live graph, the
 * console-like views, `aws stepfunctions get-execution-history`) work the same locally.
 */

/** A history event as the GetExecutionHistory wire format has it, timestamp in epoch milliseconds. */
export interface HistoryEvent {
  readonly id: number;
  readonly previousEventId: number;
  readonly timestamp: number;
  readonly type: string;
  readonly [details: string]: unknown;
}

export type HistoryEventInit = Omit<HistoryEvent, 'id' | 'previousEventId'>;

const STATE_TYPE_PREFIX: Readonly<Record<string, string>> = {
  Task: 'TaskState',
  Map: 'MapState',
  Parallel: 'ParallelState',
  Pass: 'PassState',
  Wait: 'WaitState',
  Choice: 'ChoiceState',
  Succeed: 'SucceedState',
  Fail: 'FailState',
};

/** `arn:aws:states:::codebuild:startBuild.sync` → `{ resourceType: 'codebuild', resource: 'startBuild.sync' }`. */
export function taskResource(resourceArn: string): { resourceType: string; resource: string } {
  const match = /^arn:[^:]+:states:::([^:]+):(.+)$/.exec(resourceArn);
  if (match) return { resourceType: match[1]!, resource: match[2]! };
  return { resourceType: 'lambda', resource: resourceArn };
}

function json(value: unknown): string {
  return JSON.stringify(value ?? null);
}

export interface StateLookup {
  /** The Task's Resource ARN, to fill in taskScheduledEventDetails. */
  resourceOf(stateName: string): string | undefined;
  timeoutOf(stateName: string): number | undefined;
  parametersOf(stateName: string): unknown;
}

/**
 * Which thread of the execution an engine event belongs to: the top level, or one Map iteration
 * (its index). History events chain through previousEventId within a thread.
 */
export function threadOf(event: EventLog): string {
  if ('index' in event && typeof event.index === 'number') return `iteration:${event.index}`;
  return 'top';
}

/**
 * Translates one engine event into zero or more history events.
 * Task states get the TaskScheduled / TaskStarted / TaskSucceeded | TaskFailed events that the
 * service integrations produce; a retry schedules the task again, as on AWS.
 *
 * @param taskResult for a Task's StateExited: the task's raw result (before ResultSelector and
 *   ResultPath), which AWS shows in TaskSucceeded; the engine's event only has the state output.
 */
export function translate(
  event: EventLog,
  states: StateLookup,
  region: string,
  taskResult?: unknown,
): HistoryEventInit[] {
  const timestamp = event.timestamp;
  switch (event.type) {
    case 'ExecutionStarted':
      return [
        {
          timestamp,
          type: 'ExecutionStarted',
          executionStartedEventDetails: { input: json(event.input), inputDetails: { truncated: false } },
        },
      ];
    case 'ExecutionSucceeded':
      return [
        {
          timestamp,
          type: 'ExecutionSucceeded',
          executionSucceededEventDetails: { output: json(event.output), outputDetails: { truncated: false } },
        },
      ];
    case 'ExecutionFailed':
      return [
        {
          timestamp,
          type: 'ExecutionFailed',
          executionFailedEventDetails: { error: event.Error, cause: causeText(event.Cause) },
        },
      ];
    case 'ExecutionAborted':
      return [{ timestamp, type: 'ExecutionAborted', executionAbortedEventDetails: {} }];
    case 'ExecutionTimeout':
      return [{ timestamp, type: 'ExecutionTimedOut', executionTimedOutEventDetails: { error: 'States.Timeout' } }];
    case 'MapIterationStarted':
    case 'MapIterationSucceeded':
    case 'MapIterationFailed':
      // AWS names the details after the event: mapIterationStartedEventDetails, …SucceededEventDetails.
      return [
        {
          timestamp,
          type: event.type,
          [`mapIteration${event.type.slice('MapIteration'.length)}EventDetails`]: {
            name: event.parentState.name,
            index: event.index,
          },
        },
      ];
    case 'ParallelBranchStarted':
    case 'ParallelBranchSucceeded':
    case 'ParallelBranchFailed':
      return [];
    case 'StateEntered': {
      const { name, type, input } = event.state;
      const entered: HistoryEventInit = {
        timestamp,
        type: `${STATE_TYPE_PREFIX[type]}Entered`,
        stateEnteredEventDetails: { name, input: json(input), inputDetails: { truncated: false } },
      };
      if (type === 'Task') return [entered, ...taskStart(name, timestamp, states, region)];
      if (type === 'Map') {
        const length = Array.isArray(input) ? input.length : undefined;
        return [entered, { timestamp, type: 'MapStateStarted', mapStateStartedEventDetails: { length } }];
      }
      return [entered];
    }
    case 'StateExited': {
      const { name, type, output } = event.state;
      const exited: HistoryEventInit = {
        timestamp,
        type: `${STATE_TYPE_PREFIX[type]}Exited`,
        stateExitedEventDetails: { name, output: json(output), outputDetails: { truncated: false } },
      };
      if (type === 'Task') {
        const { resourceType, resource } = taskResource(states.resourceOf(name) ?? '');
        return [
          {
            timestamp,
            type: 'TaskSucceeded',
            taskSucceededEventDetails: {
              resourceType,
              resource,
              output: json(taskResult ?? output),
              outputDetails: { truncated: false },
            },
          },
          exited,
        ];
      }
      if (type === 'Map') return [{ timestamp, type: 'MapStateSucceeded' }, exited];
      return [exited];
    }
    case 'StateFailed': {
      const { name, type } = event.state;
      if (type === 'Task') {
        const { resourceType, resource } = taskResource(states.resourceOf(name) ?? '');
        const timedOut = event.Error === 'States.Timeout';
        return [
          {
            timestamp,
            type: timedOut ? 'TaskTimedOut' : 'TaskFailed',
            [timedOut ? 'taskTimedOutEventDetails' : 'taskFailedEventDetails']: {
              resourceType,
              resource,
              error: event.Error,
              cause: causeText(event.Cause),
            },
          },
        ];
      }
      if (type === 'Map') return [{ timestamp, type: 'MapStateFailed' }];
      return [];
    }
    case 'StateRetried':
      return taskStart(event.state.name, timestamp, states, region);
    case 'StateCaught':
      return [];
  }
  return [];
}

function taskStart(name: string, timestamp: number, states: StateLookup, region: string): HistoryEventInit[] {
  const { resourceType, resource } = taskResource(states.resourceOf(name) ?? '');
  return [
    {
      timestamp,
      type: 'TaskScheduled',
      taskScheduledEventDetails: {
        resourceType,
        resource,
        region,
        parameters: json(states.parametersOf(name)),
        timeoutInSeconds: states.timeoutOf(name),
      },
    },
    { timestamp, type: 'TaskStarted', taskStartedEventDetails: { resourceType, resource } },
  ];
}

function causeText(cause: unknown): string {
  if (typeof cause === 'string') return cause;
  if (cause instanceof Error) return cause.message;
  return json(cause);
}
