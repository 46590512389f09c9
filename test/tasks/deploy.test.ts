import {
  BatchGetBuildsCommand,
  CodeBuildClient,
  ListBuildsForProjectCommand,
  StartBuildCommand,
  StopBuildCommand,
} from '@aws-sdk/client-codebuild';
import { GetObjectCommand, PutObjectCommand, S3Client, S3ServiceException } from '@aws-sdk/client-s3';
import { mockClient } from 'aws-sdk-client-mock';
import { deploy, HANDOVER_MS, START_WINDOW_MS, type DeployEvent } from '../../tasks/deploy/deploy';
import { DeployLeaseBusyError, DeploySupersededError } from '../../tasks/deploy/errors';
import type { DeployLease } from '../../tasks/deploy/lease';
import type { DeploymentRecord } from '../../shared/contracts';

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
  redriveCount: 0,
  source: `${BUCKET}/artifacts/acceptance/acceptance-20261129T095000-bbbbbb/build.zip`,
  environmentVariables: [
    { Name: 'ENVIRONMENT', Type: 'PLAINTEXT', Value: 'acceptance' },
    { Name: 'STEPDEPLOY_EXECUTION', Type: 'PLAINTEXT', Value: 'acceptance-20261129T095000-bbbbbb' },
  ],
};

const deps = {
  s3,
  codebuild,
  bucket: BUCKET,
  region: 'eu-west-1',
  projectName: PROJECT,
  leaseSeconds: LEASE_SECONDS,
  now: () => NOW,
};

/** An execution older than `event`, and one newer. */
const OLDER = { execution: 'acceptance-20261129T094000-aaaaaa', startedAt: '2026-11-29T09:40:00.000Z' };
const NEWER = { execution: 'acceptance-20261129T095500-cccccc', startedAt: '2026-11-29T09:55:00.000Z' };

function lease(fields: Partial<DeployLease>): DeployLease {
  return {
    environment: 'acceptance',
    ...OLDER,
    taskToken: 'token-other',
    leaseId: 'lease-other',
    redriveCount: 0,
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
  codebuildMock.on(ListBuildsForProjectCommand).resolves({ ids: [] });
  codebuildMock.on(BatchGetBuildsCommand).resolves({ builds: [] });
});

/** CodeBuild knows these builds (BatchGetBuilds by id, and ListBuildsForProject newest first). */
function builds(
  ...known: Array<{ id: string; complete: boolean; leaseId?: string; startTime?: string; endTime?: string }>
): void {
  const shaped = known.map((b) => ({
    id: b.id,
    buildComplete: b.complete,
    buildStatus: b.complete ? 'SUCCEEDED' : 'IN_PROGRESS',
    startTime: new Date(b.startTime ?? '2026-11-29T09:58:00.000Z'),
    ...(b.endTime ? { endTime: new Date(b.endTime) } : {}),
    environment: {
      environmentVariables: b.leaseId
        ? [{ name: 'STEPDEPLOY_LEASE_ID', value: b.leaseId, type: 'PLAINTEXT' as const }]
        : [],
    },
  }));
  codebuildMock.on(ListBuildsForProjectCommand).resolves({ ids: shaped.map((b) => b.id) });
  codebuildMock
    .on(BatchGetBuildsCommand)
    .callsFake((input: { ids: string[] }) => ({ builds: shaped.filter((b) => input.ids.includes(b.id)) }));
}

