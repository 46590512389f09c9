import { CloudWatchLogsClient, GetLogEventsCommand, ResourceNotFoundException } from '@aws-sdk/client-cloudwatch-logs';
import { BatchGetBuildsCommand, CodeBuildClient } from '@aws-sdk/client-codebuild';
import {
  DescribeExecutionCommand,
  DescribeStateMachineForExecutionCommand,
  ExecutionDoesNotExist,
  GetExecutionHistoryCommand,
  ListExecutionsCommand,
  RedriveExecutionCommand,
  SFNClient,
  SFNServiceException,
  StartExecutionCommand,
  StopExecutionCommand,
  type HistoryEvent,
} from '@aws-sdk/client-sfn';
import { mockClient } from 'aws-sdk-client-mock';
import { join } from 'node:path';
import { makeProgram, runCli } from '../../cli/main';
import { ExitCode } from '../../cli/exit-codes';
import type { Io } from '../../cli/io';
import { placeholdersIn, readDefinitionText, substitute } from '../../workflows/definition';

/** The CLI against AWS response shapes (aws-sdk-client-mock): parsing, output, exit codes. */

const sfnMock = mockClient(SFNClient);
const codebuildMock = mockClient(CodeBuildClient);
const logsMock = mockClient(CloudWatchLogsClient);

const CONFIG = join(__dirname, '..', '..', 'stepdeploy.config.yml');
const MACHINE = 'arn:aws:states:eu-west-1:111111111111:stateMachine:shop';
const EXECUTION = 'acceptance-20261129T031500-k3x9qa';
const EXECUTION_ARN = `arn:aws:states:eu-west-1:111111111111:execution:shop:${EXECUTION}`;
const FETCH_BUILD = 'shop-FetchProjectName:0b5c7f1e-1111-2222-3333-444455556666';

/** The deployed definition as DescribeStateMachine returns it: every placeholder substituted. */
function deployedDefinition(): string {
  const text = readDefinitionText();
  const values = Object.fromEntries(
    placeholdersIn(text).map((name) => [
      name,
      name.endsWith('Arn') ? `arn:aws:lambda:eu-west-1:111111111111:function:shop-${name}` : `shop-${name}`,
    ]),
  );
  return substitute(text, values);
}

interface Captured extends Io {
  readonly stdout: () => string;
  readonly stderr: () => string;
}

function capture(isTTY = false): Captured {
  let out = '';
  let err = '';
  return {
    out: (text) => {
      out += text;
    },
    err: (text) => {
      err += text;
    },
    isTTY,
    columns: 200,
    stdout: () => out,
    stderr: () => err,
  };
}

function cli(args: string, io: Io = capture()): Promise<ExitCode> {
  const argv = args.match(/"[^"]*"|\S+/g)!.map((a) => a.replace(/^"|"$/g, ''));
  return runCli(['node', 'stepdeploy', '--config', CONFIG, ...argv], io);
}

const t0 = new Date('2026-11-29T03:15:00Z');
const at = (seconds: number): Date => new Date(t0.getTime() + seconds * 1000);

const RUNNING_EVENTS: HistoryEvent[] = [
  {
    id: 1,
    previousEventId: 0,
    timestamp: at(0),
    type: 'ExecutionStarted',
    executionStartedEventDetails: { input: '{"environment":"acceptance","branches":{"app":"develop"}}' },
  },
  {
    id: 2,
    previousEventId: 1,
    timestamp: at(0),
    type: 'TaskStateEntered',
    stateEnteredEventDetails: { name: 'ValidateInput', input: '{}' },
  },
  {
    id: 3,
    previousEventId: 2,
    timestamp: at(0),
    type: 'TaskScheduled',
    taskScheduledEventDetails: { resourceType: 'lambda', resource: 'invoke', region: 'eu-west-1', parameters: '{}' },
  },
  {
    id: 4,
    previousEventId: 3,
    timestamp: at(1),
    type: 'TaskSucceeded',
    taskSucceededEventDetails: { resourceType: 'lambda', resource: 'invoke', output: '{"Payload":{}}' },
  },
  {
    id: 5,
    previousEventId: 4,
    timestamp: at(1),
    type: 'TaskStateExited',
    stateExitedEventDetails: { name: 'ValidateInput', output: '{}' },
  },
  {
    id: 6,
    previousEventId: 5,
    timestamp: at(1),
    type: 'MapStateEntered',
    stateEnteredEventDetails: { name: 'FetchSources', input: '{}' },
  },
  { id: 7, previousEventId: 6, timestamp: at(1), type: 'MapStateStarted', mapStateStartedEventDetails: { length: 1 } },
  {
    id: 8,
    previousEventId: 7,
    timestamp: at(1),
    type: 'MapIterationStarted',
    mapIterationStartedEventDetails: { name: 'FetchSources', index: 0 },
  },
  {
    id: 9,
    previousEventId: 8,
    timestamp: at(1),
    type: 'TaskStateEntered',
    stateEnteredEventDetails: { name: 'FetchSource', input: '{"source":{"name":"app","branch":"develop"}}' },
  },
  {
    id: 10,
    previousEventId: 9,
    timestamp: at(1),
    type: 'TaskScheduled',
    taskScheduledEventDetails: {
      resourceType: 'codebuild',
      resource: 'startBuild.sync',
      region: 'eu-west-1',
      parameters: '{}',
    },
  },
  {
    id: 11,
    previousEventId: 10,
    timestamp: at(2),
    type: 'TaskSubmitted',
    taskSubmittedEventDetails: {
      resourceType: 'codebuild',
      resource: 'startBuild.sync',
      output: JSON.stringify({ Build: { Id: FETCH_BUILD } }),
    },
  },
];

