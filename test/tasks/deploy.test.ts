import { BatchGetBuildsCommand, CodeBuildClient, StartBuildCommand, StopBuildCommand } from '@aws-sdk/client-codebuild';
import { GetObjectCommand, PutObjectCommand, S3Client, S3ServiceException } from '@aws-sdk/client-s3';
import { mockClient } from 'aws-sdk-client-mock';
import { deploy, type DeployEvent } from '../../tasks/deploy/deploy';
import { DeployLeaseBusyError, DeploySupersededError } from '../../tasks/deploy/errors';
import type { DeployLease } from '../../tasks/deploy/lease';
import type { DeploymentRecord } from '../../tasks/shared/contracts';

const s3Mock = mockClient(S3Client);
const codebuildMock = mockClient(CodeBuildClient);
const s3 = new S3Client({});
const codebuild = new CodeBuildClient({});

const BUCKET = 'shop-artifacts';
const PROJECT = 'shop-deploy';
const LEASE_KEY = 'deployments/acceptance/lease.json';
const CURRENT_KEY = 'deployments/acceptance/current.json';
const NOW = new Date('2026-11-29T10:00:00.000Z');
const LEASE_SECONDS = 4200;

const event: DeployEvent = {
  taskToken: 'token-mine',
  environment: 'acceptance',
  execution: 'acceptance-20261129T095000-bbbbbb',
  startedAt: '2026-11-29T09:50:00.000Z',
  source: `${BUCKET}/artifacts/acceptance/acceptance-20261129T095000-bbbbbb/build.zip`,
  environmentVariables: [
    { Name: 'ENVIRONMENT', Type: 'PLAINTEXT', Value: 'acceptance' },
    { Name: 'STEPDEPLOY_EXECUTION', Type: 'PLAINTEXT', Value: 'acceptance-20261129T095000-bbbbbb' },
  ],
};

const deps = { s3, codebuild, bucket: BUCKET, projectName: PROJECT, leaseSeconds: LEASE_SECONDS, now: () => NOW };

/** An execution older than `event`, and one newer. */
const OLDER = { execution: 'acceptance-20261129T094000-aaaaaa', startedAt: '2026-11-29T09:40:00.000Z' };
const NEWER = { execution: 'acceptance-20261129T095500-cccccc', startedAt: '2026-11-29T09:55:00.000Z' };

function lease(fields: Partial<DeployLease>): DeployLease {
  return {
    environment: 'acceptance',
    ...OLDER,
    taskToken: 'token-other',
    acquiredAt: '2026-11-29T09:45:00.000Z',
    expiresAt: '2026-11-29T10:55:00.000Z',
    ...fields,
  };
}

function deployed(fields: Partial<DeploymentRecord>): DeploymentRecord {
  return {
    environment: 'acceptance',
    ...OLDER,
    requestedBy: null,
    deployedAt: '2026-11-29T09:48:00.000Z',
    artifactKey: 'artifacts/acceptance/x/source.zip',
    buildId: 'shop-build:1',
    deployBuildId: 'shop-deploy:1',
    sources: [],
    ...fields,
  };
}

function s3Error(name: string, status: number): S3ServiceException {
  return new S3ServiceException({ name, $fault: 'client', $metadata: { httpStatusCode: status }, message: name });
}

function bodyOf(json: unknown, etag: string) {
  return { ETag: etag, Body: { transformToString: async () => JSON.stringify(json) } } as never;
}

/** The leases written, in order, with the condition each write carried. */
function leaseWrites(): Array<{ lease: DeployLease; ifMatch?: string; ifNoneMatch?: string }> {
  return s3Mock.commandCalls(PutObjectCommand, { Key: LEASE_KEY }).map((call) => ({
    lease: JSON.parse(String(call.args[0].input.Body)) as DeployLease,
    ifMatch: call.args[0].input.IfMatch,
    ifNoneMatch: call.args[0].input.IfNoneMatch,
  }));
}

