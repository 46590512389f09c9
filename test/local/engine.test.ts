import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalStateMachine, type TaskImplementation } from '../../local/engine';
import type { StateMachineDefinition } from '../../workflows/definition';

const LAMBDA = 'arn:aws:states:::lambda:invoke';

const definition: StateMachineDefinition = {
  StartAt: 'First',
  States: {
    First: {
      Type: 'Task',
      Comment: 'c',
      Resource: LAMBDA,
      Parameters: { 'step.$': '$.step', name: 'first' },
      ResultPath: '$.first',
      TimeoutSeconds: 5,
      Next: 'Fan',
    },
    Fan: {
      Type: 'Map',
      ItemsPath: '$.items',
      ItemProcessor: {
        ProcessorConfig: { Mode: 'INLINE' },
        StartAt: 'Each',
        States: {
          Each: {
            Type: 'Task',
            Resource: LAMBDA,
            Parameters: { 'item.$': '$', name: 'each' },
            TimeoutSeconds: 5,
            End: true,
          },
        },
      },
      ResultPath: '$.fan',
      Next: 'Second',
    },
    Second: {
      Type: 'Task',
      Resource: LAMBDA,
      Parameters: { 'all.$': '$', name: 'second' },
      TimeoutSeconds: 5,
      End: true,
    },
  },
};

let dir: string;
let calls: string[];
let failSecond: boolean;
let blockSecond: boolean;
/** Items whose `each` task fails, once per listed occurrence. */
let failEach: number[];
/** Counts the runs of `each`, so that a result shows which run made it. */
let eachRuns: number;
/** What `second` was given (the Map's results among it). */
let secondGot: unknown;
/** Items whose `each` task waits for the promise before it runs. */
let holdEach: Map<number, Promise<void>>;

const invoke: TaskImplementation = async (parameters, context) => {
  const p = parameters as { name: string; item?: number };
  calls.push(p.item === undefined ? p.name : `${p.name}:${p.item}`);
  if (p.name === 'each') {
    await holdEach.get(p.item!);
    eachRuns += 1;
    const at = failEach.indexOf(p.item!);
    if (at !== -1) {
      failEach.splice(at, 1);
      const err = new Error(`item ${p.item} broke`);
      err.name = 'EachError';
      throw err;
    }
    return { item: p.item, run: eachRuns };
  }
  if (p.name === 'second') secondGot = (parameters as { all: unknown }).all;
  if (p.name === 'second' && failSecond) {
    const err = new Error('second broke');
    err.name = 'SecondError';
    throw err;
  }
  if (p.name === 'second' && blockSecond) {
    await new Promise<void>((resolve) => context.signal.addEventListener('abort', () => resolve()));
    throw new Error('aborted');
  }
  return { ok: p.name, execution: context.executionName };
};

/** Redrives the execution and waits for its end: its record, and the tasks that ran meanwhile. */
async function redriveAndWait(
  sm: LocalStateMachine,
  executionArn: string,
): Promise<{ record: Awaited<ReturnType<LocalStateMachine['wait']>>; ran: string[] }> {
  calls = [];
  sm.redrive(executionArn);
  const record = await sm.wait(executionArn);
  return { record, ran: [...calls] };
}

/** The items of the Map's results, in order, as `second` received them. */
const fanItems = (): number[] => (secondGot as { fan: Array<{ item: number }> }).fan.map((r) => r.item);

