import {
  BatchGetBuildsCommand,
  CodeBuildClient,
  ListBuildsForProjectCommand,
  StopBuildCommand,
} from '@aws-sdk/client-codebuild';
import { GetObjectCommand, PutObjectCommand, S3Client, S3ServiceException } from '@aws-sdk/client-s3';
import {
  SendTaskFailureCommand,
  SendTaskSuccessCommand,
  SFNClient,
  SFNServiceException,
  TaskTimedOut,
} from '@aws-sdk/client-sfn';
import { mockClient } from 'aws-sdk-client-mock';
import { buildIdOf, completeDeployBuild, releaseForEndedExecution } from '../../tasks/deploy-complete/deploy-complete';
import type { DeployLease } from '../../tasks/deploy/lease';
import { buildStateChangeSchema, executionStatusChangeSchema } from '../../tasks/shared/eventbridge-events';

const s3Mock = mockClient(S3Client);
const sfnMock = mockClient(SFNClient);
const codebuildMock = mockClient(CodeBuildClient);
const s3 = new S3Client({});
const sfn = new SFNClient({});
const codebuild = new CodeBuildClient({});

const BUCKET = 'shop-artifacts';
const LEASE_KEY = 'deployments/acceptance/lease.json';
const NOW = new Date('2026-11-29T10:05:00.000Z');
const EXECUTION = 'acceptance-20261129T095000-bbbbbb';
const BUILD_ID = 'shop-deploy:0b3e6c1a-0000-4000-8000-000000000001';
const BUILD_ARN = `arn:aws:codebuild:eu-west-1:123456789012:build/${BUILD_ID}`;

const deps = { s3, sfn, codebuild, bucket: BUCKET, projectName: 'shop-deploy', retryDelayMs: 0, now: () => NOW };

const heldLease: DeployLease = {
  environment: 'acceptance',
  execution: EXECUTION,
  startedAt: '2026-11-29T09:50:00.000Z',
  taskToken: 'token-of-deploy',
  leaseId: 'lease-1',
  redriveCount: 0,
  acquiredAt: '2026-11-29T10:00:00.000Z',
  expiresAt: '2026-11-29T11:10:00.000Z',
  buildId: BUILD_ID,
};

function buildEvent(status: string, fields: { buildArn?: string; environment?: string | null; leaseId?: string } = {}) {
  const variables = [
    ...(fields.environment === null
      ? []
      : [{ name: 'ENVIRONMENT', value: fields.environment ?? 'acceptance', type: 'PLAINTEXT' }]),
    { name: 'STEPDEPLOY_LEASE_ID', value: fields.leaseId ?? 'lease-1', type: 'PLAINTEXT' },
  ];
  return buildStateChangeSchema.parse({
    version: '0',
    'detail-type': 'CodeBuild Build State Change',
    source: 'aws.codebuild',
    time: '2026-11-29T10:04:59Z',
    detail: {
      'build-status': status,
      'project-name': 'shop-deploy',
      'build-id': fields.buildArn ?? BUILD_ARN,
      'additional-information': {
        environment: { 'environment-variables': variables },
        logs: { 'deep-link': 'https://console.aws.amazon.com/cloudwatch/home#logEvent:x' },
        phases: [
          { 'phase-type': 'PRE_BUILD', 'phase-status': 'SUCCEEDED', 'phase-context': [': '] },
          {
            'phase-type': 'BUILD',
            'phase-status': status === 'SUCCEEDED' ? 'SUCCEEDED' : 'FAILED',
            'phase-context':
              status === 'SUCCEEDED'
                ? []
                : [
                    'COMMAND_EXECUTION_ERROR: Error while executing command: ./stepdeploy/deploy "$ENVIRONMENT". Reason: exit status 1',
                  ],
          },
        ],
      },
    },
  });
}

function executionEvent(status: string, fields: { name?: string; input?: string | null; redriveCount?: number } = {}) {
  return executionStatusChangeSchema.parse({
    version: '0',
    'detail-type': 'Step Functions Execution Status Change',
    source: 'aws.states',
    detail: {
      executionArn: `arn:aws:states:eu-west-1:123456789012:execution:shop:${fields.name ?? EXECUTION}`,
      stateMachineArn: 'arn:aws:states:eu-west-1:123456789012:stateMachine:shop',
      name: fields.name ?? EXECUTION,
      status,
      startDate: 1795859400000,
      input:
        fields.input === undefined
          ? JSON.stringify({ environment: 'acceptance', branches: { app: 'main' } })
          : fields.input,
      redriveCount: fields.redriveCount ?? 0,
    },
  });
}