beforeEach(() => {
  s3Mock.reset();
  codebuildMock.reset();
  s3Mock.on(GetObjectCommand, { Key: CURRENT_KEY }).rejects(s3Error('NoSuchKey', 404));
  s3Mock.on(GetObjectCommand, { Key: LEASE_KEY }).rejects(s3Error('NoSuchKey', 404));
  s3Mock.on(PutObjectCommand, { Key: LEASE_KEY }).resolves({ ETag: '"etag-taken"' });
  codebuildMock.on(StartBuildCommand).resolves({ build: { id: 'shop-deploy:new' } });
  codebuildMock.on(StopBuildCommand).resolves({});
});

describe('deploy: taking the environment lease', () => {
  test('takes a free lease with If-None-Match, starts the deploy build and records its id with If-Match', async () => {
    const started = await deploy(event, deps);

    expect(started).toEqual({ buildId: 'shop-deploy:new' });
    const writes = leaseWrites();
    expect(writes).toHaveLength(2);
    expect(writes[0]).toMatchObject({ ifNoneMatch: '*', ifMatch: undefined });
    expect(writes[0]!.lease).toEqual({
      environment: 'acceptance',
      execution: event.execution,
      startedAt: event.startedAt,
      taskToken: 'token-mine',
      acquiredAt: NOW.toISOString(),
      expiresAt: new Date(NOW.getTime() + LEASE_SECONDS * 1000).toISOString(),
    });
    expect(writes[1]).toMatchObject({ ifMatch: '"etag-taken"', lease: { buildId: 'shop-deploy:new', taskToken: 'token-mine' } });
    expect(codebuildMock).toHaveReceivedCommandWith(StartBuildCommand, {
      projectName: PROJECT,
      sourceTypeOverride: 'S3',
      sourceLocationOverride: event.source,
      environmentVariablesOverride: [
        { name: 'ENVIRONMENT', value: 'acceptance', type: 'PLAINTEXT' },
        { name: 'STEPDEPLOY_EXECUTION', value: event.execution, type: 'PLAINTEXT' },
      ],
    });
    expect(codebuildMock).not.toHaveReceivedCommand(StopBuildCommand);
  });

  test('takes a released lease with If-Match on its ETag, without asking CodeBuild about its build', async () => {
    s3Mock.on(GetObjectCommand, { Key: LEASE_KEY }).resolves(bodyOf(lease({ buildId: 'shop-deploy:old', released: true }), '"etag-released"'));

    await deploy(event, deps);

    expect(leaseWrites()[0]).toMatchObject({ ifMatch: '"etag-released"', ifNoneMatch: undefined, lease: { execution: event.execution } });
    expect(codebuildMock).not.toHaveReceivedCommand(BatchGetBuildsCommand);
    expect(codebuildMock).not.toHaveReceivedCommand(StopBuildCommand);
  });

  test('takes an expired lease (its holder vanished) with If-Match', async () => {
    s3Mock.on(GetObjectCommand, { Key: LEASE_KEY }).resolves(bodyOf(lease({ buildId: 'shop-deploy:old', expiresAt: '2026-11-29T09:59:59.999Z' }), '"etag-expired"'));

    await deploy(event, deps);

    expect(leaseWrites()[0]).toMatchObject({ ifMatch: '"etag-expired"', lease: { execution: event.execution } });
    expect(codebuildMock).not.toHaveReceivedCommand(BatchGetBuildsCommand);
  });

  test('takes a stale lease whose build is complete per BatchGetBuilds (its completion event was lost)', async () => {
    s3Mock.on(GetObjectCommand, { Key: LEASE_KEY }).resolves(bodyOf(lease({ buildId: 'shop-deploy:old' }), '"etag-stale"'));
    codebuildMock.on(BatchGetBuildsCommand).resolves({ builds: [{ id: 'shop-deploy:old', buildComplete: true, buildStatus: 'SUCCEEDED' }] });

    await deploy(event, deps);

    expect(codebuildMock).toHaveReceivedCommandWith(BatchGetBuildsCommand, { ids: ['shop-deploy:old'] });
    expect(leaseWrites()[0]).toMatchObject({ ifMatch: '"etag-stale"', lease: { execution: event.execution } });
    expect(codebuildMock).toHaveReceivedCommandTimes(StartBuildCommand, 1);
  });

  test('takes a lease whose holder crashed between taking it and starting its build (no build after the grace period)', async () => {
    s3Mock.on(GetObjectCommand, { Key: LEASE_KEY }).resolves(bodyOf(lease({ acquiredAt: '2026-11-29T09:54:59.000Z' }), '"etag-nobuild"'));

    await deploy(event, deps);

    expect(leaseWrites()[0]).toMatchObject({ ifMatch: '"etag-nobuild"' });
  });
});