function machine(): LocalStateMachine {
  return new LocalStateMachine({
    name: 'toy',
    definition,
    region: 'us-east-1',
    account: '000000000000',
    directory: dir,
    resources: { [LAMBDA]: invoke },
    retryIntervalMs: 0,
  });
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'stepdeploy-engine-'));
  calls = [];
  failSecond = false;
  blockSecond = false;
  failEach = [];
  eachRuns = 0;
  secondGot = undefined;
  holdEach = new Map();
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('LocalStateMachine', () => {
  test('runs an execution to SUCCEEDED with AWS-shaped history', async () => {
    const sm = machine();

    const started = sm.start('e1', { step: 1, items: [1, 2] });
    const done = await sm.wait(started.executionArn);

    expect(done.status).toBe('SUCCEEDED');
    expect(started.executionArn).toBe('arn:aws:states:us-east-1:000000000000:execution:toy:e1');
    expect(JSON.parse(done.output!)).toEqual({ ok: 'second', execution: 'e1' });
    expect(calls.sort()).toEqual(['each:1', 'each:2', 'first', 'second']);
    const types = sm.history(started.executionArn).map((e) => e.type);
    expect(types.slice(0, 6)).toEqual([
      'ExecutionStarted',
      'TaskStateEntered',
      'TaskScheduled',
      'TaskStarted',
      'TaskSucceeded',
      'TaskStateExited',
    ]);
    expect(types).toEqual(
      expect.arrayContaining([
        'MapStateEntered',
        'MapStateStarted',
        'MapIterationStarted',
        'MapIterationSucceeded',
        'MapStateSucceeded',
        'MapStateExited',
      ]),
    );
    expect(types.at(-1)).toBe('ExecutionSucceeded');
    const history = sm.history(started.executionArn);
    history.forEach((e, i) => {
      expect(e.id).toBe(i + 1);
      expect(e.previousEventId).toBeLessThan(e.id);
    });
    const scheduled = history.find((e) => e.type === 'TaskScheduled')!;
    expect(scheduled.taskScheduledEventDetails).toMatchObject({
      resourceType: 'lambda',
      resource: 'invoke',
      timeoutInSeconds: 5,
    });
  });

  test('ends FAILED at the failing state, and a redrive restarts there without running earlier states', async () => {
    const sm = machine();
    failSecond = true;
    const { executionArn } = sm.start('e2', { step: 2, items: [1] });
    const failed = await sm.wait(executionArn);
    expect(failed).toMatchObject({ status: 'FAILED', error: 'SecondError', cause: 'second broke' });
    expect(failed.lastTopLevelState?.name).toBe('Second');
    const failedTask = sm.history(executionArn).find((e) => e.type === 'TaskFailed')!;
    expect(failedTask.taskFailedEventDetails).toMatchObject({ error: 'SecondError', cause: 'second broke' });

    failSecond = false;
    calls = [];
    const redriven = sm.redrive(executionArn);
    const done = await sm.wait(executionArn);

    expect(redriven.executionArn).toBe(executionArn);
    expect(done.status).toBe('SUCCEEDED');
    expect(done.redriveCount).toBe(1);
    expect(calls).toEqual(['second']);
    const types = sm.history(executionArn).map((e) => e.type);
    expect(types.filter((t) => t === 'ExecutionStarted')).toHaveLength(1);
    expect(types).toContain('ExecutionRedriven');
  });

  test('a redriven Map runs again only its iterations that failed; the others keep their results', async () => {
    const sm = machine();
    failEach = [2];
    const { executionArn } = sm.start('e7', { step: 7, items: [1, 2, 3] });
    const failed = await sm.wait(executionArn);
    expect(failed).toMatchObject({ status: 'FAILED', error: 'EachError', lastTopLevelState: { name: 'Fan' } });
    const firstRuns = new Map(
      (failed.nestedSuccesses ?? []).map((s) => [
        (s.result as { item: number }).item,
        (s.result as { run: number }).run,
      ]),
    );
    expect([...firstRuns.keys()].sort()).toEqual([1, 3]);

    calls = [];
    sm.redrive(executionArn);
    const done = await sm.wait(executionArn);

    expect(done.status).toBe('SUCCEEDED');
    expect(calls).toEqual(['each:2', 'second']);
    // The Map's output holds the first attempt's results for 1 and 3, in item order.
    expect((secondGot as { fan: unknown }).fan).toEqual([
      { item: 1, run: firstRuns.get(1) },
      { item: 2, run: 4 },
      { item: 3, run: firstRuns.get(3) },
    ]);
    // History still shows every iteration's task ending, the replayed ones included.
    const succeeded = sm
      .history(executionArn)
      .filter((e) => e.type === 'TaskSucceeded')
      .map((e) => JSON.parse((e.taskSucceededEventDetails as { output: string }).output));
    expect(
      succeeded
        .filter((o) => o.item !== undefined)
        .map((o) => o.item)
        .sort(),
    ).toEqual([1, 1, 2, 3, 3]);
  });

  test('alike iterations: a redrive replays as many successes as there were, and runs the rest', async () => {
    failEach = [5];
    const first = machine();
    const { executionArn } = first.start('e8', { step: 8, items: [5, 5, 5] });
    expect((await first.wait(executionArn)).status).toBe('FAILED');

    // A new runtime (restarted) redrives it from what was saved.
    const { record, ran } = await redriveAndWait(machine(), executionArn);
    expect(record.status).toBe('SUCCEEDED');
    expect(ran).toEqual(['each:5', 'second']);
    expect(fanItems()).toEqual([5, 5, 5]);
  });

  test('a Map redriven twice keeps what succeeded in each earlier attempt', async () => {
    const sm = machine();
    failEach = [2, 2];
    const { executionArn } = sm.start('e10', { step: 10, items: [1, 2, 3] });
    expect((await sm.wait(executionArn)).status).toBe('FAILED');
    const once = await redriveAndWait(sm, executionArn);
    expect(once.record).toMatchObject({ status: 'FAILED', error: 'EachError', redriveCount: 1 });
    expect(once.ran).toEqual(['each:2']);

    const twice = await redriveAndWait(sm, executionArn);
    expect(twice.record.status).toBe('SUCCEEDED');
    expect(twice.ran).toEqual(['each:2', 'second']);
    expect(fanItems()).toEqual([1, 2, 3]);
  });

  test('a task of a run that ended neither saves a success nor shows in the next run', async () => {
    const sm = machine();
    failEach = [1];
    let release!: () => void;
    holdEach = new Map([[2, new Promise<void>((resolve) => (release = resolve))]]);
    const { executionArn } = sm.start('e11', { step: 11, items: [1, 2] });
    // Item 1 fails the Map while item 2's task is still running: the execution ends FAILED.
    expect((await sm.wait(executionArn)).status).toBe('FAILED');
    holdEach = new Map();
    calls = [];
    sm.redrive(executionArn);
    const redriven = await sm.wait(executionArn);
    expect(redriven.status).toBe('SUCCEEDED');
    expect(calls).toEqual(expect.arrayContaining(['each:1', 'each:2', 'second']));
    const history = sm.history(executionArn).length;

    // The first run's task for item 2 ends now: nothing of it is recorded.
    release();
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(sm.history(executionArn)).toHaveLength(history);
    // The Map ended: its successes are dropped, and the late one was not saved after them.
    expect(sm.describe(executionArn).nestedSuccesses).toBeUndefined();
  });

  test('a second redrive still replays what succeeded before the first one', async () => {
    const sm = machine();
    failEach = [1, 2];
    failSecond = false;
    const { executionArn } = sm.start('e9', { step: 9, items: [1, 2, 3] });
    expect((await sm.wait(executionArn)).status).toBe('FAILED');
    // Both 1 and 2 fail in the first attempt (a Map stops at its first failure: 2 may not have run).
    calls = [];
    failSecond = true;
    sm.redrive(executionArn);
    const again = await sm.wait(executionArn);
    expect(again).toMatchObject({ status: 'FAILED', error: 'SecondError' });
    expect(calls).not.toContain('each:3');

    calls = [];
    failSecond = false;
    sm.redrive(executionArn);
    expect((await sm.wait(executionArn)).status).toBe('SUCCEEDED');
    // Second is a top-level state: the redrive restarts there; nothing of the Map runs.
    expect(calls).toEqual(['second']);
  });

  test('fails to redrive a SUCCEEDED execution with ExecutionNotRedrivable', async () => {
    const sm = machine();
    const { executionArn } = sm.start('e3', { step: 3, items: [] });
    await sm.wait(executionArn);
    expect(() => sm.redrive(executionArn)).toThrow(expect.objectContaining({ name: 'ExecutionNotRedrivable' }));
  });

  test('fails to describe an unknown execution with ExecutionDoesNotExist', () => {
    expect(() => machine().describe('arn:aws:states:us-east-1:000000000000:execution:toy:nope')).toThrow(
      expect.objectContaining({ name: 'ExecutionDoesNotExist' }),
    );
  });

  test('StartExecution is idempotent for the same name and input while running, and fails for other input', async () => {
    const sm = machine();
    blockSecond = true;
    const first = sm.start('e4', { step: 4, items: [] });
    expect(sm.start('e4', { step: 4, items: [] }).executionArn).toBe(first.executionArn);
    expect(() => sm.start('e4', { step: 5, items: [] })).toThrow(
      expect.objectContaining({ name: 'ExecutionAlreadyExists' }),
    );
    sm.stop(first.executionArn);
    expect((await sm.wait(first.executionArn)).status).toBe('ABORTED');
  });

  test('stop aborts the running task and the execution ends ABORTED, redrivable', async () => {
    const sm = machine();
    blockSecond = true;
    const { executionArn } = sm.start('e5', { step: 5, items: [] });
    while (!calls.includes('second')) await new Promise((r) => setTimeout(r, 5));

    sm.stop(executionArn, 'Stopped', 'by a test');
    const done = await sm.wait(executionArn);

    expect(done).toMatchObject({ status: 'ABORTED', error: 'Stopped', cause: 'by a test' });
    expect(sm.history(executionArn).at(-1)!.type).toBe('ExecutionAborted');
    blockSecond = false;
    sm.redrive(executionArn);
    expect((await sm.wait(executionArn)).status).toBe('SUCCEEDED');
  });

  test('persists executions and history: a new runtime lists, describes and redrives them', async () => {
    failSecond = true;
    const first = machine();
    const { executionArn } = first.start('e6', { step: 6, items: [1] });
    await first.wait(executionArn);

    failSecond = false;
    const second = machine();
    expect(second.list().map((r) => r.name)).toEqual(['e6']);
    expect(second.history(executionArn).at(-1)!.type).toBe('ExecutionFailed');
    second.redrive(executionArn);
    expect((await second.wait(executionArn)).status).toBe('SUCCEEDED');
  });
});