function s3Error(name: string, status: number): S3ServiceException {
  return new S3ServiceException({ name, $fault: 'client', $metadata: { httpStatusCode: status }, message: name });
}

function holding(lease: DeployLease | undefined, etag = '"etag-held"'): void {
  if (lease === undefined) s3Mock.on(GetObjectCommand, { Key: LEASE_KEY }).rejects(s3Error('NoSuchKey', 404));
  else
    s3Mock
      .on(GetObjectCommand, { Key: LEASE_KEY })
      .resolves({ ETag: etag, Body: { transformToString: async () => JSON.stringify(lease) } } as never);
}

/** The lease writes, in order, with their If-Match. */
function leaseWrites(): Array<{ lease: DeployLease; ifMatch?: string }> {
  return s3Mock.commandCalls(PutObjectCommand, { Key: LEASE_KEY }).map((call) => ({
    lease: JSON.parse(String(call.args[0].input.Body)) as DeployLease,
    ifMatch: call.args[0].input.IfMatch,
  }));
}

let order: string[];

beforeEach(() => {
  s3Mock.reset();
  sfnMock.reset();
  codebuildMock.reset();
  order = [];
  holding(heldLease);
  s3Mock.on(PutObjectCommand, { Key: LEASE_KEY }).callsFake(() => {
    order.push('release');
    return { ETag: '"etag-released"' };
  });
  sfnMock.on(SendTaskSuccessCommand).callsFake(() => {
    order.push('SendTaskSuccess');
    return {};
  });
  sfnMock.on(SendTaskFailureCommand).callsFake(() => {
    order.push('SendTaskFailure');
    return {};
  });
  codebuildMock.on(StopBuildCommand).resolves({});
  codebuildMock.on(ListBuildsForProjectCommand).resolves({ ids: [] });
  codebuildMock
    .on(BatchGetBuildsCommand)
    .resolves({ builds: [{ id: BUILD_ID, buildComplete: false, buildStatus: 'IN_PROGRESS' }] });
});

