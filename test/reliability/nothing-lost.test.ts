import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { localS3Environment } from '../../local/s3-client';
import { createHandler as combineSourcesFunction } from '../../tasks/combine-sources/handler';
import { startExampleRuntime, type TestRuntime } from '../helpers/local-runtime';
import {
  etagOf,
  headOf,
  listKeys,
  localBuilds,
  pushCommit,
  readBytes,
  readJson,
  variableOf,
} from '../helpers/reliability';
import { readZip } from '../helpers/zip';

/**
 * Promise: nothing is lost or rewritten. An artifact is written once (conditional writes); the
 * deployment history is append-only, a redrive adds no second entry; the manifest names the
 * commits that were actually built, even when a branch moves between a failure and its redrive.
 */

let t: TestRuntime;
let s3Fault: ((method: string, key: string) => number | undefined) | undefined;

beforeAll(async () => {
  t = await startExampleRuntime(undefined, {
    faults: { s3: (method, _bucket, key) => s3Fault?.(method, key) },
    notify: async () => undefined,
  });
});

afterEach(() => {
  s3Fault = undefined;
});

afterAll(async () => {
  await t.close();
});

async function manifestOf(key: string): Promise<any> {
  const entries = await readZip(await readBytes(t.runtime, key));
  return JSON.parse(entries.find((e) => e.name === 'stepdeploy-manifest.json')!.content);
}

async function statusOf(promise: Promise<unknown>): Promise<string | number | undefined> {
  try {
    await promise;
    return 'written';
  } catch (err) {
    return (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode ?? (err as Error).name;
  }
}

describe('nothing lost', () => {
  test('source.zip is written once: a second conditional write (PutObject or multipart) is refused 412, and a second combine for the same execution with other commits fails without touching it', async () => {
    const name = 'acceptance-written-once';
    const record = await t.run(name, { environment: 'acceptance' });
    expect(record.status).toBe('SUCCEEDED');
    const key = `artifacts/acceptance/${name}/source.zip`;
    const etag = await etagOf(t.runtime, key);

    const put = statusOf(
      t.runtime.s3Client.send(
        new PutObjectCommand({ Bucket: t.runtime.bucket, Key: key, Body: 'overwritten', IfNoneMatch: '*' }),
      ),
    );
    const multipart = statusOf(
      new Upload({
        client: t.runtime.s3Client,
        params: { Bucket: t.runtime.bucket, Key: key, Body: Buffer.alloc(6 * 1024 * 1024, 1), IfNoneMatch: '*' },
        partSize: 5 * 1024 * 1024,
      }).done(),
    );
    // What a second CombineConfigAndCode for this execution would be asked, with another app commit.
    const combineInput = JSON.parse(
      t.runtime.machine
        .history(record.executionArn)
        .map((e) => e.stateEnteredEventDetails as { name: string; input: string } | undefined)
        .find((details) => details?.name === 'CombineConfigAndCode')!.input,
    );
    const otherCommits = combineInput.fetched.map((s: any) =>
      s.name === 'app' ? { ...s, commit: 'f'.repeat(40) } : s,
    );
    // The runtime's CombineConfigAndCode function: its bucket, on its local S3.
    const combineSources = combineSourcesFunction({
      ...localS3Environment(t.runtime.endpoint),
      AWS_REGION: 'us-east-1',
      ARTIFACT_BUCKET: t.runtime.bucket,
    });
    const combined = combineSources({
      environment: combineInput.environment,
      execution: combineInput.execution,
      requestedBy: combineInput.requestedBy,
      account: combineInput.account,
      region: combineInput.region,
      deployRoleArn: combineInput.deployRoleArn,
      variables: combineInput.variables,
      sources: otherCommits,
    });

    expect(await put).toBe(412);
    expect(await multipart).toBe(412);
    await expect(combined).rejects.toMatchObject({
      name: 'ArtifactConflictError',
      message: expect.stringContaining('is never overwritten'),
    });
    expect(await etagOf(t.runtime, key)).toBe(etag);
    expect(await manifestOf(key)).toMatchObject({ execution: name });
  });

  test('deployment history is append-only: RecordDeployment failing after its history entry, then redriven, leaves exactly one entry', async () => {
    const name = 'acceptance-history-once';
    s3Fault = (method, key) => (method === 'PUT' && key === 'deployments/acceptance/current.json' ? 500 : undefined);

    const failed = await t.run(name, { environment: 'acceptance' });

    expect(failed).toMatchObject({ status: 'FAILED', lastTopLevelState: { name: 'RecordDeployment' } });
    const entriesAfterFailure = (await listKeys(t.runtime, 'deployments/acceptance/history/')).filter((k) =>
      k.endsWith(`-${name}.json`),
    );
    expect(entriesAfterFailure).toHaveLength(1);
    const first = await readJson(t.runtime, entriesAfterFailure[0]!);

    s3Fault = undefined;
    t.runtime.machine.redrive(failed.executionArn);
    const done = await t.runtime.machine.wait(failed.executionArn);

    expect(done.status).toBe('SUCCEEDED');
    const entries = (await listKeys(t.runtime, 'deployments/acceptance/history/')).filter((k) =>
      k.endsWith(`-${name}.json`),
    );
    expect(entries).toEqual(entriesAfterFailure);
    expect(await readJson(t.runtime, entries[0]!)).toEqual(first);
    expect(await readJson(t.runtime, 'deployments/acceptance/current.json')).toEqual(first);
  });

  test('the manifest names the commits actually built: a branch moved between the failure and the redrive is not picked up', async () => {
    const name = 'acceptance-branch-moved';
    const appRepo = join(t.dir, '.stepdeploy', 'example-repos', 'app.git');
    const marker = join(t.runtime.home, 'fail-build');
    writeFileSync(marker, 'broken\n');
    const fetchedCommit = headOf(appRepo, 'develop');

    const failed = await t.run(name, { environment: 'acceptance', branches: { app: 'develop' } });
    expect(failed).toMatchObject({ status: 'FAILED', lastTopLevelState: { name: 'BuildTemplates' } });

    const moved = pushCommit(appRepo, 'develop', 'templates/queue.json', '{ "Resources": {} }\n');
    expect(moved).not.toBe(fetchedCommit);
    rmSync(marker);
    t.runtime.machine.redrive(failed.executionArn);
    const done = await t.runtime.machine.wait(failed.executionArn);

    expect(done.status).toBe('SUCCEEDED');
    const manifest = await manifestOf(`artifacts/acceptance/${name}/source.zip`);
    expect(manifest.sources.find((s: any) => s.name === 'app')).toMatchObject({
      branch: 'develop',
      commit: fetchedCommit,
    });
    const current = await readJson(t.runtime, 'deployments/acceptance/current.json');
    expect(current).toMatchObject({ execution: name });
    expect(current.sources).toContainEqual({ name: 'app', branch: 'develop', commit: fetchedCommit });
    const builds = localBuilds(t.runtime.home).filter(
      (b) => b.ProjectName === 'stepdeploy-example-build' && variableOf(b, 'STEPDEPLOY_EXECUTION') === name,
    );
    expect(builds.map((b) => [b.BuildStatus, variableOf(b, 'STEPDEPLOY_COMMIT_APP')])).toEqual([
      ['FAILED', fetchedCommit],
      ['SUCCEEDED', fetchedCommit],
    ]);
    // The moved commit's new template was not deployed.
    expect(
      (await readZip(await readBytes(t.runtime, `artifacts/acceptance/${name}/build.zip`))).map((e) => e.name),
    ).not.toContain('templates/queue.json');
  });
});