describe('LocalStateMachine: .waitForTaskToken', () => {
  const WAIT = 'arn:aws:states:::lambda:invoke.waitForTaskToken';
  const waiting: StateMachineDefinition = {
    StartAt: 'Wait',
    States: {
      Wait: {
        Type: 'Task',
        Resource: WAIT,
        Parameters: { 'token.$': '$$.Task.Token', 'name.$': '$.name' },
        ResultSelector: { 'got.$': '$.value' },
        TimeoutSeconds: 10,
        End: true,
      },
    },
  };
  let tokens: string[];

  function waitingMachine(): LocalStateMachine {
    return new LocalStateMachine({
      name: 'waiter',
      definition: waiting,
      region: 'us-east-1',
      account: '000000000000',
      directory: dir,
      resources: {
        [WAIT]: async (parameters, context) => {
          const { token } = parameters as { token: string };
          expect(token).toBe(context.taskToken);
          tokens.push(token);
          return { accepted: true };
        },
      },
    });
  }

  async function tokenOf(): Promise<string> {
    while (tokens.length === 0) await new Promise((r) => setTimeout(r, 5));
    return tokens.shift()!;
  }

  beforeEach(() => {
    tokens = [];
  });

  test('the task waits until SendTaskSuccess and its output is the sent JSON', async () => {
    const sm = waitingMachine();
    const { executionArn } = sm.start('w1', { name: 'a' });
    const token = await tokenOf();
    expect(sm.describe(executionArn).status).toBe('RUNNING');

    sm.sendTaskSuccess(token, JSON.stringify({ value: 42 }));

    const done = await sm.wait(executionArn);
    expect(done.status).toBe('SUCCEEDED');
    expect(JSON.parse(done.output!)).toEqual({ got: 42 });
    // As the Step Functions API reference says: "the task associated with the token has already been closed".
    expect(() => sm.sendTaskSuccess(token, '{}')).toThrow(expect.objectContaining({ name: 'TaskTimedOut' }));
    expect(() => sm.sendTaskSuccess('x'.repeat(64), '{}')).toThrow(
      expect.objectContaining({ name: 'TaskDoesNotExist' }),
    );
    expect(() => sm.sendTaskSuccess('not a token', '{}')).toThrow(expect.objectContaining({ name: 'InvalidToken' }));
  });

  test('SendTaskFailure fails the state with the error and cause sent', async () => {
    const sm = waitingMachine();
    const { executionArn } = sm.start('w2', { name: 'b' });

    sm.sendTaskFailure(await tokenOf(), 'DeployBuildFailed', 'the build failed');

    expect(await sm.wait(executionArn)).toMatchObject({
      status: 'FAILED',
      error: 'DeployBuildFailed',
      cause: 'the build failed',
    });
  });

  test('each start of the task (a redrive included) gets a fresh token', async () => {
    const sm = waitingMachine();
    const { executionArn } = sm.start('w3', { name: 'c' });
    const first = await tokenOf();
    sm.sendTaskFailure(first, 'Boom', 'first attempt');
    await sm.wait(executionArn);

    sm.redrive(executionArn);
    const second = await tokenOf();
    sm.sendTaskSuccess(second, JSON.stringify({ value: 'ok' }));

    expect(second).not.toBe(first);
    expect((await sm.wait(executionArn)).status).toBe('SUCCEEDED');
  });

  test('stopping the execution ends the wait', async () => {
    const sm = waitingMachine();
    const { executionArn } = sm.start('w4', { name: 'd' });
    await tokenOf();

    sm.stop(executionArn);

    expect((await sm.wait(executionArn)).status).toBe('ABORTED');
  });
});