describe('deploy: fails when the environment is not free', () => {
  test('fails DeployLeaseBusyError (retried by the state machine) while an older execution deploys', async () => {
    s3Mock.on(GetObjectCommand, { Key: LEASE_KEY }).resolves(bodyOf(lease({ buildId: 'shop-deploy:old' }), '"etag-busy"'));
    codebuildMock.on(BatchGetBuildsCommand).resolves({ builds: [{ id: 'shop-deploy:old', buildComplete: false, buildStatus: 'IN_PROGRESS' }] });

    const attempt = deploy(event, deps);

    await expect(attempt).rejects.toThrow(DeployLeaseBusyError);
    await expect(attempt).rejects.toThrow(`${OLDER.execution} (started ${OLDER.startedAt}) is deploying (build shop-deploy:old)`);
    expect(s3Mock).not.toHaveReceivedCommand(PutObjectCommand);
    expect(codebuildMock).not.toHaveReceivedCommand(StartBuildCommand);
  });

  test('fails DeployLeaseBusyError while an older execution holds a lease it took moments ago (build starting)', async () => {
    s3Mock.on(GetObjectCommand, { Key: LEASE_KEY }).resolves(bodyOf(lease({ acquiredAt: '2026-11-29T09:59:30.000Z' }), '"etag-starting"'));

    await expect(deploy(event, deps)).rejects.toThrow(/is deploying \(build starting\)/);
    expect(s3Mock).not.toHaveReceivedCommand(PutObjectCommand);
  });

  test('fails DeploySupersededError (not retried) while a newer execution holds the lease', async () => {
    s3Mock.on(GetObjectCommand, { Key: LEASE_KEY }).resolves(bodyOf(lease({ ...NEWER, buildId: 'shop-deploy:newer' }), '"etag-newer"'));
    codebuildMock.on(BatchGetBuildsCommand).resolves({ builds: [{ id: 'shop-deploy:newer', buildComplete: false }] });

    const attempt = deploy(event, deps);

    await expect(attempt).rejects.toThrow(DeploySupersededError);
    await expect(attempt).rejects.toThrow(`the newer execution ${NEWER.execution}`);
    expect(s3Mock).not.toHaveReceivedCommand(PutObjectCommand);
    expect(codebuildMock).not.toHaveReceivedCommand(StartBuildCommand);
  });

  test('fails DeploySupersededError when a newer execution has already deployed and released the lease, before it records current.json', async () => {
    // The newer execution's deploy build ended and gave the lease back; its RecordDeployment has not run yet.
    s3Mock.on(GetObjectCommand, { Key: CURRENT_KEY }).resolves(bodyOf(deployed(OLDER), '"etag-current"'));
    s3Mock.on(GetObjectCommand, { Key: LEASE_KEY }).resolves(bodyOf(lease({ ...NEWER, buildId: 'shop-deploy:newer', released: true, outcome: 'SUCCEEDED' }), '"etag-released"'));

    await expect(deploy(event, deps)).rejects.toThrow(DeploySupersededError);
    expect(s3Mock).not.toHaveReceivedCommand(PutObjectCommand);
    expect(codebuildMock).not.toHaveReceivedCommand(StartBuildCommand);
  });

  test('fails DeploySupersededError when a newer execution holds an expired lease (it reached Deploy first)', async () => {
    s3Mock.on(GetObjectCommand, { Key: LEASE_KEY }).resolves(bodyOf(lease({ ...NEWER, expiresAt: '2026-11-29T09:00:00.000Z' }), '"etag-expired"'));

    await expect(deploy(event, deps)).rejects.toThrow(DeploySupersededError);
    expect(codebuildMock).not.toHaveReceivedCommand(StartBuildCommand);
  });

  test('fails DeploySupersededError when current.json names a newer execution, even with the lease free', async () => {
    s3Mock.on(GetObjectCommand, { Key: CURRENT_KEY }).resolves(bodyOf(deployed(NEWER), '"etag-current"'));

    const attempt = deploy(event, deps);

    await expect(attempt).rejects.toThrow(DeploySupersededError);
    await expect(attempt).rejects.toThrow(`the newer execution ${NEWER.execution} (started ${NEWER.startedAt}) is already deployed there`);
    expect(s3Mock).not.toHaveReceivedCommand(PutObjectCommand);
    expect(codebuildMock).not.toHaveReceivedCommand(StartBuildCommand);
  });

  test('orders executions started at the same second by name: the later name is newer', async () => {
    s3Mock.on(GetObjectCommand, { Key: CURRENT_KEY }).resolves(bodyOf(deployed({ execution: `${event.execution}-z`, startedAt: event.startedAt }), '"etag-current"'));

    await expect(deploy(event, deps)).rejects.toThrow(DeploySupersededError);
  });

  test('deploys when current.json names an older execution, or this very one (a redrive after RecordDeployment failed)', async () => {
    s3Mock.on(GetObjectCommand, { Key: CURRENT_KEY }).resolvesOnce(bodyOf(deployed(OLDER), '"e1"')).resolves(bodyOf(deployed({ execution: event.execution, startedAt: event.startedAt }), '"e2"'));

    await expect(deploy(event, deps)).resolves.toEqual({ buildId: 'shop-deploy:new' });
    await expect(deploy(event, deps)).resolves.toEqual({ buildId: 'shop-deploy:new' });
  });
});

