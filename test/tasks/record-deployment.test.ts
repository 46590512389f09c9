import { GetObjectCommand, PutObjectCommand, S3Client, S3ServiceException } from '@aws-sdk/client-s3';
import { mockClient } from 'aws-sdk-client-mock';
import type { DeploymentRecord, RecordDeploymentEvent } from '../../shared/contracts';
import { createHandler } from '../../tasks/record-deployment/handler';
import { CurrentRecordContendedError } from '../../tasks/record-deployment/errors';
import { CURRENT_ATTEMPTS, recordDeployment } from '../../tasks/record-deployment/record-deployment';
import { ConditionalWriteConflictError } from '../../tasks/shared/errors';
import { CONFLICT_ATTEMPTS } from '../../tasks/shared/s3';

const s3Mock = mockClient(S3Client);
const s3 = new S3Client({});
const BUCKET = 'stepdeploy-artifacts';
const EXECUTION = 'production-20261129T031200-abc123';
const CLAIM_KEY = `deployments/production/executions/${EXECUTION}.json`;
const HISTORY_KEY = `deployments/production/history/20261129T031500Z-${EXECUTION}.json`;
const CURRENT_KEY = 'deployments/production/current.json';

const event: RecordDeploymentEvent = {
  environment: 'production',
  execution: EXECUTION,
  startedAt: '2026-11-29T03:12:00.000Z',
  requestedBy: 'alice',
  approval: null,
  redeployOf: null,
  sources: [
    {
      name: 'app',
      branch: 'main',
      path: '.',
      commit: 'a'.repeat(40),
      fetchBuildId: 'fetch:1',
      snapshotKey: `sources/app/${'a'.repeat(40)}.zip`,
    },
    {
      name: 'config',
      branch: 'main',
      path: 'config/',
      commit: 'b'.repeat(40),
      fetchBuildId: 'fetch:2',
      snapshotKey: `sources/config/${'b'.repeat(40)}.zip`,
    },
  ],
  artifactKey: `artifacts/production/${EXECUTION}/source.zip`,
  buildId: 'build:1',
  deployBuildId: 'deploy:1',
};

const record: DeploymentRecord = {
  environment: 'production',
  execution: EXECUTION,
  startedAt: '2026-11-29T03:12:00.000Z',
  requestedBy: 'alice',
  deployedAt: '2026-11-29T03:15:00.123Z',
  artifactKey: `artifacts/production/${EXECUTION}/source.zip`,
  buildId: 'build:1',
  deployBuildId: 'deploy:1',
  sources: [
    { name: 'app', branch: 'main', commit: 'a'.repeat(40) },
    { name: 'config', branch: 'main', commit: 'b'.repeat(40) },
  ],
  approval: null,
  redeployOf: null,
};

const waits: number[] = [];
const deps = {
  s3,
  bucket: BUCKET,
  now: () => new Date('2026-11-29T03:15:00.123Z'),
  sleep: async (ms: number) => void waits.push(ms),
};

function preconditionFailed(): S3ServiceException {
  return new S3ServiceException({
    name: 'PreconditionFailed',
    $fault: 'client',
    $metadata: { httpStatusCode: 412 },
    message: 'At least one of the pre-conditions you specified did not hold',
  });
}

function bodyOf(json: unknown, etag = '"etag-1"') {
  return { ETag: etag, Body: { transformToString: async () => JSON.stringify(json) } } as never;
}

function noSuchKey(): S3ServiceException {
  return new S3ServiceException({
    name: 'NoSuchKey',
    $fault: 'client',
    $metadata: { httpStatusCode: 404 },
    message: 'The specified key does not exist.',
  });
}

function conflict(): S3ServiceException {
  return new S3ServiceException({
    name: 'ConditionalRequestConflict',
    $fault: 'client',
    $metadata: { httpStatusCode: 409 },
    message: 'A conflicting operation occurred. If using PutObject you can retry the request.',
  });
}

beforeEach(() => {
  waits.length = 0;
  s3Mock.reset();
  s3Mock.on(GetObjectCommand, { Key: CURRENT_KEY }).rejects(noSuchKey());
});