describe('deploy: taking the environment lease', () => {
  test('takes a free lease with If-None-Match and a new lease id, starts the deploy build fenced by it and records its id with If-Match', async () => {
    const started = await deploy(event, deps);

    expect(started).toEqual({ buildId: 'shop-deploy:new' });
    const writes = leaseWrites();
    expect(writes).toHaveLength(2);
    expect(writes[0]).toMatchObject({ ifNoneMatch: '*', ifMatch: undefined });
    const leaseId = writes[0]!.lease.leaseId!;
    expect(leaseId).toMatch(/^[0-9a-f-]{36}$/);
    expect(writes[0]!.lease).toEqual({
      environment: 'acceptance',
      execution: event.execution,
      startedAt: event.startedAt,
      redriveCount: 0,
      taskToken: 'token-mine',
      leaseId,
      acquiredAt: NOW.toISOString(),
      expiresAt: new Date(NOW.getTime() + LEASE_SECONDS * 1000).toISOString(),
    });
    expect(writes[1]).toMatchObject({
      ifMatch: '"etag-taken"',
      lease: { buildId: 'shop-deploy:new', taskToken: 'token-mine', leaseId },
    });
    expect(codebuildMock).toHaveReceivedCommandWith(StartBuildCommand, {
      projectName: PROJECT,
      sourceTypeOverride: 'S3',
      sourceLocationOverride: event.source,
      environmentVariablesOverride: [
        { name: 'ENVIRONMENT', value: 'acceptance', type: 'PLAINTEXT' },
        { name: 'STEPDEPLOY_EXECUTION', value: event.execution, type: 'PLAINTEXT' },
        { name: 'STEPDEPLOY_LEASE_ID', value: leaseId, type: 'PLAINTEXT' },
        { name: 'STEPDEPLOY_LEASE_BUCKET', value: BUCKET, type: 'PLAINTEXT' },
        { name: 'STEPDEPLOY_LEASE_KEY', value: LEASE_KEY, type: 'PLAINTEXT' },
        { name: 'STEPDEPLOY_LEASE_REGION', value: 'eu-west-1', type: 'PLAINTEXT' },
      ],
      idempotencyToken: leaseId,
    });
    expect(codebuildMock).not.toHaveReceivedCommand(StopBuildCommand);
  });

  test('takes a released lease once CodeBuild says its build has ended', async () => {
    s3Mock
      .on(GetObjectCommand, { Key: LEASE_KEY })
      .resolves(bodyOf(lease({ buildId: 'shop-deploy:old', released: true }), '"etag-released"'));
    builds({ id: 'shop-deploy:old', complete: true });

    await deploy(event, deps);

    expect(codebuildMock).toHaveReceivedCommandWith(BatchGetBuildsCommand, { ids: ['shop-deploy:old'] });
    expect(leaseWrites()[0]).toMatchObject({
      ifMatch: '"etag-released"',
      ifNoneMatch: undefined,
      lease: { execution: event.execution },
    });
    expect(leaseWrites()[0]!.lease.leaseId).not.toBe('lease-other');
    expect(codebuildMock).not.toHaveReceivedCommand(StopBuildCommand);
  });

  test('waits for a released lease whose build still runs (stopped by deploy-complete, not ended yet)', async () => {
    s3Mock
      .on(GetObjectCommand, { Key: LEASE_KEY })
      .resolves(
        bodyOf(lease({ buildId: 'shop-deploy:old', released: true, outcome: 'execution ABORTED' }), '"etag-released"'),
      );
    builds({ id: 'shop-deploy:old', complete: false });

    await expect(deploy(event, deps)).rejects.toThrow(DeployLeaseBusyError);
    expect(codebuildMock).not.toHaveReceivedCommand(StartBuildCommand);
  });

  test('an expired lease is not taken while its build still runs (BatchGetBuilds is asked)', async () => {
    s3Mock
      .on(GetObjectCommand, { Key: LEASE_KEY })
      .resolves(bodyOf(lease({ buildId: 'shop-deploy:old', expiresAt: '2026-11-29T09:59:59.999Z' }), '"etag-expired"'));
    builds({ id: 'shop-deploy:old', complete: false });

    await expect(deploy(event, deps)).rejects.toThrow(/is deploying \(build shop-deploy:old\)/);
    expect(codebuildMock).toHaveReceivedCommandWith(BatchGetBuildsCommand, { ids: ['shop-deploy:old'] });
    expect(codebuildMock).not.toHaveReceivedCommand(StartBuildCommand);
  });

  test('takes an expired lease whose build has ended', async () => {
    s3Mock
      .on(GetObjectCommand, { Key: LEASE_KEY })
      .resolves(bodyOf(lease({ buildId: 'shop-deploy:old', expiresAt: '2026-11-29T09:59:59.999Z' }), '"etag-expired"'));
    builds({ id: 'shop-deploy:old', complete: true });

    await deploy(event, deps);

    expect(leaseWrites()[0]).toMatchObject({ ifMatch: '"etag-expired"', lease: { execution: event.execution } });
  });

  test('takes a stale lease whose build is complete per BatchGetBuilds (its completion event was lost)', async () => {
    s3Mock
      .on(GetObjectCommand, { Key: LEASE_KEY })
      .resolves(bodyOf(lease({ buildId: 'shop-deploy:old' }), '"etag-stale"'));
    builds({ id: 'shop-deploy:old', complete: true });

    await deploy(event, deps);

    expect(leaseWrites()[0]).toMatchObject({ ifMatch: '"etag-stale"', lease: { execution: event.execution } });
    expect(codebuildMock).toHaveReceivedCommandTimes(StartBuildCommand, 1);
  });

  test("waits while another execution's build that just ended is handed to its task (lease not given back yet), then takes it", async () => {
    s3Mock
      .on(GetObjectCommand, { Key: LEASE_KEY })
      .resolves(bodyOf(lease({ buildId: 'shop-deploy:old' }), '"etag-ended"'));
    builds({ id: 'shop-deploy:old', complete: true, endTime: '2026-11-29T09:59:00.000Z' });

    await expect(deploy(event, deps)).rejects.toThrow(
      /has just deployed \(build shop-deploy:old\); its end is being handed to it/,
    );
    expect(codebuildMock).not.toHaveReceivedCommand(StartBuildCommand);

    // Five minutes after the build's end, its event counts as lost.
    await expect(
      deploy(event, { ...deps, now: () => new Date(Date.parse('2026-11-29T09:59:00.000Z') + HANDOVER_MS) }),
    ).resolves.toEqual({ buildId: 'shop-deploy:new' });
  });

  test('a lease with no build recorded is not freed by age while a build carrying its lease id runs (found with ListBuildsForProject)', async () => {
    // Its holder crashed between StartBuild and writing the build id, long ago.
    s3Mock
      .on(GetObjectCommand, { Key: LEASE_KEY })
      .resolves(bodyOf(lease({ acquiredAt: '2026-11-29T09:45:00.000Z' }), '"etag-nobuild"'));
    builds(
      { id: 'shop-deploy:unrelated', complete: true, leaseId: 'lease-someone' },
      { id: 'shop-deploy:unrecorded', complete: false, leaseId: 'lease-other' },
    );

    await expect(deploy(event, deps)).rejects.toThrow(/is deploying \(build shop-deploy:unrecorded\)/);
    expect(codebuildMock).toHaveReceivedCommandWith(ListBuildsForProjectCommand, { projectName: PROJECT });
    expect(codebuildMock).not.toHaveReceivedCommand(StartBuildCommand);
  });

  test('takes a lease with no build recorded and none found, once its holder can no longer be starting one', async () => {
    const acquiredAt = new Date(NOW.getTime() - START_WINDOW_MS - 1000).toISOString();
    s3Mock.on(GetObjectCommand, { Key: LEASE_KEY }).resolves(bodyOf(lease({ acquiredAt }), '"etag-nobuild"'));

    await deploy(event, deps);

    expect(leaseWrites()[0]).toMatchObject({ ifMatch: '"etag-nobuild"', lease: { execution: event.execution } });
  });
});

