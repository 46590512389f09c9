import { conflictsOnConditionalWrites, type ConditionalWrite } from '../../local/faults';
import { compareExecutions } from '../../tasks/shared/deployment-order';
import type { ExecutionRecord } from '../../local/executions';
import { startExampleRuntime, type TestRuntime } from '../helpers/local-runtime';
import { listKeys, readBytes, readJson, taskFailures, within } from '../helpers/reliability';
import { readZip } from '../helpers/zip';

/**
 * Promise: S3's 409 ConditionalRequestConflict loses nothing. S3 may answer any conditional write
 * 409 when a conflicting operation meets it, and says to write again (a new multipart upload for
 * a Complete). Here the local S3 answers 409 to chosen conditional writes (FaultPlan.conditionalWrite)
 * of the artifact (source.zip), the execution's claim, its history entry and current.json: the
 * executions still succeed, each record is written once, current.json names the newest, and
 * an artifact is only ever written by a conditional write. The deploy lease's own 409s are
 * tested with the lease (one-deploy-per-environment).
 */

let t: TestRuntime;
/** Every conditional write the local S3 received. */
const conditional: ConditionalWrite[] = [];
/** Every write request (PutObject, CompleteMultipartUpload) to a source.zip, conditional or not. */
const artifactWrites: string[] = [];
let conflicts: ((write: ConditionalWrite) => boolean) | undefined;

beforeAll(async () => {
  t = await startExampleRuntime(undefined, {
    // DeployLeaseBusyError is retried up to 120 times: at 250 ms, the local waiting budget.
    retryIntervalMs: 250,
    notify: async () => undefined,
    faults: {
      conditionalWrite: (write) => {
        conditional.push(write);
        return conflicts?.(write) ?? false;
      },
      s3: (method, _bucket, key, query) => {
        const put = method === 'PUT' && !query.has('uploadId');
        const complete = method === 'POST' && query.has('uploadId');
        if (key.endsWith('/source.zip') && (put || complete)) artifactWrites.push(key);
        return undefined;
      },
    },
  });
});

afterEach(() => {
  conflicts = undefined;
});

afterAll(async () => {
  await t.close();
});

async function manifestOf(key: string): Promise<{ environment: string; execution: string }> {
  const entries = await readZip(await readBytes(t.runtime, key));
  return JSON.parse(entries.find((e) => e.name === 'stepdeploy-manifest.json')!.content);
}

async function historyOf(environment: string): Promise<Array<{ execution: string; deployedAt: string }>> {
  const keys = await listKeys(t.runtime, `deployments/${environment}/history/`);
  return Promise.all(keys.map((key) => readJson(t.runtime, key)));
}

const ordered = (r: ExecutionRecord) => ({ execution: r.name, startedAt: new Date(r.startDate).toISOString() });