describe('LocalStateMachine: redrive of a Map whose tasks submit (.sync)', () => {
  const SYNC = 'arn:aws:states:::codebuild:startBuild.sync';
  const syncFan = (maxConcurrency?: number): StateMachineDefinition => ({
    StartAt: 'Fan',
    States: {
      Fan: {
        Type: 'Map',
        ItemsPath: '$.items',
        ...(maxConcurrency === undefined ? {} : { MaxConcurrency: maxConcurrency }),
        ItemProcessor: {
          ProcessorConfig: { Mode: 'INLINE' },
          StartAt: 'Build',
          States: {
            Build: { Type: 'Task', Resource: SYNC, Parameters: { 'item.$': '$' }, TimeoutSeconds: 5, End: true },
          },
        },
        End: true,
      },
    },
  });

  /** TaskSubmitted events after `after`, as [iteration, the item its output names]. */
  function submissions(
    sm: LocalStateMachine,
    executionArn: string,
    after: number,
  ): Array<[number | undefined, number]> {
    const history = sm.history(executionArn);
    return history
      .filter((e) => e.id > after && e.type === 'TaskSubmitted')
      .map((e) => [
        iterationOf(history, e.id),
        JSON.parse((e.taskSubmittedEventDetails as { output: string }).output).Build.item,
      ]);
  }

  /** The Map iteration an event belongs to, from its previousEventId chain. */
  function iterationOf(
    history: ReadonlyArray<{
      id: number;
      previousEventId: number;
      type: string;
      mapIterationStartedEventDetails?: unknown;
    }>,
    id: number,
  ): number | undefined {
    const byId = new Map(history.map((e) => [e.id, e]));
    for (let e = byId.get(id); e !== undefined; e = byId.get(e.previousEventId)) {
      if (e.type === 'MapIterationStarted') return (e.mapIterationStartedEventDetails as { index: number }).index;
    }
    return undefined;
  }

  test('each TaskSubmitted stays on its own iteration: a replayed one and one that runs again', async () => {
    // The first attempt: item 20 (iteration 1) succeeds, item 10 (iteration 0) fails after submitting.
    let fail10 = true;
    const build: TaskImplementation = async (parameters, context) => {
      const { item } = parameters as { item: number };
      // The one that really runs submits later than a replay would.
      await new Promise((resolve) => setTimeout(resolve, item === 10 ? 30 : 0));
      context.submitted({ Build: { item } });
      if (item === 10 && fail10) throw Object.assign(new Error('build 10 broke'), { name: 'BuildError' });
      return { Build: { item, status: 'SUCCEEDED' } };
    };
    const sm = new LocalStateMachine({
      name: 'sync',
      definition: syncFan(),
      region: 'us-east-1',
      account: '000000000000',
      directory: dir,
      resources: { [SYNC]: build },
      retryIntervalMs: 0,
    });
    const { executionArn } = sm.start('s1', { items: [10, 20] });
    expect((await sm.wait(executionArn)).status).toBe('FAILED');
    const before = sm.history(executionArn).length;

    fail10 = false;
    sm.redrive(executionArn);
    expect((await sm.wait(executionArn)).status).toBe('SUCCEEDED');

    const history = sm.history(executionArn);
    expect(submissions(sm, executionArn, before).sort()).toEqual([
      [0, 10],
      [1, 20],
    ]);
    // The replayed one's submission comes before its TaskSucceeded, on its thread.
    const replayedEnd = history.filter((e) => e.id > before && iterationOf(history, e.id) === 1).map((e) => e.type);
    expect(replayedEnd.slice(replayedEnd.indexOf('TaskSubmitted'), replayedEnd.indexOf('TaskSubmitted') + 2)).toEqual([
      'TaskSubmitted',
      'TaskSucceeded',
    ]);
  });

  test('tasks the engine still starts after a Map failed submit nothing into the redrive', async () => {
    // One at a time: once item 5 fails the Map, the engine still starts the queued items (6, 7, 8) of the ended run.
    let fail5 = true;
    const build: TaskImplementation = async (parameters, context) => {
      const { item } = parameters as { item: number };
      await new Promise((resolve) => setTimeout(resolve, 5));
      context.submitted({ Build: { item } });
      await new Promise((resolve) => setTimeout(resolve, 5));
      if (item === 5 && fail5) throw Object.assign(new Error('build 5 broke'), { name: 'BuildError' });
      return { Build: { item, status: 'SUCCEEDED' } };
    };
    const sm = new LocalStateMachine({
      name: 'sync1',
      definition: syncFan(1),
      region: 'us-east-1',
      account: '000000000000',
      directory: dir,
      resources: { [SYNC]: build },
      retryIntervalMs: 0,
    });
    const items = [1, 2, 3, 4, 5, 6, 7, 8];
    const { executionArn } = sm.start('s2', { items });
    expect((await sm.wait(executionArn)).status).toBe('FAILED');
    const before = sm.history(executionArn).length;

    fail5 = false;
    sm.redrive(executionArn);
    expect((await sm.wait(executionArn)).status).toBe('SUCCEEDED');
    // Let the first run's stragglers end too.
    await new Promise((resolve) => setTimeout(resolve, 100));

    const submitted = submissions(sm, executionArn, before);
    expect(submitted.every(([iteration, item]) => items[iteration!] === item)).toBe(true);
    expect(submitted.map(([, item]) => item).sort()).toEqual(items);
  });
});