describe('recordDeployment', () => {
  test('claims the execution, appends the history entry, then writes current.json', async () => {
    s3Mock.on(PutObjectCommand).resolves({});

    const result = await recordDeployment(event, deps);

    expect(result).toEqual({ currentKey: CURRENT_KEY, historyKey: HISTORY_KEY, current: true });
    const puts = s3Mock.commandCalls(PutObjectCommand).map((call) => call.args[0].input);
    expect(puts.map((put) => put.Key)).toEqual([CLAIM_KEY, HISTORY_KEY, CURRENT_KEY]);
    for (const put of puts) expect(JSON.parse(put.Body as string)).toEqual(record);
    expect(s3Mock).toHaveReceivedCommandWith(PutObjectCommand, {
      Bucket: BUCKET,
      Key: CLAIM_KEY,
      IfNoneMatch: '*',
      ContentType: 'application/json',
    });
    expect(s3Mock).toHaveReceivedCommandWith(PutObjectCommand, {
      Bucket: BUCKET,
      Key: HISTORY_KEY,
      IfNoneMatch: '*',
      ContentType: 'application/json',
    });
    // No current.json yet: created only if still absent.
    expect(s3Mock).toHaveReceivedCommandWith(PutObjectCommand, {
      Bucket: BUCKET,
      Key: CURRENT_KEY,
      ContentType: 'application/json',
      IfNoneMatch: '*',
    });
    expect(s3Mock.commandCalls(GetObjectCommand).map((c) => c.args[0].input.Key)).toEqual([CURRENT_KEY]);
  });

  test('replaces an older current.json only if it is unchanged since read (If-Match)', async () => {
    const older = { ...record, execution: 'production-20261128T000000-old000', startedAt: '2026-11-28T00:00:00.000Z' };
    s3Mock.on(GetObjectCommand, { Key: CURRENT_KEY }).resolves(bodyOf(older, '"older"'));
    s3Mock.on(PutObjectCommand).resolves({ ETag: '"new"' });

    const result = await recordDeployment(event, deps);

    expect(result.current).toBe(true);
    expect(s3Mock).toHaveReceivedCommandWith(PutObjectCommand, { Key: CURRENT_KEY, IfMatch: '"older"' });
  });

  test('keeps current.json when it names a newer execution, and still appends history', async () => {
    const newer = { ...record, execution: 'production-20261129T040000-new000', startedAt: '2026-11-29T04:00:00.000Z' };
    s3Mock.on(GetObjectCommand, { Key: CURRENT_KEY }).resolves(bodyOf(newer));
    s3Mock.on(PutObjectCommand).resolves({});

    const result = await recordDeployment(event, deps);

    expect(result).toEqual({ currentKey: CURRENT_KEY, historyKey: HISTORY_KEY, current: false });
    expect(s3Mock.commandCalls(PutObjectCommand).map((c) => c.args[0].input.Key)).toEqual([CLAIM_KEY, HISTORY_KEY]);
  });

  test('reads current.json again when another writer changed it in between (412), then decides again', async () => {
    const newer = { ...record, execution: 'production-20261129T040000-new000', startedAt: '2026-11-29T04:00:00.000Z' };
    s3Mock.on(GetObjectCommand, { Key: CURRENT_KEY }).rejectsOnce(noSuchKey()).resolves(bodyOf(newer));
    s3Mock.on(PutObjectCommand).resolves({});
    s3Mock.on(PutObjectCommand, { Key: CURRENT_KEY }).rejects(preconditionFailed());

    const result = await recordDeployment(event, deps);

    expect(result.current).toBe(false);
    expect(s3Mock.commandCalls(PutObjectCommand, { Key: CURRENT_KEY })).toHaveLength(1);
  });

  test("on a redrive, reuses the first run's record and history key instead of adding an entry", async () => {
    const later = { ...deps, now: () => new Date('2026-11-29T05:00:00Z') };
    s3Mock.on(PutObjectCommand, { Key: CLAIM_KEY }).rejects(preconditionFailed());
    s3Mock.on(PutObjectCommand, { Key: HISTORY_KEY }).rejects(preconditionFailed());
    s3Mock.on(PutObjectCommand, { Key: CURRENT_KEY }).resolves({});
    s3Mock.on(GetObjectCommand, { Bucket: BUCKET, Key: CLAIM_KEY }).resolves(bodyOf(record));

    const result = await recordDeployment(event, later);

    expect(result).toEqual({ currentKey: CURRENT_KEY, historyKey: HISTORY_KEY, current: true });
    const keys = s3Mock.commandCalls(PutObjectCommand).map((call) => call.args[0].input.Key);
    expect(keys).toEqual([CLAIM_KEY, HISTORY_KEY, CURRENT_KEY]);
    const current = s3Mock.commandCalls(PutObjectCommand, { Key: CURRENT_KEY })[0]!.args[0].input;
    expect(JSON.parse(current.Body as string)).toEqual(record);
  });

  test('on a redrive after a failure between the claim and the history entry, writes that entry once', async () => {
    s3Mock.on(PutObjectCommand).resolves({});
    s3Mock.on(PutObjectCommand, { Key: CLAIM_KEY }).rejects(preconditionFailed());
    s3Mock.on(GetObjectCommand, { Key: CLAIM_KEY }).resolves(bodyOf(record));

    const result = await recordDeployment(event, { ...deps, now: () => new Date('2026-11-29T05:00:00Z') });

    expect(result.historyKey).toBe(HISTORY_KEY);
    expect(s3Mock).toHaveReceivedCommandTimes(PutObjectCommand, 3);
    expect(s3Mock).toHaveReceivedCommandWith(PutObjectCommand, { Key: HISTORY_KEY, IfNoneMatch: '*' });
  });

  test('fails with the S3 error when a write fails for another reason', async () => {
    const denied = new S3ServiceException({
      name: 'AccessDenied',
      $fault: 'client',
      $metadata: { httpStatusCode: 403 },
      message: 'Access Denied',
    });
    s3Mock.on(PutObjectCommand).rejects(denied);

    await expect(recordDeployment(event, deps)).rejects.toMatchObject({ name: 'AccessDenied' });
    expect(s3Mock).toHaveReceivedCommandTimes(PutObjectCommand, 1);
  });
});