describe('deploy-complete: the deploy build ended', () => {
  test('SUCCEEDED: SendTaskSuccess with the .sync shape { Build }, then gives the lease back', async () => {
    const result = await completeDeployBuild(buildEvent('SUCCEEDED'), deps);

    expect(result).toEqual({
      action: 'completed',
      environment: 'acceptance',
      execution: EXECUTION,
      status: 'SUCCEEDED',
    });
    expect(order).toEqual(['SendTaskSuccess', 'release']);
    const sent = sfnMock.commandCalls(SendTaskSuccessCommand)[0]!.args[0].input;
    expect(sent.taskToken).toBe('token-of-deploy');
    expect(JSON.parse(sent.output!)).toMatchObject({
      Build: { Id: BUILD_ID, Arn: BUILD_ARN, BuildStatus: 'SUCCEEDED', ProjectName: 'shop-deploy' },
    });
    expect(leaseWrites()).toEqual([
      {
        ifMatch: '"etag-held"',
        lease: { ...heldLease, released: true, releasedAt: NOW.toISOString(), outcome: 'SUCCEEDED' },
      },
    ]);
  });

  test('FAILED: SendTaskFailure DeployBuildFailed with the failed phase in the cause, then gives the lease back', async () => {
    const result = await completeDeployBuild(buildEvent('FAILED'), deps);

    expect(result).toMatchObject({ action: 'completed', status: 'FAILED' });
    expect(order).toEqual(['SendTaskFailure', 'release']);
    const sent = sfnMock.commandCalls(SendTaskFailureCommand)[0]!.args[0].input;
    expect(sent).toMatchObject({ taskToken: 'token-of-deploy', error: 'DeployBuildFailed' });
    const cause = JSON.parse(sent.cause!);
    expect(cause.Build).toMatchObject({ Id: BUILD_ID, BuildStatus: 'FAILED' });
    expect(cause.Build.Phases[1]).toEqual({
      PhaseType: 'BUILD',
      PhaseStatus: 'FAILED',
      Contexts: [
        {
          Message:
            'COMMAND_EXECUTION_ERROR: Error while executing command: ./stepdeploy/deploy "$ENVIRONMENT". Reason: exit status 1',
        },
      ],
    });
    // The empty ": " context CodeBuild puts on a phase without news is left out.
    expect(cause.Build.Phases[0].Contexts).toEqual([]);
    expect(leaseWrites()[0]!.lease).toMatchObject({ released: true, outcome: 'FAILED' });
  });

  test.each([
    ['FAULT', 'DeployBuildFault'],
    ['STOPPED', 'DeployBuildStopped'],
    ['TIMED_OUT', 'DeployBuildTimedOut'],
  ])('%s: SendTaskFailure %s (never retried by the state machine) and release', async (status, error) => {
    await completeDeployBuild(buildEvent(status), deps);

    expect(sfnMock).toHaveReceivedCommandWith(SendTaskFailureCommand, { taskToken: 'token-of-deploy', error });
    expect(leaseWrites()[0]!.lease).toMatchObject({ released: true, outcome: status });
  });

  test('a lease of another build is left alone: a duplicate or late delivery ends nothing', async () => {
    holding({ ...heldLease, execution: 'acceptance-20261129T095500-cccccc', buildId: 'shop-deploy:someone-else' });

    const result = await completeDeployBuild(buildEvent('SUCCEEDED'), deps);

    expect(result).toEqual({ action: 'ignored', reason: `the acceptance lease is not held by build ${BUILD_ID}` });
    expect(sfnMock).not.toHaveReceivedCommand(SendTaskSuccessCommand);
    expect(sfnMock).not.toHaveReceivedCommand(SendTaskFailureCommand);
    expect(s3Mock).not.toHaveReceivedCommand(PutObjectCommand);
  });

  test('the same event delivered twice completes the task once: the second finds the lease released', async () => {
    await completeDeployBuild(buildEvent('SUCCEEDED'), deps);
    holding(leaseWrites()[0]!.lease, '"etag-released"');

    const second = await completeDeployBuild(buildEvent('SUCCEEDED'), deps);

    expect(second.action).toBe('ignored');
    expect(sfnMock).toHaveReceivedCommandTimes(SendTaskSuccessCommand, 1);
    expect(s3Mock).toHaveReceivedCommandTimes(PutObjectCommand, 1);
  });

  test('no lease at all: ignored', async () => {
    holding(undefined);

    await expect(completeDeployBuild(buildEvent('SUCCEEDED'), deps)).resolves.toMatchObject({ action: 'ignored' });
    expect(sfnMock).not.toHaveReceivedCommand(SendTaskSuccessCommand);
  });

  test('a build that has not ended (IN_PROGRESS) or has no ENVIRONMENT variable is ignored without reading the lease', async () => {
    await expect(completeDeployBuild(buildEvent('IN_PROGRESS'), deps)).resolves.toEqual({
      action: 'ignored',
      reason: 'build is IN_PROGRESS',
    });
    await expect(completeDeployBuild(buildEvent('SUCCEEDED', { environment: null }), deps)).resolves.toMatchObject({
      action: 'ignored',
    });
    expect(s3Mock).not.toHaveReceivedCommand(GetObjectCommand);
  });

  test('when SendTask fails (TaskTimedOut: the execution is gone) the lease is still given back', async () => {
    sfnMock.on(SendTaskSuccessCommand).rejects(new TaskTimedOut({ message: 'Task Timed Out', $metadata: {} }));
    const error = jest.spyOn(console, 'error').mockImplementation(() => undefined);

    const result = await completeDeployBuild(buildEvent('SUCCEEDED'), deps);

    expect(result).toMatchObject({ action: 'completed', status: 'SUCCEEDED' });
    expect(leaseWrites()).toHaveLength(1);
    expect(leaseWrites()[0]!.lease).toMatchObject({ released: true });
    expect(error).toHaveBeenCalledWith(
      expect.stringContaining(`the Deploy task of ${EXECUTION} is gone (TaskTimedOut`),
    );
    error.mockRestore();
  });

  test('a release that loses its If-Match (someone took the expired lease meanwhile) does not throw', async () => {
    s3Mock.on(PutObjectCommand, { Key: LEASE_KEY }).rejects(s3Error('PreconditionFailed', 412));
    s3Mock
      .on(GetObjectCommand, { Key: LEASE_KEY })
      .resolvesOnce({
        ETag: '"etag-held"',
        Body: { transformToString: async () => JSON.stringify(heldLease) },
      } as never)
      .resolves({
        ETag: '"etag-other"',
        Body: {
          transformToString: async () =>
            JSON.stringify({ ...heldLease, leaseId: 'lease-2', execution: 'acceptance-20261129T095500-cccccc' }),
        },
      } as never);

    await expect(completeDeployBuild(buildEvent('SUCCEEDED'), deps)).resolves.toMatchObject({ action: 'completed' });
    expect(leaseWrites()).toHaveLength(1);
  });

  test('a build whose id was never recorded in the lease (Deploy stopped after StartBuild) is matched by its lease id: the task completes', async () => {
    const { buildId: _none, ...withoutBuild } = heldLease;
    holding(withoutBuild);

    const result = await completeDeployBuild(buildEvent('SUCCEEDED'), deps);

    expect(result).toMatchObject({ action: 'completed', status: 'SUCCEEDED' });
    expect(order).toEqual(['SendTaskSuccess', 'release']);
  });

  test('a build of another take of the lease (another lease id) is ignored', async () => {
    const { buildId: _none, ...withoutBuild } = heldLease;
    holding({ ...withoutBuild, leaseId: 'lease-2' });

    await expect(completeDeployBuild(buildEvent('SUCCEEDED'), deps)).resolves.toMatchObject({ action: 'ignored' });
    expect(sfnMock).not.toHaveReceivedCommand(SendTaskSuccessCommand);
  });

  test('a transient SendTaskSuccess failure (throttled) is retried; the lease is given back only after it went through', async () => {
    const throttled = new SFNServiceException({
      name: 'ThrottlingException',
      $fault: 'client',
      $metadata: { httpStatusCode: 400 },
      message: 'Rate exceeded',
    });
    sfnMock
      .on(SendTaskSuccessCommand)
      .rejectsOnce(throttled)
      .rejectsOnce(throttled)
      .callsFake(() => {
        order.push('SendTaskSuccess');
        return {};
      });

    await expect(completeDeployBuild(buildEvent('SUCCEEDED'), deps)).resolves.toMatchObject({ action: 'completed' });
    expect(sfnMock).toHaveReceivedCommandTimes(SendTaskSuccessCommand, 3);
    expect(order).toEqual(['SendTaskSuccess', 'release']);
  });

  test('a SendTaskSuccess that keeps failing is thrown (the event is delivered again) and the lease is not given back', async () => {
    sfnMock.on(SendTaskSuccessCommand).rejects(
      new SFNServiceException({
        name: 'ServiceUnavailable',
        $fault: 'server',
        $metadata: { httpStatusCode: 503 },
        message: 'unavailable',
      }),
    );

    await expect(completeDeployBuild(buildEvent('SUCCEEDED'), deps)).rejects.toMatchObject({
      name: 'ServiceUnavailable',
    });
    expect(s3Mock).not.toHaveReceivedCommand(PutObjectCommand);
  });

  test("S3's 409 ConditionalRequestConflict on the release reads the lease again and releases it", async () => {
    s3Mock
      .on(PutObjectCommand, { Key: LEASE_KEY })
      .rejectsOnce(s3Error('ConditionalRequestConflict', 409))
      .resolves({ ETag: '"etag-released"' });

    await expect(completeDeployBuild(buildEvent('SUCCEEDED'), deps)).resolves.toMatchObject({ action: 'completed' });
    expect(leaseWrites()).toHaveLength(2);
    expect(leaseWrites()[1]!.lease).toMatchObject({ released: true, outcome: 'SUCCEEDED' });
    expect(sfnMock).toHaveReceivedCommandTimes(SendTaskSuccessCommand, 1);
  });

  test('buildIdOf turns a build ARN into the build id, and leaves an id alone', () => {
    expect(buildIdOf(BUILD_ARN)).toBe(BUILD_ID);
    expect(buildIdOf(BUILD_ID)).toBe(BUILD_ID);
  });
});