describe('LocalStateMachine: ordering rules', () => {
  const SYNC = 'arn:aws:states:::codebuild:startBuild.sync';

  test('a task that submits as soon as the engine starts the first state gets its TaskSubmitted: the run exists before the engine starts', async () => {
    const build: TaskImplementation = async (parameters, context) => {
      context.submitted({ Build: { id: 'b1' } });
      return { Build: { id: 'b1', parameters } };
    };
    const sm = new LocalStateMachine({
      name: 'first-submits',
      definition: {
        StartAt: 'Build',
        States: { Build: { Type: 'Task', Resource: SYNC, TimeoutSeconds: 5, End: true } },
      },
      region: 'us-east-1',
      account: '000000000000',
      directory: dir,
      resources: { [SYNC]: build },
    });

    const { executionArn } = sm.start('first', {});
    expect((await sm.wait(executionArn)).status).toBe('SUCCEEDED');

    expect(sm.history(executionArn).map((e) => e.type)).toEqual([
      'ExecutionStarted',
      'TaskStateEntered',
      'TaskScheduled',
      'TaskStarted',
      'TaskSubmitted',
      'TaskSucceeded',
      'TaskStateExited',
      'ExecutionSucceeded',
    ]);
  });

  test('a redrive started the moment the execution fails (by a status listener) runs alone: the ended run records nothing more', async () => {
    let redriven = false;
    let sm!: LocalStateMachine;
    const listener = {
      onStatusChange: (record: { status: string; executionArn: string }) => {
        if (record.status !== 'FAILED' || redriven) return;
        redriven = true;
        failSecond = false;
        sm.redrive(record.executionArn);
      },
    };
    sm = new LocalStateMachine({
      name: 'toy',
      definition,
      region: 'us-east-1',
      account: '000000000000',
      directory: dir,
      resources: { [LAMBDA]: invoke },
      listeners: [listener],
      retryIntervalMs: 0,
    });
    failSecond = true;

    const { executionArn } = sm.start('e20', { step: 20, items: [1] });
    await sm.wait(executionArn);
    const done = await sm.wait(executionArn);

    expect(redriven).toBe(true);
    expect(done).toMatchObject({ status: 'SUCCEEDED', redriveCount: 1 });
    const types = sm.history(executionArn).map((e) => e.type);
    expect(types.filter((t) => t === 'ExecutionFailed')).toHaveLength(1);
    expect(types.slice(types.indexOf('ExecutionFailed'), types.indexOf('ExecutionFailed') + 2)).toEqual([
      'ExecutionFailed',
      'ExecutionRedriven',
    ]);
    expect(types.at(-1)).toBe('ExecutionSucceeded');
  });

  test('a stop that comes as the execution ends (by a status listener) changes nothing of the ended execution', async () => {
    let sm!: LocalStateMachine;
    const listener = {
      onStatusChange: (record: { status: string; executionArn: string }) => {
        if (record.status === 'SUCCEEDED') sm.stop(record.executionArn, 'Late.Stop', 'too late');
      },
    };
    sm = new LocalStateMachine({
      name: 'toy',
      definition,
      region: 'us-east-1',
      account: '000000000000',
      directory: dir,
      resources: { [LAMBDA]: invoke },
      listeners: [listener],
    });

    const { executionArn } = sm.start('e21', { step: 21, items: [1] });
    const done = await sm.wait(executionArn);

    expect(done.status).toBe('SUCCEEDED');
    expect(done.error).toBeUndefined();
    expect(done.cause).toBeUndefined();
  });

  test('nothing of an execution stays in memory once it has ended, redriven or not', async () => {
    const sm = machine();
    failSecond = true;
    const first = sm.start('e22', { step: 22, items: [1] });
    const second = sm.start('e23', { step: 23, items: [2] });
    await Promise.all([sm.wait(first.executionArn), sm.wait(second.executionArn)]);
    failSecond = false;
    sm.redrive(first.executionArn);
    expect(sm.runsInMemory).toBe(1);

    await sm.wait(first.executionArn);

    expect(sm.runsInMemory).toBe(0);
    expect(sm.history(first.executionArn).at(-1)?.type).toBe('ExecutionSucceeded');
  });
});