const FAILED_BUILD_CAUSE = JSON.stringify({
  Build: {
    Id: FETCH_BUILD,
    BuildStatus: 'FAILED',
    Phases: [
      {
        PhaseType: 'DOWNLOAD_SOURCE',
        PhaseStatus: 'FAILED',
        Contexts: [{ Message: 'CLIENT_ERROR: reference not found for primary source and source version develop' }],
      },
    ],
  },
});

const FAILED_EVENTS: HistoryEvent[] = [
  ...RUNNING_EVENTS,
  {
    id: 12,
    previousEventId: 11,
    timestamp: at(30),
    type: 'TaskFailed',
    taskFailedEventDetails: {
      resourceType: 'codebuild',
      resource: 'startBuild.sync',
      error: 'States.TaskFailed',
      cause: FAILED_BUILD_CAUSE,
    },
  },
  {
    id: 13,
    previousEventId: 12,
    timestamp: at(30),
    type: 'MapIterationFailed',
    mapIterationFailedEventDetails: { name: 'FetchSources', index: 0 },
  },
  { id: 14, previousEventId: 13, timestamp: at(30), type: 'MapStateFailed' },
  {
    id: 15,
    previousEventId: 14,
    timestamp: at(30),
    type: 'ExecutionFailed',
    executionFailedEventDetails: { error: 'States.TaskFailed', cause: FAILED_BUILD_CAUSE },
  },
];

/** GetExecutionHistory as AWS pages it, newest first when reverseOrder is set. */
function history(events: HistoryEvent[]) {
  return (input: { reverseOrder?: boolean }) => ({ events: input.reverseOrder ? [...events].reverse() : events });
}

beforeEach(() => {
  sfnMock.reset();
  codebuildMock.reset();
  logsMock.reset();
  process.env.STEPDEPLOY_STATE_MACHINE_ARN = MACHINE;
  delete process.env.STEPDEPLOY_ARTIFACTS_BUCKET;
  sfnMock
    .on(DescribeStateMachineForExecutionCommand)
    .resolves({ stateMachineArn: MACHINE, definition: deployedDefinition() });
  sfnMock
    .on(DescribeExecutionCommand)
    .resolves({ executionArn: EXECUTION_ARN, stateMachineArn: MACHINE, status: 'RUNNING', startDate: t0 });
});

afterAll(() => {
  delete process.env.STEPDEPLOY_STATE_MACHINE_ARN;
});

