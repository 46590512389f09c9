import { mkdtempSync, rmSync } from 'node:fs';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  DescribeExecutionCommand,
  DescribeStateMachineCommand,
  DescribeStateMachineForExecutionCommand,
  ExecutionDoesNotExist,
  ExecutionNotRedrivable,
  GetExecutionHistoryCommand,
  InvalidExecutionInput,
  InvalidArn,
  InvalidName,
  ListExecutionsCommand,
  ListStateMachinesCommand,
  RedriveExecutionCommand,
  SFNClient,
  StartExecutionCommand,
  StopExecutionCommand,
  type ExecutionStatus,
} from '@aws-sdk/client-sfn';
import {
  BatchGetBuildsCommand,
  CodeBuildClient,
  ListBuildsForProjectCommand,
  StartBuildCommand,
  StopBuildCommand,
} from '@aws-sdk/client-codebuild';
import { ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import { LocalStateMachine, type TaskImplementation } from '../../local/engine';
import { codeBuildOperations, createApiHandler, stepFunctionsOperations } from '../../local/api';
import { closeServer, createLocalS3Handler, listenLocal, localS3Client } from '../../local/s3';

const LAMBDA = 'arn:aws:states:::lambda:invoke';
let dir: string;
let server: Server;
let sfn: SFNClient;
let machine: LocalStateMachine;
let endpoint: string;
let fail = true;
let release: (() => void) | undefined;

const invoke: TaskImplementation = async (parameters) => {
  const { name } = parameters as { name: string };
  if (name === 'block') await new Promise<void>((resolve) => (release = resolve));
  if (name === 'second' && fail) {
    const err = new Error('second broke');
    err.name = 'SecondError';
    throw err;
  }
  return { ok: name };
};

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'stepdeploy-api-'));
  machine = new LocalStateMachine({
    name: 'toy',
    definition: {
      StartAt: 'Gate',
      States: {
        Gate: {
          Type: 'Task',
          Resource: LAMBDA,
          Parameters: { 'name.$': '$.gate' },
          ResultPath: '$.gate_result',
          TimeoutSeconds: 30,
          Next: 'Second',
        },
        Second: { Type: 'Task', Resource: LAMBDA, Parameters: { name: 'second' }, TimeoutSeconds: 5, End: true },
      },
    },
    region: 'us-east-1',
    account: '000000000000',
    directory: join(dir, 'executions'),
    resources: { [LAMBDA]: invoke },
  });
  const build = {
    id: 'fetch:1',
    buildStatus: 'SUCCEEDED',
    startTime: Date.parse('2026-11-29T03:00:00.000Z') / 1000,
    phases: [{ phaseType: 'BUILD', phaseStatus: 'SUCCEEDED' }],
  };
  const builds = {
    batchGetBuilds: (ids: ReadonlyArray<string>) => ({
      builds: ids.includes('fetch:1') ? [build] : [],
      buildsNotFound: ids.filter((id) => id !== 'fetch:1'),
    }),
    startBuild: (request: Record<string, unknown>) => ({
      ...build,
      id: `${String(request.projectName)}:2`,
      buildStatus: 'IN_PROGRESS',
    }),
    stopBuild: (id: string) => ({ ...build, id, buildStatus: 'STOPPED' }),
    listBuildsForProject: ({ projectName }: { projectName: string }) => ({
      ids: projectName === 'fetch' ? ['fetch:1'] : [],
    }),
  };
  const s3 = await createLocalS3Handler({ directory: join(dir, 's3'), buckets: ['toy-artifacts'] });
  ({ server, endpoint } = await listenLocal(
    createApiHandler({ stepFunctions: stepFunctionsOperations(machine), codeBuild: codeBuildOperations(builds) }, s3),
  ));
  sfn = new SFNClient({
    endpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
  });
});

afterAll(async () => {
  await machine.stopAll();
  sfn.destroy();
  await closeServer(server);
  rmSync(dir, { recursive: true, force: true });
});