describe('deploy: fails when the environment is not free', () => {
  test('fails DeployLeaseBusyError (retried by the state machine) while an older execution deploys, and registers itself as the newest waiter', async () => {
    s3Mock
      .on(GetObjectCommand, { Key: LEASE_KEY })
      .resolves(bodyOf(lease({ buildId: 'shop-deploy:old' }), '"etag-busy"'));
    builds({ id: 'shop-deploy:old', complete: false });

    const attempt = deploy(event, deps);

    await expect(attempt).rejects.toThrow(DeployLeaseBusyError);
    await expect(attempt).rejects.toThrow(
      `${OLDER.execution} (started ${OLDER.startedAt}) is deploying (build shop-deploy:old)`,
    );
    expect(leaseWrites()).toEqual([
      {
        ifMatch: '"etag-busy"',
        ifNoneMatch: undefined,
        lease: {
          ...lease({ buildId: 'shop-deploy:old' }),
          waiting: { execution: event.execution, startedAt: event.startedAt },
        },
      },
    ]);
    expect(codebuildMock).not.toHaveReceivedCommand(StartBuildCommand);
  });

  test('an older execution arriving while a newer one waits fails DeploySupersededError at once, instead of taking the lease first', async () => {
    s3Mock
      .on(GetObjectCommand, { Key: LEASE_KEY })
      .resolves(bodyOf(lease({ buildId: 'shop-deploy:old', waiting: NEWER }), '"etag-busy"'));
    builds({ id: 'shop-deploy:old', complete: true });

    await expect(deploy(event, deps)).rejects.toThrow(
      `the newer execution ${NEWER.execution} (started ${NEWER.startedAt}) waits to deploy there`,
    );
    expect(s3Mock).not.toHaveReceivedCommand(PutObjectCommand);
    expect(codebuildMock).not.toHaveReceivedCommand(StartBuildCommand);
  });

  test('fails DeployLeaseBusyError while an older execution holds a lease it took moments ago (build starting)', async () => {
    s3Mock
      .on(GetObjectCommand, { Key: LEASE_KEY })
      .resolves(bodyOf(lease({ acquiredAt: '2026-11-29T09:59:30.000Z' }), '"etag-starting"'));

    await expect(deploy(event, deps)).rejects.toThrow(/is deploying \(build starting\)/);
    expect(codebuildMock).not.toHaveReceivedCommand(StartBuildCommand);
  });

  test('fails DeploySupersededError (not retried) while a newer execution holds the lease', async () => {
    s3Mock
      .on(GetObjectCommand, { Key: LEASE_KEY })
      .resolves(bodyOf(lease({ ...NEWER, buildId: 'shop-deploy:newer' }), '"etag-newer"'));

    const attempt = deploy(event, deps);

    await expect(attempt).rejects.toThrow(DeploySupersededError);
    await expect(attempt).rejects.toThrow(`the newer execution ${NEWER.execution}`);
    expect(s3Mock).not.toHaveReceivedCommand(PutObjectCommand);
    expect(codebuildMock).not.toHaveReceivedCommand(StartBuildCommand);
  });

  test('fails DeploySupersededError when a newer execution has already deployed and released the lease, before it records current.json', async () => {
    // The newer execution's deploy build ended and gave the lease back; its RecordDeployment has not run yet.
    s3Mock.on(GetObjectCommand, { Key: CURRENT_KEY }).resolves(bodyOf(deployed(OLDER), '"etag-current"'));
    s3Mock
      .on(GetObjectCommand, { Key: LEASE_KEY })
      .resolves(
        bodyOf(
          lease({ ...NEWER, buildId: 'shop-deploy:newer', released: true, outcome: 'SUCCEEDED' }),
          '"etag-released"',
        ),
      );

    await expect(deploy(event, deps)).rejects.toThrow(DeploySupersededError);
    expect(s3Mock).not.toHaveReceivedCommand(PutObjectCommand);
    expect(codebuildMock).not.toHaveReceivedCommand(StartBuildCommand);
  });

  test('fails DeploySupersededError when a newer execution holds an expired lease (it reached Deploy first)', async () => {
    s3Mock
      .on(GetObjectCommand, { Key: LEASE_KEY })
      .resolves(bodyOf(lease({ ...NEWER, expiresAt: '2026-11-29T09:00:00.000Z' }), '"etag-expired"'));

    await expect(deploy(event, deps)).rejects.toThrow(DeploySupersededError);
    expect(codebuildMock).not.toHaveReceivedCommand(StartBuildCommand);
  });

  test('fails DeploySupersededError when current.json names a newer execution, even with the lease free', async () => {
    s3Mock.on(GetObjectCommand, { Key: CURRENT_KEY }).resolves(bodyOf(deployed(NEWER), '"etag-current"'));

    const attempt = deploy(event, deps);

    await expect(attempt).rejects.toThrow(DeploySupersededError);
    await expect(attempt).rejects.toThrow(
      `the newer execution ${NEWER.execution} (started ${NEWER.startedAt}) is already deployed there`,
    );
    expect(s3Mock).not.toHaveReceivedCommand(PutObjectCommand);
    expect(codebuildMock).not.toHaveReceivedCommand(StartBuildCommand);
  });

  test('orders executions started at the same second by name: the later name is newer', async () => {
    s3Mock
      .on(GetObjectCommand, { Key: CURRENT_KEY })
      .resolves(bodyOf(deployed({ execution: `${event.execution}-z`, startedAt: event.startedAt }), '"etag-current"'));

    await expect(deploy(event, deps)).rejects.toThrow(DeploySupersededError);
  });

  test('deploys when current.json names an older execution, or this very one (a redrive after RecordDeployment failed)', async () => {
    s3Mock
      .on(GetObjectCommand, { Key: CURRENT_KEY })
      .resolvesOnce(bodyOf(deployed(OLDER), '"e1"'))
      .resolves(bodyOf(deployed({ execution: event.execution, startedAt: event.startedAt }), '"e2"'));

    await expect(deploy(event, deps)).resolves.toEqual({ buildId: 'shop-deploy:new' });
    await expect(deploy(event, deps)).resolves.toEqual({ buildId: 'shop-deploy:new' });
  });
});