describe('start', () => {
  it('validates, starts with the generated name and input, prints the ARN and console URL', async () => {
    sfnMock.on(StartExecutionCommand).callsFake((input: { name: string }) => ({
      executionArn: `arn:aws:states:eu-west-1:111111111111:execution:shop:${input.name}`,
      startDate: t0,
    }));
    const io = capture();

    const code = await cli('start --env acceptance --branch app=develop config=main --requested-by alice', io);

    expect(code).toBe(ExitCode.Ok);
    const sent = sfnMock.commandCalls(StartExecutionCommand)[0]!.args[0].input;
    expect(sent.stateMachineArn).toBe(MACHINE);
    expect(sent.name).toMatch(/^acceptance-\d{8}T\d{6}-[a-z0-9]{6}$/);
    expect(JSON.parse(sent.input!)).toEqual({
      environment: 'acceptance',
      branches: { app: 'develop', config: 'main' },
      requestedBy: 'alice',
    });
    expect(io.stdout()).toContain(`execution:shop:${sent.name}`);
    expect(io.stdout()).toContain(
      `https://eu-west-1.console.aws.amazon.com/states/home?region=eu-west-1#/v2/executions/details/arn:aws:states:eu-west-1:111111111111:execution:shop:${sent.name}`,
    );
  });

  it('fails before StartExecution when the branch policy forbids the branch, naming the policy', async () => {
    const io = capture();

    const code = await cli('start --env production --branch app=feature/x', io);

    expect(code).toBe(ExitCode.Usage);
    expect(sfnMock).not.toHaveReceivedCommand(StartExecutionCommand);
    expect(io.stderr()).toContain('nothing was started');
    expect(io.stderr()).toContain('branches.app: "feature/x" is not allowed in production; allowed: main');
  });

  it('fails on a bad --branch, --name or unknown source with the value and the fix', async () => {
    const bad = capture();
    const name = capture();
    const source = capture();

    expect(await cli('start --env acceptance --branch app', bad)).toBe(ExitCode.Usage);
    expect(await cli('start --env acceptance --name acc/1', name)).toBe(ExitCode.Usage);
    expect(await cli('start --env acceptance --branch web=main', source)).toBe(ExitCode.Usage);

    expect(bad.stderr()).toContain('--branch takes SOURCE=BRANCH, got "app" (e.g. --branch app=develop)');
    expect(name.stderr()).toContain('--name "acc/1" is not a valid execution name');
    expect(source.stderr()).toContain('branches.web: "main" is for an unknown source "web"');
    expect(sfnMock).not.toHaveReceivedCommand(StartExecutionCommand);
  });

  it('pins a commit per source with --commit, as a CI job passes the pushed one', async () => {
    sfnMock.on(StartExecutionCommand).resolves({ executionArn: EXECUTION_ARN, startDate: t0 });
    const commit = 'a'.repeat(40);

    const code = await cli(`start --env acceptance --branch app=feature/x --commit app=${commit}`);

    expect(code).toBe(ExitCode.Ok);
    const sent = sfnMock.commandCalls(StartExecutionCommand)[0]!.args[0].input;
    expect(JSON.parse(sent.input!)).toMatchObject({ branches: { app: 'feature/x' }, commits: { app: commit } });
  });

  it('fails on a bad --commit with the input rule, the value and the fix, starting nothing', async () => {
    const short = capture();
    const unknown = capture();
    const shape = capture();
    const twice = capture();

    expect(await cli('start --env acceptance --commit app=abc1234', short)).toBe(ExitCode.Usage);
    expect(await cli(`start --env acceptance --commit web=${'b'.repeat(40)}`, unknown)).toBe(ExitCode.Usage);
    expect(await cli('start --env acceptance --commit app', shape)).toBe(ExitCode.Usage);
    expect(await cli(`start --env acceptance --commit app=${'c'.repeat(40)} app=${'d'.repeat(40)}`, twice)).toBe(
      ExitCode.Usage,
    );

    expect(short.stderr()).toContain(
      'commits.app: "abc1234" must be a full commit id: 40 (or 64) lowercase hexadecimal digits',
    );
    expect(unknown.stderr()).toContain(
      'commits.web: "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb" is for an unknown source "web"',
    );
    expect(shape.stderr()).toContain('--commit takes SOURCE=COMMIT, got "app" (e.g. --commit app=$GITHUB_SHA)');
    expect(twice.stderr()).toContain('--commit names source "app" twice');
    expect(sfnMock).not.toHaveReceivedCommand(StartExecutionCommand);
  });

  it('fails without a state machine ARN, saying where to put it', async () => {
    delete process.env.STEPDEPLOY_STATE_MACHINE_ARN;
    const io = capture();

    const code = await cli('start --env acceptance', io);

    expect(code).toBe(ExitCode.Usage);
    expect(io.stderr()).toMatch(
      /--state-machine-arn or set STEPDEPLOY_STATE_MACHINE_ARN.*the config file does not hold the ARN/,
    );
  });

  it('turns ExecutionAlreadyExists into one line with the fix', async () => {
    sfnMock.on(StartExecutionCommand).rejects(
      new SFNServiceException({
        name: 'ExecutionAlreadyExists',
        $fault: 'client',
        $metadata: {},
        message: `Execution Already Exists: '${EXECUTION_ARN}'`,
      }),
    );
    const io = capture();

    const code = await cli(`start --env acceptance --name ${EXECUTION}`, io);

    expect(code).toBe(ExitCode.ServiceError);
    expect(io.stderr().trim().split('\n')).toEqual([
      `stepdeploy: Execution Already Exists: '${EXECUTION_ARN}': execution names are unique for 90 days; pass another --name or leave it out for a generated one`,
    ]);
  });
});