describe('S3 409 ConditionalRequestConflict on the conditional writes (nothing lost)', () => {
  test('an execution whose artifact, claim, history entry and current.json each get two 409s first succeeds, each written once', async () => {
    const name = 'acceptance-conflicted';
    const artifactKey = `artifacts/acceptance/${name}/source.zip`;
    const injections = [
      conflictsOnConditionalWrites({ keyPrefix: artifactKey, count: 2 }),
      conflictsOnConditionalWrites({ keyPrefix: `deployments/acceptance/executions/${name}.json`, count: 2 }),
      conflictsOnConditionalWrites({ keyPrefix: 'deployments/acceptance/history/', count: 2 }),
      conflictsOnConditionalWrites({ keyPrefix: 'deployments/acceptance/current.json', count: 2 }),
    ];
    conflicts = (write) => injections.some((inject) => inject(write));

    const record = await within(60_000, name, t.run(name, { environment: 'acceptance' }));

    expect([record.status, record.error]).toEqual(['SUCCEEDED', undefined]);
    // The 409s happened: two on each of the four records.
    expect(injections.map((inject) => inject.injected.length)).toEqual([2, 2, 2, 2]);
    // S3 was asked again: each step retried inside its Lambda, no Task attempt failed.
    const events = t.runtime.machine.history(record.executionArn);
    expect(taskFailures(events, 'CombineConfigAndCode')).toEqual([]);
    expect(taskFailures(events, 'RecordDeployment')).toEqual([]);
    // Each record once: the claim, one history entry (the claim's time), current.json naming it.
    const claim = await readJson(t.runtime, `deployments/acceptance/executions/${name}.json`);
    const mine = (await historyOf('acceptance')).filter((entry) => entry.execution === name);
    expect(mine).toEqual([claim]);
    expect(await readJson(t.runtime, 'deployments/acceptance/current.json')).toEqual(claim);
    // The artifact: written by its third conditional write, the only writes it ever got.
    expect((await manifestOf(artifactKey)).execution).toBe(name);
    expect(artifactWrites.filter((key) => key === artifactKey)).toHaveLength(3);
    expect(conditional.filter((write) => write.key === artifactKey).map((write) => write.ifNoneMatch)).toEqual([
      '*',
      '*',
      '*',
    ]);
  }, 90_000);

  test("409 on every write of current.json: RecordDeployment gives up with CurrentRecordContendedError after the state machine's retries, and a redrive with S3 well again records it once", async () => {
    const name = 'acceptance-current-contended';
    const currentKey = 'deployments/acceptance/current.json';
    const injection = conflictsOnConditionalWrites({ keyPrefix: currentKey, count: Infinity });
    conflicts = injection;

    const failed = await within(60_000, name, t.run(name, { environment: 'acceptance' }));

    expect(failed).toMatchObject({
      status: 'FAILED',
      error: 'CurrentRecordContendedError',
      lastTopLevelState: { name: 'RecordDeployment' },
    });
    // The first attempt and the 4 retries of the definition, each of 5 writes in the task.
    const events = t.runtime.machine.history(failed.executionArn);
    expect(taskFailures(events, 'RecordDeployment')).toEqual(Array(5).fill('CurrentRecordContendedError'));
    expect(injection.injected).toHaveLength(25);
    const current = await readJson(t.runtime, currentKey).catch(() => undefined);
    expect(current?.execution).not.toBe(name);

    conflicts = undefined;
    t.runtime.machine.redrive(failed.executionArn);
    const done = await within(60_000, `the redrive of ${name}`, t.runtime.machine.wait(failed.executionArn));

    expect(done.status).toBe('SUCCEEDED');
    const mine = (await historyOf('acceptance')).filter((entry) => entry.execution === name);
    expect(mine).toHaveLength(1);
    expect(await readJson(t.runtime, currentKey)).toEqual(mine[0]);
  }, 90_000);

  test('four concurrent executions to one environment with the first 409s spread over their records: every one deployed or was superseded, a history entry per deploy, current.json names the newest', async () => {
    const names = [1, 2, 3, 4].map((i) => `preproduction-conflict${i}`);
    const artifacts = conflictsOnConditionalWrites({ keyPrefix: 'artifacts/preproduction/', count: 4 });
    // The deploy lease (lease.json) is left alone: its 409s are the lease's own tests.
    const records = conflictsOnConditionalWrites({ keyPrefix: 'deployments/preproduction/', count: 8 });
    conflicts = (write) => artifacts(write) || (!write.key.endsWith('/lease.json') && records(write));

    const ends = await within(
      120_000,
      'the four executions',
      Promise.all(
        names.map((name) => {
          const { executionArn } = t.runtime.machine.start(name, {
            environment: 'preproduction',
            branches: { app: 'main', config: 'main' },
          });
          return t.runtime.machine.wait(executionArn);
        }),
      ),
    );

    for (const end of ends) {
      // The cause is part of what is compared, so that a failure shows it.
      expect([end.name, end.status === 'SUCCEEDED' ? 'SUCCEEDED' : `${end.status} ${end.error}: ${end.cause}`]).toEqual(
        [end.name, expect.stringMatching(/^(SUCCEEDED|FAILED DeploySupersededError: [\s\S]*)$/)],
      );
    }
    expect(artifacts.injected).toHaveLength(4);
    expect(records.injected).toHaveLength(8);
    const deployed = ends
      .filter((end) => end.status === 'SUCCEEDED')
      .map((end) => end.name)
      .sort();
    // One history entry per deployed execution: none lost, none twice.
    expect((await historyOf('preproduction')).map((entry) => entry.execution).sort()).toEqual(deployed);
    const newest = [...ends].sort((a, b) => compareExecutions(ordered(a), ordered(b))).at(-1)!;
    expect(newest.status).toBe('SUCCEEDED');
    expect(await readJson(t.runtime, 'deployments/preproduction/current.json')).toMatchObject({
      execution: newest.name,
    });
    // Every artifact names its execution and was only ever written by conditional writes.
    for (const name of names) {
      const key = `artifacts/preproduction/${name}/source.zip`;
      expect((await manifestOf(key)).execution).toBe(name);
      expect(artifactWrites.filter((k) => k === key)).toHaveLength(
        conditional.filter((write) => write.key === key).length,
      );
    }
  }, 150_000);
});