describe('deploy: races, crashes and retries', () => {
  test('reads the lease again when another writer wins the conditional write (412), then decides again', async () => {
    s3Mock
      .on(GetObjectCommand, { Key: LEASE_KEY })
      .rejectsOnce(s3Error('NoSuchKey', 404))
      .resolves(bodyOf(lease({ buildId: 'shop-deploy:old', released: true }), '"etag-2"'));
    s3Mock
      .on(PutObjectCommand, { Key: LEASE_KEY })
      .rejectsOnce(s3Error('PreconditionFailed', 412))
      .resolves({ ETag: '"etag-taken"' });
    builds({ id: 'shop-deploy:old', complete: true });

    const started = await deploy(event, deps);

    expect(started).toEqual({ buildId: 'shop-deploy:new' });
    expect(s3Mock).toHaveReceivedCommandTimes(GetObjectCommand, 4); // current + lease, twice
    expect(leaseWrites().map((w) => w.ifNoneMatch ?? w.ifMatch)).toEqual(['*', '"etag-2"', '"etag-taken"']);
    expect(codebuildMock).toHaveReceivedCommandTimes(StartBuildCommand, 1);
  });

  test("S3's 409 ConditionalRequestConflict on taking the lease reads again and decides again, as a 412 does", async () => {
    s3Mock
      .on(PutObjectCommand, { Key: LEASE_KEY })
      .rejectsOnce(s3Error('ConditionalRequestConflict', 409))
      .resolves({ ETag: '"etag-taken"' });

    await expect(deploy(event, deps)).resolves.toEqual({ buildId: 'shop-deploy:new' });
    expect(leaseWrites().map((w) => w.ifNoneMatch ?? w.ifMatch)).toEqual(['*', '*', '"etag-taken"']);
    expect(codebuildMock).toHaveReceivedCommandTimes(StartBuildCommand, 1);
  });

  test('a 409 on recording the build id reads the lease again and records it: no second build, none stopped', async () => {
    let leaseNow: { lease: DeployLease; etag: string } | undefined;
    s3Mock.on(GetObjectCommand, { Key: LEASE_KEY }).callsFake(() => {
      if (!leaseNow) throw s3Error('NoSuchKey', 404);
      return bodyOf(leaseNow.lease, leaseNow.etag);
    });
    let writes = 0;
    s3Mock.on(PutObjectCommand, { Key: LEASE_KEY }).callsFake((input: { Body: string }) => {
      writes += 1;
      if (writes === 2) throw s3Error('ConditionalRequestConflict', 409);
      leaseNow = { lease: JSON.parse(input.Body) as DeployLease, etag: `"etag-${writes}"` };
      return { ETag: leaseNow.etag };
    });

    await expect(deploy(event, deps)).resolves.toEqual({ buildId: 'shop-deploy:new' });
    expect(leaseNow!.lease.buildId).toBe('shop-deploy:new');
    expect(codebuildMock).toHaveReceivedCommandTimes(StartBuildCommand, 1);
    expect(codebuildMock).not.toHaveReceivedCommand(StopBuildCommand);
  });

  test('gives up with DeployLeaseBusyError when the lease changes on every one of its attempts', async () => {
    s3Mock.on(PutObjectCommand, { Key: LEASE_KEY }).rejects(s3Error('PreconditionFailed', 412));

    await expect(deploy(event, deps)).rejects.toThrow(/the deploy lease changed 5 times/);
    expect(s3Mock).toHaveReceivedCommandTimes(PutObjectCommand, 5);
    expect(codebuildMock).not.toHaveReceivedCommand(StartBuildCommand);
  });

  test('releases the lease and rethrows when StartBuild fails; a build started anyway (answer lost) exits at its fence', async () => {
    const throttled = Object.assign(new Error('Rate exceeded'), { name: 'AccountLimitExceededException' });
    codebuildMock.on(StartBuildCommand).rejects(throttled);

    await expect(deploy(event, deps)).rejects.toThrow(throttled);

    const writes = leaseWrites();
    expect(writes).toHaveLength(2);
    expect(writes[1]).toMatchObject({
      ifMatch: '"etag-taken"',
      lease: {
        execution: event.execution,
        released: true,
        releasedAt: NOW.toISOString(),
        outcome: 'StartBuild failed: AccountLimitExceededException',
      },
    });
    expect(writes[1]!.lease.buildId).toBeUndefined();
  });

  test('stops its build when the lease was taken over before the build id was recorded', async () => {
    s3Mock
      .on(PutObjectCommand, { Key: LEASE_KEY })
      .resolvesOnce({ ETag: '"etag-taken"' })
      .rejects(s3Error('PreconditionFailed', 412));
    s3Mock
      .on(GetObjectCommand, { Key: LEASE_KEY })
      .rejectsOnce(s3Error('NoSuchKey', 404))
      .resolves(bodyOf(lease({ ...NEWER, leaseId: 'lease-newer' }), '"etag-newer"'));

    await expect(deploy(event, deps)).rejects.toThrow(
      /taken over before its build shop-deploy:new was recorded; the build was stopped/,
    );
    expect(codebuildMock).toHaveReceivedCommandWith(StopBuildCommand, { id: 'shop-deploy:new' });
  });

  test('stops its build when the lease was given back because the execution ended while Deploy ran', async () => {
    s3Mock
      .on(PutObjectCommand, { Key: LEASE_KEY })
      .resolvesOnce({ ETag: '"etag-taken"' })
      .rejects(s3Error('PreconditionFailed', 412));
    s3Mock
      .on(GetObjectCommand, { Key: LEASE_KEY })
      .rejectsOnce(s3Error('NoSuchKey', 404))
      .callsFake(() => {
        const taken = JSON.parse(String(s3Mock.commandCalls(PutObjectCommand)[0]!.args[0].input.Body)) as DeployLease;
        return bodyOf({ ...taken, released: true, outcome: 'execution ABORTED' }, '"etag-released"');
      });

    await expect(deploy(event, deps)).resolves.toEqual({ buildId: 'shop-deploy:new' });
    expect(codebuildMock).toHaveReceivedCommandWith(StopBuildCommand, { id: 'shop-deploy:new' });
  });

  test('a retry of the same Deploy after a crash past StartBuild adopts the running build found by its lease id: no second build', async () => {
    const mine = lease({
      execution: event.execution,
      startedAt: event.startedAt,
      taskToken: 'token-first-attempt',
      leaseId: 'lease-mine',
      acquiredAt: '2026-11-29T09:59:00.000Z',
    });
    s3Mock.on(GetObjectCommand, { Key: LEASE_KEY }).resolves(bodyOf(mine, '"etag-mine"'));
    builds({ id: 'shop-deploy:first', complete: false, leaseId: 'lease-mine' });

    await expect(deploy(event, deps)).resolves.toEqual({ buildId: 'shop-deploy:first' });

    expect(codebuildMock).not.toHaveReceivedCommand(StartBuildCommand);
    expect(codebuildMock).not.toHaveReceivedCommand(StopBuildCommand);
    expect(leaseWrites()).toEqual([
      {
        ifMatch: '"etag-mine"',
        ifNoneMatch: undefined,
        lease: { ...mine, taskToken: 'token-mine', buildId: 'shop-deploy:first' },
      },
    ]);
  });

  test('a retry of the same Deploy that finds no build keeps the lease id, so StartBuild answers the build an earlier attempt may have started', async () => {
    const mine = lease({
      execution: event.execution,
      startedAt: event.startedAt,
      taskToken: 'token-first-attempt',
      leaseId: 'lease-mine',
      acquiredAt: '2026-11-29T09:59:50.000Z',
    });
    s3Mock.on(GetObjectCommand, { Key: LEASE_KEY }).resolves(bodyOf(mine, '"etag-mine"'));

    await deploy(event, deps);

    expect(leaseWrites()[0]).toMatchObject({
      ifMatch: '"etag-mine"',
      lease: { leaseId: 'lease-mine', taskToken: 'token-mine', acquiredAt: mine.acquiredAt },
    });
    expect(codebuildMock).toHaveReceivedCommandWith(StartBuildCommand, { idempotencyToken: 'lease-mine' });
  });

  test('a redrive stops the still-running build of its own earlier run and waits for it to end before starting another', async () => {
    const earlier = lease({
      execution: event.execution,
      startedAt: event.startedAt,
      leaseId: 'lease-run-0',
      redriveCount: 0,
      buildId: 'shop-deploy:first',
    });
    s3Mock.on(GetObjectCommand, { Key: LEASE_KEY }).resolves(bodyOf(earlier, '"etag-mine"'));
    builds({ id: 'shop-deploy:first', complete: false });

    await expect(deploy({ ...event, redriveCount: 1 }, deps)).rejects.toThrow(DeployLeaseBusyError);

    expect(codebuildMock).toHaveReceivedCommandWith(StopBuildCommand, { id: 'shop-deploy:first' });
    expect(codebuildMock).not.toHaveReceivedCommand(StartBuildCommand);
  });

  test("an invocation left over from an earlier run (stopped, then redriven) leaves the redriven run's lease and build alone", async () => {
    const redriven = lease({
      execution: event.execution,
      startedAt: event.startedAt,
      leaseId: 'lease-run-1',
      redriveCount: 1,
      buildId: 'shop-deploy:second',
    });
    s3Mock.on(GetObjectCommand, { Key: LEASE_KEY }).resolves(bodyOf(redriven, '"etag-run-1"'));
    builds({ id: 'shop-deploy:second', complete: false });

    await expect(deploy({ ...event, redriveCount: 0 }, deps)).rejects.toThrow(
      `run 1 of ${event.execution} (a redrive) holds the lease`,
    );

    expect(codebuildMock).not.toHaveReceivedCommand(StopBuildCommand);
    expect(codebuildMock).not.toHaveReceivedCommand(StartBuildCommand);
    expect(s3Mock).not.toHaveReceivedCommand(PutObjectCommand);
  });

  test('a redrive takes its own lease back with a new lease id once its earlier build has ended', async () => {
    const earlier = lease({
      execution: event.execution,
      startedAt: event.startedAt,
      leaseId: 'lease-run-0',
      redriveCount: 0,
      buildId: 'shop-deploy:first',
    });
    s3Mock.on(GetObjectCommand, { Key: LEASE_KEY }).resolves(bodyOf(earlier, '"etag-mine"'));
    builds({ id: 'shop-deploy:first', complete: true });

    await expect(deploy({ ...event, redriveCount: 1 }, deps)).resolves.toEqual({ buildId: 'shop-deploy:new' });

    const taken = leaseWrites()[0]!;
    expect(taken).toMatchObject({ ifMatch: '"etag-mine"', lease: { redriveCount: 1, taskToken: 'token-mine' } });
    expect(taken.lease.leaseId).not.toBe('lease-run-0');
    expect(taken.lease.buildId).toBeUndefined();
  });
});