describe('watch', () => {
  it('draws the graph from the deployed definition, the running build, then the failure; exits 1', async () => {
    sfnMock.on(GetExecutionHistoryCommand).callsFakeOnce(history(RUNNING_EVENTS)).callsFake(history(FAILED_EVENTS));
    codebuildMock.on(BatchGetBuildsCommand).resolves({
      builds: [
        {
          id: FETCH_BUILD,
          projectName: 'shop-FetchProjectName',
          buildNumber: 7,
          buildStatus: 'IN_PROGRESS',
          currentPhase: 'DOWNLOAD_SOURCE',
          logs: {
            deepLink:
              'https://console.aws.amazon.com/cloudwatch/home?region=eu-west-1#logEvent:group=/aws/codebuild/shop-fetch',
          },
        },
      ],
    });
    const io = capture();

    const code = await cli(`watch ${EXECUTION} --interval 0.05`, io);

    expect(code).toBe(ExitCode.ExecutionFailed);
    expect(sfnMock).toHaveReceivedCommandWith(GetExecutionHistoryCommand, {
      executionArn: EXECUTION_ARN,
      includeExecutionData: true,
    });
    expect(codebuildMock).toHaveReceivedCommandWith(BatchGetBuildsCommand, { ids: [FETCH_BUILD] });
    const out = io.stdout();
    expect(out).toContain(
      'console: https://eu-west-1.console.aws.amazon.com/states/home?region=eu-west-1#/v2/executions/details/' +
        EXECUTION_ARN,
    );
    expect(out).toMatch(/✓ ValidateInput\s+succeeded\s+1\.0s/);
    expect(out).toContain(
      'build shop-FetchProjectName #7 download_source  log: https://console.aws.amazon.com/cloudwatch/',
    );
    expect(out).toMatch(/✗ app @ develop\s+failed/);
    expect(out).toContain('States.TaskFailed: build FAILED in DOWNLOAD_SOURCE: CLIENT_ERROR: reference not found');
    for (const state of ['CombineConfigAndCode', 'BuildTemplates', 'RecordDeployment'])
      expect(out).toMatch(new RegExp(`· ${state}\\s+pending`));
    expect(io.stderr()).toContain(`execution ${EXECUTION} FAILED at FetchSources`);
    expect(io.stderr()).toContain(`stepdeploy redrive ${EXECUTION}`);
  });

  it('redraws in place on a terminal', async () => {
    sfnMock.on(GetExecutionHistoryCommand).callsFakeOnce(history(RUNNING_EVENTS)).callsFake(history(FAILED_EVENTS));
    codebuildMock.on(BatchGetBuildsCommand).resolves({ builds: [] });
    const io = capture(true);

    await cli(`watch ${EXECUTION_ARN} --interval 0.05`, io);

    expect(io.stdout()).toMatch(/\x1b\[\d+A\r\x1b\[J/);
    expect(io.stdout()).toContain(`execution ${EXECUTION}  FAILED`);
  });

  it('prints one history event per line with --json', async () => {
    sfnMock.on(GetExecutionHistoryCommand).callsFake(history(FAILED_EVENTS));
    const io = capture();

    await cli(`watch ${EXECUTION} --json`, io);

    const lines = io
      .stdout()
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { id: number; type: string });
    expect(lines.map((e) => e.id)).toEqual(FAILED_EVENTS.map((e) => e.id));
    expect(lines.at(-1)!.type).toBe('ExecutionFailed');
  });

  it('fails with one line and exit code 3 for an unknown execution', async () => {
    sfnMock
      .on(DescribeStateMachineForExecutionCommand)
      .rejects(new ExecutionDoesNotExist({ $metadata: {}, message: `Execution Does Not Exist: '${EXECUTION_ARN}'` }));
    const io = capture();

    const code = await cli(`watch ${EXECUTION}`, io);

    expect(code).toBe(ExitCode.ServiceError);
    expect(io.stderr().trim().split('\n')).toHaveLength(1);
    expect(io.stderr()).toContain(`Execution Does Not Exist: '${EXECUTION_ARN}': no such execution`);
  });

  it('shows the stack with --debug', async () => {
    sfnMock.on(DescribeStateMachineForExecutionCommand).rejects(
      new ExecutionDoesNotExist({
        $metadata: { httpStatusCode: 400, requestId: 'req-1' },
        message: 'Execution Does Not Exist',
      }),
    );
    const io = capture();

    await cli(`watch ${EXECUTION} --debug`, io);

    expect(io.stderr()).toContain('ExecutionDoesNotExist');
    expect(io.stderr()).toContain('"requestId":"req-1"');
  });
});

describe('service errors', () => {
  it.each([
    [
      'AccessDeniedException',
      'is not authorized to perform: states:ListExecutions',
      /access denied: .*operator policy/,
    ],
    [
      'ExpiredTokenException',
      'The security token included in the request is expired',
      /credentials have expired.*aws sso login/,
    ],
    [
      'UnrecognizedClientException',
      'The security token included in the request is invalid',
      /no valid AWS credentials/,
    ],
  ])('%s becomes one clear line', async (name, message, expected) => {
    sfnMock
      .on(ListExecutionsCommand)
      .rejects(new SFNServiceException({ name, $fault: 'client', $metadata: {}, message }));
    const io = capture();

    const code = await cli('executions', io);

    expect(code).toBe(ExitCode.ServiceError);
    expect(io.stderr().trim().split('\n')).toHaveLength(1);
    expect(io.stderr()).toMatch(expected);
  });

  it('fails on a bare name that is not an execution name', async () => {
    const io = capture();

    const code = await cli('history arn:aws:states:eu-west-1:111111111111:stateMachine:shop', io);

    expect(code).toBe(ExitCode.Usage);
    expect(io.stderr()).toContain('is not an execution ARN');
  });
});

describe('executions', () => {
  it('lists with environment and branches from each input, filtered by --env, as JSON', async () => {
    sfnMock.on(ListExecutionsCommand).resolves({
      executions: [
        {
          executionArn: `${EXECUTION_ARN}-p`,
          stateMachineArn: MACHINE,
          name: 'p',
          status: 'SUCCEEDED',
          startDate: at(0),
          stopDate: at(90),
        },
        {
          executionArn: EXECUTION_ARN,
          stateMachineArn: MACHINE,
          name: EXECUTION,
          status: 'FAILED',
          startDate: at(0),
          stopDate: at(30),
          redriveCount: 1,
        },
      ],
    });
    sfnMock
      .on(DescribeExecutionCommand, { executionArn: `${EXECUTION_ARN}-p` })
      .resolves({ input: '{"environment":"production","branches":{"app":"main"}}' })
      .on(DescribeExecutionCommand, { executionArn: EXECUTION_ARN })
      .resolves({ input: '{"environment":"acceptance","branches":{"app":"develop"},"requestedBy":"alice"}' });
    const io = capture();

    const code = await cli('executions --env acceptance --status failed --limit 5 --json', io);

    expect(code).toBe(ExitCode.Ok);
    expect(sfnMock).toHaveReceivedCommandWith(ListExecutionsCommand, {
      stateMachineArn: MACHINE,
      statusFilter: 'FAILED',
    });
    expect(JSON.parse(io.stdout())).toEqual([
      {
        name: EXECUTION,
        executionArn: EXECUTION_ARN,
        status: 'FAILED',
        environment: 'acceptance',
        branches: { app: 'develop' },
        requestedBy: 'alice',
        startDate: at(0).toISOString(),
        stopDate: at(30).toISOString(),
        redriveCount: 1,
      },
    ]);
  });

  it('prints a table', async () => {
    sfnMock.on(ListExecutionsCommand).resolves({
      executions: [
        {
          executionArn: EXECUTION_ARN,
          stateMachineArn: MACHINE,
          name: EXECUTION,
          status: 'SUCCEEDED',
          startDate: at(0),
          stopDate: at(75),
        },
      ],
    });
    sfnMock
      .on(DescribeExecutionCommand)
      .resolves({ input: '{"environment":"acceptance","branches":{"app":"develop"}}' });
    const io = capture();

    await cli('executions', io);

    expect(io.stdout()).toMatch(/^NAME\s+STATUS\s+ENV\s+BRANCHES\s+STARTED\s+DURATION\n/);
    expect(io.stdout()).toMatch(
      new RegExp(`${EXECUTION}\\s+SUCCEEDED\\s+acceptance\\s+app=develop\\s+2026-11-29T03:15:00Z\\s+1m15s`),
    );
  });

  it('shows the branches the execution resolved (its plan), also for sources its input did not name', async () => {
    sfnMock.on(ListExecutionsCommand).resolves({
      executions: [
        {
          executionArn: EXECUTION_ARN,
          stateMachineArn: MACHINE,
          name: EXECUTION,
          status: 'SUCCEEDED',
          startDate: at(0),
          stopDate: at(75),
        },
      ],
    });
    sfnMock.on(DescribeExecutionCommand).resolves({ input: '{"environment":"acceptance"}' });
    const plan = {
      environment: 'acceptance',
      sources: [
        { name: 'app', branch: 'main' },
        { name: 'config', branch: 'develop' },
      ],
    };
    sfnMock.on(GetExecutionHistoryCommand, { executionArn: EXECUTION_ARN }).resolves({
      events: [
        { id: 1, timestamp: at(0), type: 'ExecutionStarted' },
        { id: 2, timestamp: at(0), type: 'TaskStateEntered', stateEnteredEventDetails: { name: 'ValidateInput' } },
        {
          id: 6,
          timestamp: at(1),
          type: 'TaskStateExited',
          stateExitedEventDetails: { name: 'ValidateInput', output: JSON.stringify(plan) },
        },
      ],
    });
    const io = capture();

    await cli('executions', io);

    expect(io.stdout()).toMatch(new RegExp(`${EXECUTION}\\s+SUCCEEDED\\s+acceptance\\s+app=main config=develop\\s+`));
    expect(io.stdout()).not.toContain('(defaults)');
  });

  it('shows a RUNNING execution that waits at AwaitApproval as waiting for approval, from the end of its history only', async () => {
    const row = (name: string, status: 'RUNNING' | 'SUCCEEDED') => ({
      executionArn: `${EXECUTION_ARN}-${name}`,
      stateMachineArn: MACHINE,
      name: `${EXECUTION}-${name}`,
      status,
      startDate: at(0),
    });
    sfnMock.on(ListExecutionsCommand).resolves({
      executions: [row('waits', 'RUNNING'), row('deploys', 'RUNNING'), row('done', 'SUCCEEDED')],
    });
    sfnMock.on(DescribeExecutionCommand).resolves({ input: '{"environment":"production"}' });
    sfnMock.on(GetExecutionHistoryCommand).resolves({ events: [] });
    // Newest first, as reverseOrder returns them.
    sfnMock.on(GetExecutionHistoryCommand, { executionArn: `${EXECUTION_ARN}-waits`, reverseOrder: true }).resolves({
      events: [
        { id: 40, timestamp: at(60), type: 'TaskSubmitted' },
        { id: 39, timestamp: at(60), type: 'TaskStarted' },
        { id: 38, timestamp: at(60), type: 'TaskScheduled' },
        { id: 37, timestamp: at(60), type: 'TaskStateEntered', stateEnteredEventDetails: { name: 'AwaitApproval' } },
      ],
    });
    sfnMock.on(GetExecutionHistoryCommand, { executionArn: `${EXECUTION_ARN}-deploys`, reverseOrder: true }).resolves({
      events: [
        { id: 45, timestamp: at(70), type: 'TaskStateEntered', stateEnteredEventDetails: { name: 'Deploy' } },
        { id: 44, timestamp: at(70), type: 'TaskStateExited', stateExitedEventDetails: { name: 'AwaitApproval' } },
      ],
    });
    const io = capture();
    const json = capture();

    await cli('executions', io);
    await cli('executions --json', json);

    expect(io.stdout()).toMatch(new RegExp(`${EXECUTION}-waits\\s+waiting for approval\\s+production`));
    expect(io.stdout()).toMatch(new RegExp(`${EXECUTION}-deploys\\s+RUNNING\\s+production`));
    const listed = JSON.parse(json.stdout()) as Array<{ name: string; status: string; waitingForApproval?: boolean }>;
    expect(listed.map((e) => [e.name.slice(EXECUTION.length + 1), e.status, e.waitingForApproval])).toEqual([
      ['waits', 'RUNNING', true],
      ['deploys', 'RUNNING', undefined],
      ['done', 'SUCCEEDED', undefined],
    ]);
    const reverse = sfnMock
      .commandCalls(GetExecutionHistoryCommand)
      .filter((c) => c.args[0].input.reverseOrder === true)
      .map((c) => c.args[0].input);
    // Two listings, two RUNNING executions each: a finished one never costs this call.
    expect(reverse).toHaveLength(4);
    expect(reverse[0]).toMatchObject({ maxResults: 10, includeExecutionData: false });
  });

  it('--status waiting lists only the RUNNING executions waiting at AwaitApproval, --limit counting those', async () => {
    const row = (name: string) => ({
      executionArn: `${EXECUTION_ARN}-${name}`,
      stateMachineArn: MACHINE,
      name: `${EXECUTION}-${name}`,
      status: 'RUNNING' as const,
      startDate: at(0),
    });
    sfnMock.on(ListExecutionsCommand).resolves({ executions: [row('deploys'), row('waits'), row('waits-too')] });
    sfnMock.on(DescribeExecutionCommand).resolves({ input: '{"environment":"production"}' });
    sfnMock.on(GetExecutionHistoryCommand).resolves({ events: [] });
    for (const name of ['waits', 'waits-too'])
      sfnMock
        .on(GetExecutionHistoryCommand, { executionArn: `${EXECUTION_ARN}-${name}`, reverseOrder: true })
        .resolves({
          events: [
            { id: 38, timestamp: at(60), type: 'TaskScheduled' },
            {
              id: 37,
              timestamp: at(60),
              type: 'TaskStateEntered',
              stateEnteredEventDetails: { name: 'AwaitApproval' },
            },
          ],
        });
    sfnMock.on(GetExecutionHistoryCommand, { executionArn: `${EXECUTION_ARN}-deploys`, reverseOrder: true }).resolves({
      events: [{ id: 45, timestamp: at(70), type: 'TaskStateEntered', stateEnteredEventDetails: { name: 'Deploy' } }],
    });
    const json = capture();
    const table = capture();

    expect(await cli('executions --status waiting --limit 1 --json', json)).toBe(ExitCode.Ok);
    await cli('executions --status WAITING', table);

    expect(sfnMock).toHaveReceivedCommandWith(ListExecutionsCommand, {
      stateMachineArn: MACHINE,
      statusFilter: 'RUNNING',
    });
    expect(JSON.parse(json.stdout())).toEqual([
      expect.objectContaining({ name: `${EXECUTION}-waits`, status: 'RUNNING', waitingForApproval: true }),
    ]);
    expect(table.stdout()).toMatch(new RegExp(`${EXECUTION}-waits\\s+waiting for approval\\s+production`));
    expect(table.stdout()).toMatch(new RegExp(`${EXECUTION}-waits-too\\s+waiting for approval`));
    expect(table.stdout()).not.toContain('deploys');
  });

  it('--status waiting says so when none waits', async () => {
    sfnMock.on(ListExecutionsCommand).resolves({ executions: [] });
    const io = capture();

    await cli('executions --env production --status waiting', io);

    expect(io.stdout()).toBe('no executions for production waiting for approval\n');
  });

  it('skips an execution it cannot describe, with a warning, and lists the others', async () => {
    sfnMock.on(ListExecutionsCommand).resolves({
      executions: [
        {
          executionArn: `${EXECUTION_ARN}-gone`,
          stateMachineArn: MACHINE,
          name: `${EXECUTION}-gone`,
          status: 'SUCCEEDED',
          startDate: at(0),
        },
        {
          executionArn: EXECUTION_ARN,
          stateMachineArn: MACHINE,
          name: EXECUTION,
          status: 'SUCCEEDED',
          startDate: at(0),
        },
      ],
    });
    sfnMock
      .on(DescribeExecutionCommand, { executionArn: `${EXECUTION_ARN}-gone` })
      .rejects(
        new ExecutionDoesNotExist({ message: `Execution Does Not Exist: '${EXECUTION_ARN}-gone'`, $metadata: {} }),
      )
      .on(DescribeExecutionCommand, { executionArn: EXECUTION_ARN })
      .resolves({ input: '{"environment":"acceptance","branches":{"app":"develop"}}' });
    const io = capture();

    const code = await cli('executions --json', io);

    expect(code).toBe(ExitCode.Ok);
    expect(JSON.parse(io.stdout()).map((e: { name: string }) => e.name)).toEqual([EXECUTION]);
    expect(io.stderr()).toBe(
      `stepdeploy: warning: skipped execution ${EXECUTION}-gone: Execution Does Not Exist: '${EXECUTION_ARN}-gone'\n`,
    );
  });

  it('reads the next page of ListExecutions until --limit is reached, and no further', async () => {
    const item = (name: string) => ({
      executionArn: `${EXECUTION_ARN.slice(0, -EXECUTION.length)}${name}`,
      stateMachineArn: MACHINE,
      name,
      status: 'SUCCEEDED' as const,
      startDate: at(0),
    });
    sfnMock
      .on(ListExecutionsCommand)
      .resolves({ executions: [item('first')], nextToken: 'page-2' })
      .on(ListExecutionsCommand, { nextToken: 'page-2' })
      .resolves({ executions: [item('second')], nextToken: 'page-3' })
      .on(ListExecutionsCommand, { nextToken: 'page-3' })
      .resolves({ executions: [item('third')] });
    sfnMock.on(DescribeExecutionCommand).resolves({ input: '{"environment":"acceptance"}' });
    const io = capture();

    expect(await cli('executions --limit 2 --json', io)).toBe(ExitCode.Ok);

    expect(JSON.parse(io.stdout()).map((e: { name: string }) => e.name)).toEqual(['first', 'second']);
    expect(sfnMock).toHaveReceivedCommandTimes(ListExecutionsCommand, 2);
  });

  it('fails on an unknown --status with the allowed ones', async () => {
    const io = capture();

    expect(await cli('executions --status broken', io)).toBe(ExitCode.Usage);
    expect(io.stderr()).toBe(
      "stepdeploy: option '--status <status>' argument 'broken' is invalid. Allowed choices are RUNNING, SUCCEEDED, FAILED, TIMED_OUT, ABORTED, PENDING_REDRIVE, WAITING. (see --help)\n",
    );
    expect(sfnMock).not.toHaveReceivedCommand(ListExecutionsCommand);
  });
});

describe('redrive and stop', () => {
  it('redrives a bare name resolved against the state machine', async () => {
    sfnMock.on(RedriveExecutionCommand).resolves({ redriveDate: at(60) });
    sfnMock.on(DescribeExecutionCommand).resolves({ status: 'RUNNING', redriveCount: 1 });
    const io = capture();

    const code = await cli(`redrive ${EXECUTION}`, io);

    expect(code).toBe(ExitCode.Ok);
    expect(sfnMock).toHaveReceivedCommandWith(RedriveExecutionCommand, { executionArn: EXECUTION_ARN });
    expect(io.stdout()).toContain(`redriven ${EXECUTION} (redrive 1)`);
  });

  it('turns ExecutionNotRedrivable into one line with the rule', async () => {
    sfnMock.on(RedriveExecutionCommand).rejects(
      new SFNServiceException({
        name: 'ExecutionNotRedrivable',
        $fault: 'client',
        $metadata: {},
        message: 'Execution is SUCCEEDED',
      }),
    );
    const io = capture();

    expect(await cli(`redrive ${EXECUTION}`, io)).toBe(ExitCode.ServiceError);
    expect(io.stderr()).toContain('only a FAILED, TIMED_OUT or ABORTED execution can be redriven');
  });

  it('stops a running execution', async () => {
    sfnMock.on(StopExecutionCommand).resolves({ stopDate: at(10) });
    const io = capture();

    expect(await cli(`stop ${EXECUTION} --cause "wrong branch"`, io)).toBe(ExitCode.Ok);
    expect(sfnMock).toHaveReceivedCommandWith(StopExecutionCommand, {
      executionArn: EXECUTION_ARN,
      cause: 'wrong branch',
    });
  });
});

describe('history and logs', () => {
  it('prints one line per event with the state and the error', async () => {
    sfnMock.on(GetExecutionHistoryCommand).resolves({ events: FAILED_EVENTS });
    const io = capture();

    await cli(`history ${EXECUTION}`, io);

    const lines = io.stdout().trim().split('\n');
    expect(lines).toHaveLength(FAILED_EVENTS.length);
    expect(lines[8]).toMatch(/^\s+9\s+\+1\.0s\s+TaskStateEntered\s+FetchSource$/);
    expect(lines[14]).toMatch(/ExecutionFailed\s+States\.TaskFailed: build FAILED in DOWNLOAD_SOURCE/);
  });

  it('reads every page of the history', async () => {
    sfnMock
      .on(GetExecutionHistoryCommand)
      .resolves({ events: FAILED_EVENTS.slice(0, 5), nextToken: 'page-2' })
      .on(GetExecutionHistoryCommand, { nextToken: 'page-2' })
      .resolves({ events: FAILED_EVENTS.slice(5) });
    const io = capture();

    expect(await cli(`history ${EXECUTION} --json`, io)).toBe(ExitCode.Ok);

    expect(JSON.parse(io.stdout())).toHaveLength(FAILED_EVENTS.length);
    expect(sfnMock).toHaveReceivedCommandTimes(GetExecutionHistoryCommand, 2);
  });

  it('reads each build log from CloudWatch Logs with GetLogEvents, page by page from the head', async () => {
    sfnMock.on(GetExecutionHistoryCommand).resolves({ events: FAILED_EVENTS });
    codebuildMock.on(BatchGetBuildsCommand).resolves({
      builds: [
        {
          id: FETCH_BUILD,
          buildStatus: 'FAILED',
          buildComplete: true,
          logs: { groupName: '/aws/codebuild/shop-fetch', streamName: '0b5c7f1e' },
        },
      ],
    });
    logsMock
      .on(GetLogEventsCommand, { nextToken: undefined })
      .resolves({ events: [{ timestamp: 1, message: 'cloning app' }], nextForwardToken: 'f/1' })
      .on(GetLogEventsCommand, { nextToken: 'f/1' })
      // AWS may answer an empty page before the end: only a repeated token ends the read.
      .resolves({ events: [], nextForwardToken: 'f/2' })
      .on(GetLogEventsCommand, { nextToken: 'f/2' })
      .resolves({ events: [{ timestamp: 2, message: 'fatal: <img src=x>' }], nextForwardToken: 'f/3' })
      .on(GetLogEventsCommand, { nextToken: 'f/3' })
      .resolves({ events: [], nextForwardToken: 'f/3' });
    const io = capture();

    const code = await cli(`logs ${EXECUTION} --state FetchSource`, io);

    expect(code).toBe(ExitCode.Ok);
    expect(io.stdout()).toBe(
      `== FetchSources (app @ develop): build ${FETCH_BUILD} FAILED ==\ncloning app\nfatal: <img src=x>\n`,
    );
    expect(logsMock).toHaveReceivedCommandWith(GetLogEventsCommand, {
      logGroupName: '/aws/codebuild/shop-fetch',
      logStreamName: '0b5c7f1e',
      startFromHead: true,
    });
    expect(logsMock).toHaveReceivedCommandTimes(GetLogEventsCommand, 4);
  });

  it('says a build has no log yet when its stream does not exist', async () => {
    sfnMock.on(GetExecutionHistoryCommand).resolves({ events: FAILED_EVENTS });
    codebuildMock.on(BatchGetBuildsCommand).resolves({
      builds: [
        {
          id: FETCH_BUILD,
          buildStatus: 'IN_PROGRESS',
          logs: { groupName: '/aws/codebuild/shop-fetch', streamName: 's' },
        },
      ],
    });
    logsMock
      .on(GetLogEventsCommand)
      .rejects(new ResourceNotFoundException({ message: 'The specified log stream does not exist.', $metadata: {} }));
    const io = capture();

    await cli(`logs ${EXECUTION} --json`, io);

    expect(JSON.parse(io.stdout())).toEqual([
      expect.objectContaining({ buildId: FETCH_BUILD, logStream: 's', log: '' }),
    ]);
  });

  it('fails on a --state that runs no build, listing those that do', async () => {
    sfnMock.on(GetExecutionHistoryCommand).resolves({ events: FAILED_EVENTS });
    const io = capture();

    expect(await cli(`logs ${EXECUTION} --state ValidateInput`, io)).toBe(ExitCode.Usage);
    expect(io.stderr()).toMatch(
      /--state "ValidateInput" is not a state that runs a CodeBuild build; one of: FetchSources, BuildTemplates/,
    );
  });
});

describe('help', () => {
  it('shows examples and the exit codes on every command', async () => {
    for (const command of ['start', 'watch', 'logs', 'redrive', 'stop', 'executions', 'history', 'status']) {
      let out = '';
      const program = makeProgram({
        io: { out: (t) => (out += t), err: (t) => (out += t), isTTY: false },
        exitCode: ExitCode.Ok,
      });
      program.exitOverride().configureOutput({ writeOut: (t) => (out += t) });

      await expect(program.parseAsync(['node', 'stepdeploy', command, '--help'])).rejects.toMatchObject({
        exitCode: 0,
      });

      expect(out).toContain('Examples:');
      expect(out).toContain(`$ stepdeploy ${command}`);
      expect(out).toContain('Exit codes:');
      expect(out).toContain('--local');
    }
  });
});
