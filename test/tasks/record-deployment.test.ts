import { GetObjectCommand, PutObjectCommand, S3Client, S3ServiceException } from '@aws-sdk/client-s3';
import { mockClient } from 'aws-sdk-client-mock';
import type { DeploymentRecord, RecordDeploymentEvent } from '../../tasks/shared/contracts';
import { handler } from '../../tasks/record-deployment/handler';
import { recordDeployment } from '../../tasks/record-deployment/record-deployment';

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
  requestedBy: 'alice',
  sources: [
    { name: 'app', branch: 'main', path: '.', commit: 'a'.repeat(40), fetchBuildId: 'fetch:1', snapshotKey: `sources/app/${'a'.repeat(40)}.zip` },
    { name: 'config', branch: 'main', path: 'config/', commit: 'b'.repeat(40), fetchBuildId: 'fetch:2', snapshotKey: `sources/config/${'b'.repeat(40)}.zip` },
  ],
  artifactKey: `artifacts/production/${EXECUTION}/source.zip`,
  buildId: 'build:1',
  deployBuildId: 'deploy:1',
};

const record: DeploymentRecord = {
  environment: 'production',
  execution: EXECUTION,
  requestedBy: 'alice',
  deployedAt: '2026-11-29T03:15:00.123Z',
  artifactKey: `artifacts/production/${EXECUTION}/source.zip`,
  buildId: 'build:1',
  deployBuildId: 'deploy:1',
  sources: [
    { name: 'app', branch: 'main', commit: 'a'.repeat(40) },
    { name: 'config', branch: 'main', commit: 'b'.repeat(40) },
  ],
};

const deps = { s3, bucket: BUCKET, now: () => new Date('2026-11-29T03:15:00.123Z') };

function preconditionFailed(): S3ServiceException {
  return new S3ServiceException({ name: 'PreconditionFailed', $fault: 'client', $metadata: { httpStatusCode: 412 }, message: 'At least one of the pre-conditions you specified did not hold' });
}

function bodyOf(json: unknown) {
  return { Body: { transformToString: async () => JSON.stringify(json) } } as never;
}

beforeEach(() => {
  s3Mock.reset();
});

describe('recordDeployment', () => {
  test('claims the execution, appends the history entry, then writes current.json', async () => {
    s3Mock.on(PutObjectCommand).resolves({});

    const result = await recordDeployment(event, deps);

    expect(result).toEqual({ currentKey: CURRENT_KEY, historyKey: HISTORY_KEY });
    const puts = s3Mock.commandCalls(PutObjectCommand).map((call) => call.args[0].input);
    expect(puts.map((put) => put.Key)).toEqual([CLAIM_KEY, HISTORY_KEY, CURRENT_KEY]);
    for (const put of puts) expect(JSON.parse(put.Body as string)).toEqual(record);
    expect(s3Mock).toHaveReceivedCommandWith(PutObjectCommand, { Bucket: BUCKET, Key: CLAIM_KEY, IfNoneMatch: '*', ContentType: 'application/json' });
    expect(s3Mock).toHaveReceivedCommandWith(PutObjectCommand, { Bucket: BUCKET, Key: HISTORY_KEY, IfNoneMatch: '*', ContentType: 'application/json' });
    expect(s3Mock).toHaveReceivedCommandWith(PutObjectCommand, { Bucket: BUCKET, Key: CURRENT_KEY, ContentType: 'application/json' });
    expect(puts[2]!.IfNoneMatch).toBeUndefined();
    expect(s3Mock).not.toHaveReceivedCommand(GetObjectCommand);
  });

  test('on a redrive, reuses the first run\'s record and history key instead of adding an entry', async () => {
    const later = { ...deps, now: () => new Date('2026-11-29T05:00:00Z') };
    s3Mock.on(PutObjectCommand, { Key: CLAIM_KEY }).rejects(preconditionFailed());
    s3Mock.on(PutObjectCommand, { Key: HISTORY_KEY }).rejects(preconditionFailed());
    s3Mock.on(PutObjectCommand, { Key: CURRENT_KEY }).resolves({});
    s3Mock.on(GetObjectCommand, { Bucket: BUCKET, Key: CLAIM_KEY }).resolves(bodyOf(record));

    const result = await recordDeployment(event, later);

    expect(result).toEqual({ currentKey: CURRENT_KEY, historyKey: HISTORY_KEY });
    const keys = s3Mock.commandCalls(PutObjectCommand).map((call) => call.args[0].input.Key);
    expect(keys).toEqual([CLAIM_KEY, HISTORY_KEY, CURRENT_KEY]);
    const current = s3Mock.commandCalls(PutObjectCommand, { Key: CURRENT_KEY })[0]!.args[0].input;
    expect(JSON.parse(current.Body as string)).toEqual(record);
  });

  test('on a redrive after a failure between the claim and the history entry, writes that entry once', async () => {
    s3Mock.on(PutObjectCommand).resolves({});
    s3Mock.on(PutObjectCommand, { Key: CLAIM_KEY }).rejects(preconditionFailed());
    s3Mock.on(GetObjectCommand).resolves(bodyOf(record));

    const result = await recordDeployment(event, { ...deps, now: () => new Date('2026-11-29T05:00:00Z') });

    expect(result.historyKey).toBe(HISTORY_KEY);
    expect(s3Mock).toHaveReceivedCommandTimes(PutObjectCommand, 3);
    expect(s3Mock).toHaveReceivedCommandWith(PutObjectCommand, { Key: HISTORY_KEY, IfNoneMatch: '*' });
  });

  test('fails with the S3 error when a write fails for another reason', async () => {
    const denied = new S3ServiceException({ name: 'AccessDenied', $fault: 'client', $metadata: { httpStatusCode: 403 }, message: 'Access Denied' });
    s3Mock.on(PutObjectCommand).rejects(denied);

    await expect(recordDeployment(event, deps)).rejects.toMatchObject({ name: 'AccessDenied' });
    expect(s3Mock).toHaveReceivedCommandTimes(PutObjectCommand, 1);
  });
});

describe('handler', () => {
  const saved = process.env.ARTIFACT_BUCKET;
  afterEach(() => {
    if (saved === undefined) delete process.env.ARTIFACT_BUCKET;
    else process.env.ARTIFACT_BUCKET = saved;
  });

  test('records into ARTIFACT_BUCKET', async () => {
    process.env.ARTIFACT_BUCKET = BUCKET;
    s3Mock.on(PutObjectCommand).resolves({});

    const result = await handler(event);

    expect(result.currentKey).toBe(CURRENT_KEY);
    expect(s3Mock).toHaveReceivedCommandWith(PutObjectCommand, { Bucket: BUCKET, Key: CURRENT_KEY });
  });

  test('fails naming ARTIFACT_BUCKET when it is not set', async () => {
    delete process.env.ARTIFACT_BUCKET;

    await expect(handler(event)).rejects.toMatchObject({ name: 'EnvironmentVariableError', message: 'ARTIFACT_BUCKET environment variable is not set' });
    expect(s3Mock).not.toHaveReceivedCommand(PutObjectCommand);
  });

  test('fails with InvalidEventError for an event the state machine does not send', async () => {
    process.env.ARTIFACT_BUCKET = BUCKET;

    await expect(handler({ ...event, execution: 'a/b', buildId: undefined })).rejects.toMatchObject({
      name: 'InvalidEventError',
      message: expect.stringMatching(/execution: must be a Step Functions execution name[\s\S]*buildId:/),
    });
    expect(s3Mock).not.toHaveReceivedCommand(PutObjectCommand);
  });
});