describe('deploy: races and failures', () => {
  test('reads the lease again when another writer wins the conditional write (412), then decides again', async () => {
    s3Mock
      .on(GetObjectCommand, { Key: LEASE_KEY })
      .rejectsOnce(s3Error('NoSuchKey', 404))
      .resolves(bodyOf(lease({ buildId: 'shop-deploy:old', released: true }), '"etag-2"'));
    s3Mock
      .on(PutObjectCommand, { Key: LEASE_KEY })
      .rejectsOnce(s3Error('PreconditionFailed', 412))
      .resolves({ ETag: '"etag-taken"' });

    const started = await deploy(event, deps);

    expect(started).toEqual({ buildId: 'shop-deploy:new' });
    expect(s3Mock).toHaveReceivedCommandTimes(GetObjectCommand, 4); // current + lease, twice
    expect(leaseWrites().map((w) => w.ifNoneMatch ?? w.ifMatch)).toEqual(['*', '"etag-2"', '"etag-taken"']);
    expect(codebuildMock).toHaveReceivedCommandTimes(StartBuildCommand, 1);
  });

  test('a 412 race lost to an older execution that now deploys fails DeployLeaseBusyError, without starting a build', async () => {
    s3Mock
      .on(GetObjectCommand, { Key: LEASE_KEY })
      .rejectsOnce(s3Error('NoSuchKey', 404))
      .resolves(bodyOf(lease({ acquiredAt: '2026-11-29T09:59:59.000Z' }), '"etag-2"'));
    s3Mock.on(PutObjectCommand, { Key: LEASE_KEY }).rejectsOnce(s3Error('PreconditionFailed', 412));

    await expect(deploy(event, deps)).rejects.toThrow(DeployLeaseBusyError);
    expect(codebuildMock).not.toHaveReceivedCommand(StartBuildCommand);
  });

  test('gives up with DeployLeaseBusyError when the lease changes on every one of its attempts', async () => {
    s3Mock.on(PutObjectCommand, { Key: LEASE_KEY }).rejects(s3Error('PreconditionFailed', 412));

    await expect(deploy(event, deps)).rejects.toThrow(/the deploy lease changed 5 times/);
    expect(s3Mock).toHaveReceivedCommandTimes(PutObjectCommand, 5);
    expect(codebuildMock).not.toHaveReceivedCommand(StartBuildCommand);
  });

  test('releases the lease and rethrows when StartBuild fails, so the environment is not left locked', async () => {
    const throttled = Object.assign(new Error('Rate exceeded'), { name: 'AccountLimitExceededException' });
    codebuildMock.on(StartBuildCommand).rejects(throttled);

    await expect(deploy(event, deps)).rejects.toThrow(throttled);

    const writes = leaseWrites();
    expect(writes).toHaveLength(2);
    expect(writes[1]).toMatchObject({
      ifMatch: '"etag-taken"',
      lease: { execution: event.execution, released: true, releasedAt: NOW.toISOString(), outcome: 'StartBuild failed: AccountLimitExceededException' },
    });
    expect(writes[1]!.lease.buildId).toBeUndefined();
  });

  test('stops its build when the lease was taken over before the build id was recorded', async () => {
    s3Mock
      .on(PutObjectCommand, { Key: LEASE_KEY })
      .resolvesOnce({ ETag: '"etag-taken"' })
      .rejects(s3Error('PreconditionFailed', 412));

    await expect(deploy(event, deps)).rejects.toThrow(/taken over before its build shop-deploy:new was recorded; the build was stopped/);
    expect(codebuildMock).toHaveReceivedCommandWith(StopBuildCommand, { id: 'shop-deploy:new' });
  });

  test('a redrive of the same execution takes its own lease back and stops its earlier build first', async () => {
    s3Mock.on(GetObjectCommand, { Key: LEASE_KEY }).resolves(
      bodyOf(lease({ execution: event.execution, startedAt: event.startedAt, taskToken: 'token-first-run', buildId: 'shop-deploy:first', acquiredAt: '2026-11-29T09:59:00.000Z' }), '"etag-mine"'),
    );
    const order: string[] = [];
    codebuildMock.on(StopBuildCommand).callsFake((input: { id: string }) => {
      order.push(`stop ${input.id}`);
      return {};
    });
    codebuildMock.on(StartBuildCommand).callsFake(() => {
      order.push('start');
      return { build: { id: 'shop-deploy:second' } };
    });

    const started = await deploy(event, deps);

    expect(started).toEqual({ buildId: 'shop-deploy:second' });
    expect(order).toEqual(['stop shop-deploy:first', 'start']);
    // Its own lease is not "busy": no need to ask whether the earlier build still runs.
    expect(codebuildMock).not.toHaveReceivedCommand(BatchGetBuildsCommand);
    expect(leaseWrites()[0]).toMatchObject({ ifMatch: '"etag-mine"', lease: { taskToken: 'token-mine' } });
    expect(leaseWrites()[0]!.lease.buildId).toBeUndefined();
  });

  test('a StopBuild failure on the earlier build of a redrive is logged, not thrown', async () => {
    s3Mock.on(GetObjectCommand, { Key: LEASE_KEY }).resolves(
      bodyOf(lease({ execution: event.execution, startedAt: event.startedAt, buildId: 'shop-deploy:first' }), '"etag-mine"'),
    );
    codebuildMock.on(StopBuildCommand).rejects(Object.assign(new Error('gone'), { name: 'ResourceNotFoundException' }));
    const error = jest.spyOn(console, 'error').mockImplementation(() => undefined);

    await expect(deploy(event, deps)).resolves.toEqual({ buildId: 'shop-deploy:new' });
    expect(error).toHaveBeenCalledWith(expect.stringContaining('could not stop build shop-deploy:first: ResourceNotFoundException'));
    error.mockRestore();
  });
});