async function waitFor(executionArn: string, statuses: ExecutionStatus[]): Promise<string> {
  for (;;) {
    const { status } = await sfn.send(new DescribeExecutionCommand({ executionArn }));
    if (statuses.includes(status!)) return status!;
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('local AWS API endpoint', () => {
  test('lists and describes the state machine', async () => {
    const { stateMachines } = await sfn.send(new ListStateMachinesCommand({}));
    expect(stateMachines).toEqual([
      expect.objectContaining({ name: 'toy', type: 'STANDARD', stateMachineArn: machine.stateMachineArn }),
    ]);
    const described = await sfn.send(new DescribeStateMachineCommand({ stateMachineArn: machine.stateMachineArn }));
    expect(JSON.parse(described.definition!).StartAt).toBe('Gate');
    expect(described.creationDate).toBeInstanceOf(Date);
    await expect(
      sfn.send(
        new DescribeStateMachineForExecutionCommand({
          executionArn: `${machine.stateMachineArn.replace(':stateMachine:', ':execution:')}:none`,
        }),
      ),
    ).rejects.toBeInstanceOf(ExecutionDoesNotExist);
  });

  test('starts, fails at a state, shows history, redrives to SUCCEEDED with the same ARN', async () => {
    fail = true;
    const { executionArn } = await sfn.send(
      new StartExecutionCommand({
        stateMachineArn: machine.stateMachineArn,
        name: 'run-1',
        input: JSON.stringify({ gate: 'open' }),
      }),
    );
    expect(await waitFor(executionArn!, ['FAILED'])).toBe('FAILED');
    const failed = await sfn.send(new DescribeExecutionCommand({ executionArn }));
    expect(failed).toMatchObject({ error: 'SecondError', cause: 'second broke', redriveStatus: 'REDRIVABLE' });
    expect(failed.startDate).toBeInstanceOf(Date);

    const forExecution = await sfn.send(new DescribeStateMachineForExecutionCommand({ executionArn }));
    expect(JSON.parse(forExecution.definition!).StartAt).toBe('Gate');
    const { events } = await sfn.send(new GetExecutionHistoryCommand({ executionArn }));
    expect(events![0]).toMatchObject({ type: 'ExecutionStarted', id: 1, previousEventId: 0 });
    expect(events!.find((e) => e.type === 'TaskFailed')!.taskFailedEventDetails).toMatchObject({
      resourceType: 'lambda',
      resource: 'invoke',
      error: 'SecondError',
    });
    expect(events!.at(-1)!.type).toBe('ExecutionFailed');

    fail = false;
    const { redriveDate } = await sfn.send(new RedriveExecutionCommand({ executionArn }));
    expect(redriveDate).toBeInstanceOf(Date);
    expect(await waitFor(executionArn!, ['SUCCEEDED'])).toBe('SUCCEEDED');
    const after = await sfn.send(new GetExecutionHistoryCommand({ executionArn, reverseOrder: true, maxResults: 1 }));
    expect(after.events![0]!.type).toBe('ExecutionSucceeded');
    expect(after.nextToken).toEqual(expect.any(String));
    await expect(sfn.send(new RedriveExecutionCommand({ executionArn }))).rejects.toBeInstanceOf(
      ExecutionNotRedrivable,
    );
  });

  test('stops a running execution: ABORTED', async () => {
    const { executionArn } = await sfn.send(
      new StartExecutionCommand({
        stateMachineArn: machine.stateMachineArn,
        name: 'run-2',
        input: JSON.stringify({ gate: 'block' }),
      }),
    );
    await sfn.send(new StopExecutionCommand({ executionArn, error: 'Manual', cause: 'test' }));
    release?.();
    expect(await waitFor(executionArn!, ['ABORTED'])).toBe('ABORTED');
    const { executions } = await sfn.send(
      new ListExecutionsCommand({ stateMachineArn: machine.stateMachineArn, statusFilter: 'ABORTED' }),
    );
    expect(executions!.map((e) => e.name)).toEqual(['run-2']);
  });

  test('answers with AWS error types the SDK recognizes', async () => {
    await expect(
      sfn.send(
        new DescribeExecutionCommand({
          executionArn: `${machine.stateMachineArn.replace(':stateMachine:', ':execution:')}:nope`,
        }),
      ),
    ).rejects.toBeInstanceOf(ExecutionDoesNotExist);
    await expect(
      sfn.send(
        new StartExecutionCommand({ stateMachineArn: machine.stateMachineArn, name: 'bad', input: '{not json' }),
      ),
    ).rejects.toBeInstanceOf(InvalidExecutionInput);
    await expect(
      sfn.send(new StartExecutionCommand({ stateMachineArn: machine.stateMachineArn, name: 'a/b', input: '{}' })),
    ).rejects.toBeInstanceOf(InvalidName);
  });

  test('answers InvalidArn, as Step Functions does, for an ARN that is not one of the kind the call takes', async () => {
    const executionArn = `${machine.stateMachineArn.replace(':stateMachine:', ':execution:')}:run-1`;
    const calls = [
      new DescribeExecutionCommand({ executionArn: 'run-1' }),
      new DescribeExecutionCommand({ executionArn: machine.stateMachineArn }),
      new GetExecutionHistoryCommand({ executionArn: 'arn:aws:s3:::bucket' }),
      new StartExecutionCommand({ stateMachineArn: executionArn, input: '{}' }),
      new ListExecutionsCommand({ stateMachineArn: 'stepdeploy-example' }),
    ];

    const answers = await Promise.all(
      calls.map((call) =>
        sfn.send(call as never).then(
          () => 'answered',
          (err: Error) => `${err.name}: ${err.message}`,
        ),
      ),
    );

    expect(answers).toEqual([
      "InvalidArn: Invalid Arn: 'Invalid ARN prefix: run-1'",
      "InvalidArn: Invalid Arn: 'Resource type not valid in this context: stateMachine'",
      "InvalidArn: Invalid Arn: 'Invalid ARN prefix: arn:aws:s3:::bucket'",
      "InvalidArn: Invalid Arn: 'Resource type not valid in this context: execution'",
      "InvalidArn: Invalid Arn: 'Invalid ARN prefix: stepdeploy-example'",
    ]);
    await expect(sfn.send(new DescribeExecutionCommand({ executionArn: 'run-1' }))).rejects.toBeInstanceOf(InvalidArn);
  });

  test('answers CodeBuild BatchGetBuilds, StartBuild, StopBuild and ListBuildsForProject so the CodeBuild SDK client parses them', async () => {
    const codebuild = new CodeBuildClient({
      endpoint,
      region: 'us-east-1',
      credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    });
    const out = await codebuild.send(new BatchGetBuildsCommand({ ids: ['fetch:1', 'missing:2'] }));
    expect(out.builds).toEqual([
      expect.objectContaining({
        id: 'fetch:1',
        buildStatus: 'SUCCEEDED',
        phases: [expect.objectContaining({ phaseType: 'BUILD' })],
      }),
    ]);
    expect(out.builds![0]!.startTime).toEqual(new Date('2026-11-29T03:00:00.000Z'));
    expect(out.buildsNotFound).toEqual(['missing:2']);
    const started = await codebuild.send(
      new StartBuildCommand({ projectName: 'deploy', sourceTypeOverride: 'S3', sourceLocationOverride: 'b/k.zip' }),
    );
    expect(started.build).toMatchObject({ id: 'deploy:2', buildStatus: 'IN_PROGRESS' });
    const stopped = await codebuild.send(new StopBuildCommand({ id: 'deploy:2' }));
    expect(stopped.build).toMatchObject({ id: 'deploy:2', buildStatus: 'STOPPED' });
    await expect(codebuild.send(new ListBuildsForProjectCommand({ projectName: 'fetch' }))).resolves.toMatchObject({
      ids: ['fetch:1'],
    });
    await expect(
      codebuild.send(new ListBuildsForProjectCommand({ projectName: 'fetch', sortOrder: 'SIDEWAYS' as never })),
    ).rejects.toMatchObject({
      name: 'InvalidInputException',
    });
    codebuild.destroy();
  });

  test('serves S3 on the same endpoint', async () => {
    const s3 = localS3Client(endpoint);
    await s3.send(new PutObjectCommand({ Bucket: 'toy-artifacts', Key: 'artifacts/x.txt', Body: 'x' }));
    const listed = await s3.send(new ListObjectsV2Command({ Bucket: 'toy-artifacts', Prefix: 'artifacts/' }));
    expect(listed.Contents!.map((o) => o.Key)).toEqual(['artifacts/x.txt']);
    s3.destroy();
  });
});