describe('deploy-complete: the execution ended badly', () => {
  test('ABORTED while holding a lease with a build: gives the lease back (a build not started yet exits at its fence), then stops the build', async () => {
    const result = await releaseForEndedExecution(executionEvent('ABORTED'), deps);

    expect(result).toEqual({ action: 'stopped-build', environment: 'acceptance', execution: EXECUTION });
    expect(leaseWrites()).toEqual([
      {
        ifMatch: '"etag-held"',
        lease: { ...heldLease, released: true, releasedAt: NOW.toISOString(), outcome: 'execution ABORTED' },
      },
    ]);
    expect(codebuildMock).toHaveReceivedCommandWith(StopBuildCommand, { id: BUILD_ID });
  });

  test('a lease whose build id was never recorded: the build is found by its lease id and stopped, not left running beside the next deploy', async () => {
    const { buildId: _none, ...withoutBuild } = heldLease;
    holding(withoutBuild);
    codebuildMock.on(ListBuildsForProjectCommand).resolves({ ids: [BUILD_ID] });
    codebuildMock.on(BatchGetBuildsCommand).resolves({
      builds: [
        {
          id: BUILD_ID,
          buildComplete: false,
          startTime: new Date('2026-11-29T10:00:01.000Z'),
          environment: {
            type: 'LINUX_CONTAINER',
            image: 'standard',
            computeType: 'BUILD_GENERAL1_SMALL',
            environmentVariables: [{ name: 'STEPDEPLOY_LEASE_ID', value: 'lease-1' }],
          },
        },
      ],
    });

    const result = await releaseForEndedExecution(executionEvent('FAILED'), deps);

    expect(result).toEqual({ action: 'stopped-build', environment: 'acceptance', execution: EXECUTION });
    expect(codebuildMock).toHaveReceivedCommandWith(StopBuildCommand, { id: BUILD_ID });
    expect(leaseWrites()[0]!.lease).toMatchObject({ released: true, outcome: 'execution FAILED' });
  });

  test.each(['ABORTED', 'FAILED', 'TIMED_OUT'])(
    '%s while holding a lease with no build at all: releases it',
    async (status) => {
      const { buildId: _none, ...withoutBuild } = heldLease;
      holding(withoutBuild);

      const result = await releaseForEndedExecution(executionEvent(status), deps);

      expect(result).toEqual({ action: 'released', environment: 'acceptance', execution: EXECUTION });
      expect(leaseWrites()).toEqual([
        {
          ifMatch: '"etag-held"',
          lease: { ...withoutBuild, released: true, releasedAt: NOW.toISOString(), outcome: `execution ${status}` },
        },
      ]);
      expect(codebuildMock).not.toHaveReceivedCommand(StopBuildCommand);
    },
  );

  test("a late FAILED event of an earlier run leaves the redriven run's lease and build alone (redriveCount)", async () => {
    holding({ ...heldLease, redriveCount: 1, leaseId: 'lease-run-1' });

    const result = await releaseForEndedExecution(executionEvent('FAILED', { redriveCount: 0 }), deps);

    expect(result).toEqual({
      action: 'ignored',
      reason: `the acceptance lease is held by run 1 of ${EXECUTION}; this event ended run 0`,
    });
    expect(codebuildMock).not.toHaveReceivedCommand(StopBuildCommand);
    expect(s3Mock).not.toHaveReceivedCommand(PutObjectCommand);
  });

  test('the ended event of the redriven run itself stops its build', async () => {
    holding({ ...heldLease, redriveCount: 1 });

    await expect(releaseForEndedExecution(executionEvent('ABORTED', { redriveCount: 1 }), deps)).resolves.toMatchObject(
      { action: 'stopped-build' },
    );
  });

  test("another execution's lease, or a SUCCEEDED execution: nothing is touched; a released lease of this run only has its build stopped if it runs", async () => {
    holding({ ...heldLease, execution: 'acceptance-20261129T095500-cccccc' });
    await expect(releaseForEndedExecution(executionEvent('ABORTED'), deps)).resolves.toMatchObject({
      action: 'ignored',
    });
    await expect(releaseForEndedExecution(executionEvent('SUCCEEDED'), deps)).resolves.toEqual({
      action: 'ignored',
      reason: 'execution is SUCCEEDED',
    });
    holding({ ...heldLease, released: true, outcome: 'SUCCEEDED' });
    codebuildMock.on(BatchGetBuildsCommand).resolves({ builds: [{ id: BUILD_ID, buildComplete: true }] });
    await expect(releaseForEndedExecution(executionEvent('FAILED'), deps)).resolves.toMatchObject({
      action: 'released',
    });

    expect(codebuildMock).not.toHaveReceivedCommand(StopBuildCommand);
    expect(s3Mock).not.toHaveReceivedCommand(PutObjectCommand);
  });

  test('an input that is not JSON or names no valid environment (input too large to include) is ignored', async () => {
    await expect(
      releaseForEndedExecution(executionEvent('FAILED', { input: 'not json' }), deps),
    ).resolves.toMatchObject({ action: 'ignored' });
    await expect(releaseForEndedExecution(executionEvent('FAILED', { input: null }), deps)).resolves.toMatchObject({
      action: 'ignored',
    });
    await expect(
      releaseForEndedExecution(executionEvent('FAILED', { input: JSON.stringify({ environment: '../x' }) }), deps),
    ).resolves.toMatchObject({ action: 'ignored' });
    expect(s3Mock).not.toHaveReceivedCommand(GetObjectCommand);
  });
});