describe('recordDeployment when S3 answers 409 ConditionalRequestConflict (retry, as S3 documents) and under contention', () => {
  const putKeys = (): Array<string | undefined> =>
    s3Mock.commandCalls(PutObjectCommand).map((call) => call.args[0].input.Key);

  test('claim: a 409 wrote nothing, so the same put goes again and the first run goes on', async () => {
    s3Mock.on(PutObjectCommand).resolves({});
    s3Mock.on(PutObjectCommand, { Key: CLAIM_KEY }).rejectsOnce(conflict()).resolves({});

    const result = await recordDeployment(event, deps);

    expect(result).toEqual({ currentKey: CURRENT_KEY, historyKey: HISTORY_KEY, current: true });
    expect(putKeys()).toEqual([CLAIM_KEY, CLAIM_KEY, HISTORY_KEY, CURRENT_KEY]);
    expect(s3Mock.commandCalls(GetObjectCommand, { Key: CLAIM_KEY })).toHaveLength(0);
    expect(waits).toHaveLength(1);
  });

  test('claim: a 409 then a 412 (an earlier run claimed it meanwhile) adopts the claimed record, so its history key, not a second entry', async () => {
    const firstRun = { ...record, deployedAt: '2026-11-29T03:14:00.000Z' };
    s3Mock.on(PutObjectCommand).resolves({});
    s3Mock.on(PutObjectCommand, { Key: CLAIM_KEY }).rejectsOnce(conflict()).rejects(preconditionFailed());
    s3Mock.on(GetObjectCommand, { Key: CLAIM_KEY }).resolves(bodyOf(firstRun));

    const result = await recordDeployment(event, deps);

    const firstRunHistory = `deployments/production/history/20261129T031400Z-${EXECUTION}.json`;
    expect(result.historyKey).toBe(firstRunHistory);
    expect(putKeys()).toEqual([CLAIM_KEY, CLAIM_KEY, firstRunHistory, CURRENT_KEY]);
    const current = s3Mock.commandCalls(PutObjectCommand, { Key: CURRENT_KEY })[0]!.args[0].input;
    expect(JSON.parse(current.Body as string)).toEqual(firstRun);
  });

  test('history entry: 409 twice, then written once', async () => {
    s3Mock.on(PutObjectCommand).resolves({});
    s3Mock.on(PutObjectCommand, { Key: HISTORY_KEY }).rejectsOnce(conflict()).rejectsOnce(conflict()).resolves({});

    const result = await recordDeployment(event, deps);

    expect(result.current).toBe(true);
    expect(putKeys()).toEqual([CLAIM_KEY, HISTORY_KEY, HISTORY_KEY, HISTORY_KEY, CURRENT_KEY]);
    for (const call of s3Mock.commandCalls(PutObjectCommand, { Key: HISTORY_KEY }))
      expect(call.args[0].input.IfNoneMatch).toBe('*');
  });

  test('history entry: 409 on every attempt fails with ConditionalWriteConflictError naming the key, and current.json is not touched', async () => {
    s3Mock.on(PutObjectCommand).resolves({});
    s3Mock.on(PutObjectCommand, { Key: HISTORY_KEY }).rejects(conflict());

    const error = await recordDeployment(event, deps).catch((err: unknown) => err);

    expect(error).toBeInstanceOf(ConditionalWriteConflictError);
    expect((error as Error).name).toBe('ConditionalWriteConflictError');
    expect((error as Error).message).toContain(`s3://${BUCKET}/${HISTORY_KEY}`);
    expect(s3Mock.commandCalls(PutObjectCommand, { Key: HISTORY_KEY })).toHaveLength(CONFLICT_ATTEMPTS);
    expect(s3Mock.commandCalls(PutObjectCommand, { Key: CURRENT_KEY })).toHaveLength(0);
    expect(waits).toHaveLength(CONFLICT_ATTEMPTS - 1);
    for (const ms of waits) expect(ms).toBeLessThanOrEqual(2000);
  });

  test('current.json: a 409 reads the ETag again (as S3 says) and the If-Match put on it succeeds', async () => {
    const older = { ...record, execution: 'production-20261128T000000-old000', startedAt: '2026-11-28T00:00:00.000Z' };
    s3Mock.on(PutObjectCommand).resolves({});
    s3Mock
      .on(GetObjectCommand, { Key: CURRENT_KEY })
      .resolvesOnce(bodyOf(older, '"etag-1"'))
      .resolves(bodyOf(older, '"etag-2"'));
    s3Mock.on(PutObjectCommand, { Key: CURRENT_KEY }).rejectsOnce(conflict()).resolves({ ETag: '"etag-3"' });

    const result = await recordDeployment(event, deps);

    expect(result.current).toBe(true);
    expect(s3Mock.commandCalls(GetObjectCommand, { Key: CURRENT_KEY })).toHaveLength(2);
    expect(
      s3Mock.commandCalls(PutObjectCommand, { Key: CURRENT_KEY }).map((call) => call.args[0].input.IfMatch),
    ).toEqual(['"etag-1"', '"etag-2"']);
  });

  test('current.json: after a 409 the record read again names a newer execution, so it is kept', async () => {
    const newer = { ...record, execution: 'production-20261129T040000-new000', startedAt: '2026-11-29T04:00:00.000Z' };
    s3Mock.on(PutObjectCommand).resolves({});
    s3Mock.on(GetObjectCommand, { Key: CURRENT_KEY }).rejectsOnce(noSuchKey()).resolves(bodyOf(newer));
    s3Mock.on(PutObjectCommand, { Key: CURRENT_KEY }).rejects(conflict());

    const result = await recordDeployment(event, deps);

    expect(result.current).toBe(false);
    expect(s3Mock.commandCalls(PutObjectCommand, { Key: CURRENT_KEY })).toHaveLength(1);
  });

  test.each([
    [
      'another write came first every time (412)',
      preconditionFailed,
      /5 lost to another write \(412 PreconditionFailed\), 0 met a conflicting operation/,
    ],
    [
      'S3 answered 409 every time',
      conflict,
      /0 lost to another write \(412 PreconditionFailed\), 5 met a conflicting operation \(409/,
    ],
  ])(
    'current.json: gives up with CurrentRecordContendedError when %s, having read it again before each attempt',
    async (_what, lose, message) => {
      s3Mock.on(PutObjectCommand).resolves({});
      s3Mock.on(PutObjectCommand, { Key: CURRENT_KEY }).rejects(lose());

      const error = await recordDeployment(event, deps).catch((err: unknown) => err);

      expect(error).toBeInstanceOf(CurrentRecordContendedError);
      expect((error as Error).name).toBe('CurrentRecordContendedError');
      expect((error as Error).message).toMatch(message);
      expect((error as Error).message).toContain('redrive RecordDeployment');
      expect(s3Mock.commandCalls(PutObjectCommand, { Key: CURRENT_KEY })).toHaveLength(CURRENT_ATTEMPTS);
      expect(s3Mock.commandCalls(GetObjectCommand, { Key: CURRENT_KEY })).toHaveLength(CURRENT_ATTEMPTS);
      expect(waits).toHaveLength(CURRENT_ATTEMPTS - 1);
    },
  );
});

describe('handler', () => {
  test('records into ARTIFACT_BUCKET', async () => {
    s3Mock.on(PutObjectCommand).resolves({});

    const result = await createHandler({ ARTIFACT_BUCKET: BUCKET })(event);

    expect(result.currentKey).toBe(CURRENT_KEY);
    expect(s3Mock).toHaveReceivedCommandWith(PutObjectCommand, { Bucket: BUCKET, Key: CURRENT_KEY });
  });

  test('fails naming ARTIFACT_BUCKET when it is not set', async () => {
    await expect(createHandler({})(event)).rejects.toMatchObject({
      name: 'EnvironmentVariableError',
      message: 'ARTIFACT_BUCKET environment variable is not set',
    });
    expect(s3Mock).not.toHaveReceivedCommand(PutObjectCommand);
  });

  test('fails with InvalidEventError for an event the state machine does not send', async () => {
    const handler = createHandler({ ARTIFACT_BUCKET: BUCKET });

    await expect(handler({ ...event, execution: 'a/b', buildId: undefined })).rejects.toMatchObject({
      name: 'InvalidEventError',
      message: expect.stringMatching(/execution: must be a Step Functions execution name[\s\S]*buildId:/),
    });
    expect(s3Mock).not.toHaveReceivedCommand(PutObjectCommand);
  });
});
