import type { IncomingMessage, ServerResponse } from 'node:http';
import { randomUUID } from 'node:crypto';
import type { LocalStateMachine } from './engine';
import type { ExecutionRecord, ExecutionStatus } from './executions';
import { LocalApiError } from './errors';
import type { RequestHandler } from './s3';

/**
 * The AWS APIs the CLI and any AWS client need, answered locally on one endpoint:
 * Step Functions (JSON 1.0, `X-Amz-Target: AWSStepFunctions.<Operation>`), CodeBuild's
 * BatchGetBuilds, StartBuild, StopBuild and ListBuildsForProject (JSON 1.1, `CodeBuild_20161006.<Operation>`), CloudWatch
 * Logs' GetLogEvents for the build logs (JSON 1.1, `Logs_20140328.<Operation>`, local/logs.ts), and S3 (REST) for everything
 * without a target header. Errors carry AWS's codes as `__type`, so SDK clients raise the same
 * exception classes (ExecutionDoesNotExist, ExecutionNotRedrivable, InvalidExecutionInput, …).
 */

/** The CodeBuild calls the local runner answers, builds in CodeBuild's wire shape (camelCase). */
export interface LocalCodeBuildApi {
  batchGetBuilds(ids: ReadonlyArray<string>): {
    builds: ReadonlyArray<Record<string, unknown>>;
    buildsNotFound: ReadonlyArray<string>;
  };
  /** StartBuild with its wire (camelCase) request: answers the build as started. */
  startBuild(request: Record<string, unknown>): Record<string, unknown>;
  stopBuild(id: string): Record<string, unknown>;
  /** ListBuildsForProject: build ids, newest first unless sortOrder says otherwise, 100 a page. */
  listBuildsForProject(request: { projectName: string; sortOrder?: string; nextToken?: string }): {
    ids: ReadonlyArray<string>;
    nextToken?: string;
  };
}

type Body = Record<string, unknown>;
type Operation = (body: Body) => Body | Promise<Body>;

const MAX_INPUT_BYTES = 256 * 1024;
const EXECUTION_NAME = /^[^\s<>{}[\]?*"#%\\^|~`$&,;:/\x00-\x1f\x7f-\x9f]{1,80}$/;

function seconds(ms: number | undefined): number | undefined {
  return ms === undefined ? undefined : ms / 1000;
}

function stringField(body: Body, field: string, required = true): string | undefined {
  const value = body[field];
  if (value === undefined && !required) return undefined;
  if (typeof value !== 'string' || value === '') {
    throw new LocalApiError(
      'ValidationException',
      `1 validation error detected: Value at '${field}' failed to satisfy constraint: Member must not be null`,
    );
  }
  return value;
}

const STATES_ARN = /^arn:[a-z-]+:states:[a-z0-9-]+:\d{12}:([A-Za-z]+):[^:]+(:[^:]+)?$/;

/** Step Functions answers InvalidArn, not "does not exist", for an ARN that is no ARN of the kind the call takes. */
function arnField(body: Body, field: string, kind: 'stateMachine' | 'execution'): string {
  const arn = stringField(body, field)!;
  const type = STATES_ARN.exec(arn)?.[1];
  if (type === undefined) throw new LocalApiError('InvalidArn', `Invalid Arn: 'Invalid ARN prefix: ${arn}'`);
  if (type !== kind)
    throw new LocalApiError('InvalidArn', `Invalid Arn: 'Resource type not valid in this context: ${type}'`);
  return arn;
}

function page<T>(items: ReadonlyArray<T>, body: Body): { items: T[]; nextToken?: string } {
  const max = typeof body.maxResults === 'number' && body.maxResults > 0 ? Math.min(body.maxResults, 1000) : 100;
  const start = typeof body.nextToken === 'string' ? Number(Buffer.from(body.nextToken, 'base64').toString('utf8')) : 0;
  if (!Number.isInteger(start) || start < 0)
    throw new LocalApiError('InvalidToken', `Invalid token: ${String(body.nextToken)}`);
  const slice = items.slice(start, start + max);
  const next = start + max < items.length ? Buffer.from(String(start + max)).toString('base64') : undefined;
  return { items: slice, ...(next ? { nextToken: next } : {}) };
}

function redriveStatus(record: ExecutionRecord): { redriveStatus: string; redriveStatusReason?: string } {
  if (['FAILED', 'TIMED_OUT', 'ABORTED'].includes(record.status)) return { redriveStatus: 'REDRIVABLE' };
  return { redriveStatus: 'NOT_REDRIVABLE', redriveStatusReason: `Execution is ${record.status}` };
}

function describeExecution(record: ExecutionRecord): Body {
  return {
    executionArn: record.executionArn,
    stateMachineArn: record.stateMachineArn,
    name: record.name,
    status: record.status,
    startDate: seconds(record.startDate),
    stopDate: seconds(record.stopDate),
    input: record.input,
    inputDetails: { included: true },
    ...(record.output !== undefined ? { output: record.output, outputDetails: { included: true } } : {}),
    error: record.error,
    cause: record.cause,
    redriveCount: record.redriveCount,
    redriveDate: seconds(record.redriveDate),
    ...redriveStatus(record),
  };
}

export function stepFunctionsOperations(machine: LocalStateMachine): Record<string, Operation> {
  const requireMachine = (body: Body): void => {
    const arn = arnField(body, 'stateMachineArn', 'stateMachine');
    if (arn !== machine.stateMachineArn) {
      throw new LocalApiError('StateMachineDoesNotExist', `State Machine Does Not Exist: '${String(arn)}'`);
    }
  };
  // The local machine has one definition: every execution runs the one it describes.
  const description = (): Body => ({
    stateMachineArn: machine.stateMachineArn,
    name: machine.name,
    definition: JSON.stringify(machine.definition, null, 2),
    roleArn: `arn:aws:iam::${machine.stateMachineArn.split(':')[4]}:role/${machine.name}-local`,
    loggingConfiguration: { level: 'ALL', includeExecutionData: true },
    tracingConfiguration: { enabled: false },
  });
  return {
    ListStateMachines: () => ({
      stateMachines: [
        {
          stateMachineArn: machine.stateMachineArn,
          name: machine.name,
          type: 'STANDARD',
          creationDate: seconds(machine.createdAt),
        },
      ],
    }),
    DescribeStateMachine: (body) => {
      requireMachine(body);
      return { ...description(), status: 'ACTIVE', type: 'STANDARD', creationDate: seconds(machine.createdAt) };
    },
    DescribeStateMachineForExecution: (body) => {
      machine.describe(arnField(body, 'executionArn', 'execution'));
      return { ...description(), updateDate: seconds(machine.createdAt) };
    },
    StartExecution: (body) => {
      requireMachine(body);
      const name = stringField(body, 'name', false) ?? randomUUID();
      if (!EXECUTION_NAME.test(name)) {
        throw new LocalApiError(
          'InvalidName',
          `Invalid Name: '${name}' (1-80 characters, no whitespace, brackets, wildcards, "/" or other special characters)`,
        );
      }
      const inputText = body.input === undefined ? '{}' : String(body.input);
      if (Buffer.byteLength(inputText) > MAX_INPUT_BYTES) {
        throw new LocalApiError(
          'InvalidExecutionInput',
          `Invalid Execution Input: the input is ${Buffer.byteLength(inputText)} bytes; the limit is ${MAX_INPUT_BYTES}`,
        );
      }
      let input: unknown;
      try {
        input = JSON.parse(inputText);
      } catch (err) {
        throw new LocalApiError('InvalidExecutionInput', `Invalid Execution Input: ${(err as Error).message}`);
      }
      const record = machine.start(name, input);
      return { executionArn: record.executionArn, startDate: seconds(record.startDate) };
    },
    DescribeExecution: (body) => describeExecution(machine.describe(arnField(body, 'executionArn', 'execution'))),
    ListExecutions: (body) => {
      requireMachine(body);
      let records = machine.list(body.statusFilter as ExecutionStatus | undefined);
      if (body.redriveFilter === 'REDRIVEN') records = records.filter((r) => r.redriveCount > 0);
      if (body.redriveFilter === 'NOT_REDRIVEN') records = records.filter((r) => r.redriveCount === 0);
      const { items, nextToken } = page(records, body);
      return {
        executions: items.map((r) => ({
          executionArn: r.executionArn,
          stateMachineArn: r.stateMachineArn,
          name: r.name,
          status: r.status,
          startDate: seconds(r.startDate),
          stopDate: seconds(r.stopDate),
          redriveCount: r.redriveCount,
          redriveDate: seconds(r.redriveDate),
        })),
        ...(nextToken ? { nextToken } : {}),
      };
    },
    GetExecutionHistory: (body) => {
      const events = machine.history(arnField(body, 'executionArn', 'execution'));
      const ordered = body.reverseOrder === true ? [...events].reverse() : events;
      const withoutData = body.includeExecutionData === false;
      const { items, nextToken } = page(ordered, body);
      return {
        events: items.map((e) => ({ ...(withoutData ? stripData(e) : e), timestamp: seconds(e.timestamp) })),
        ...(nextToken ? { nextToken } : {}),
      };
    },
    StopExecution: (body) => {
      const record = machine.stop(
        arnField(body, 'executionArn', 'execution'),
        body.error as string | undefined,
        body.cause as string | undefined,
      );
      return { stopDate: seconds(record.stopDate ?? Date.now()) };
    },
    RedriveExecution: (body) => {
      const record = machine.redrive(arnField(body, 'executionArn', 'execution'));
      return { redriveDate: seconds(record.redriveDate) };
    },
    SendTaskSuccess: (body) => {
      machine.sendTaskSuccess(stringField(body, 'taskToken')!, stringField(body, 'output')!);
      return {};
    },
    SendTaskFailure: (body) => {
      machine.sendTaskFailure(
        stringField(body, 'taskToken')!,
        body.error as string | undefined,
        body.cause as string | undefined,
      );
      return {};
    },
    SendTaskHeartbeat: (body) => {
      machine.sendTaskHeartbeat(stringField(body, 'taskToken')!);
      return {};
    },
  };
}

function stripData(event: Body): Body {
  return Object.fromEntries(
    Object.entries(event).map(([k, v]) => {
      if (!k.endsWith('EventDetails') || v === null || typeof v !== 'object') return [k, v];
      const { input: _i, output: _o, ...rest } = v as Body;
      return [k, rest];
    }),
  );
}

export function codeBuildOperations(builds: LocalCodeBuildApi): Record<string, Operation> {
  return {
    BatchGetBuilds: (body) => {
      const ids = Array.isArray(body.ids) ? (body.ids as unknown[]).map(String) : [];
      if (ids.length === 0 || ids.length > 100) {
        throw new LocalApiError('InvalidInputException', `ids must list 1 to 100 build ids (got ${ids.length})`);
      }
      return { ...builds.batchGetBuilds(ids) };
    },
    StartBuild: (body) => {
      if (typeof body.projectName !== 'string' || body.projectName === '') {
        throw new LocalApiError('InvalidInputException', 'projectName is required');
      }
      return { build: builds.startBuild(body) };
    },
    StopBuild: (body) => ({ build: builds.stopBuild(stringField(body, 'id')!) }),
    ListBuildsForProject: (body) => {
      if (typeof body.projectName !== 'string' || body.projectName === '') {
        throw new LocalApiError('InvalidInputException', 'projectName is required');
      }
      const sortOrder = stringField(body, 'sortOrder', false);
      if (sortOrder !== undefined && sortOrder !== 'ASCENDING' && sortOrder !== 'DESCENDING') {
        throw new LocalApiError(
          'InvalidInputException',
          `sortOrder must be ASCENDING or DESCENDING, got ${JSON.stringify(sortOrder)}`,
        );
      }
      const nextToken = stringField(body, 'nextToken', false);
      return {
        ...builds.listBuildsForProject({
          projectName: body.projectName,
          ...(sortOrder ? { sortOrder } : {}),
          ...(nextToken ? { nextToken } : {}),
        }),
      };
    },
  };
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function send(res: ServerResponse, status: number, contentType: string, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'Content-Type': contentType,
    'Content-Length': Buffer.byteLength(text),
    'x-amzn-RequestId': randomUUID(),
  });
  res.end(text);
}

const SERVICES: ReadonlyArray<{ prefix: string; contentType: string; key: 'stepFunctions' | 'codeBuild' | 'logs' }> = [
  { prefix: 'AWSStepFunctions.', contentType: 'application/x-amz-json-1.0', key: 'stepFunctions' },
  { prefix: 'CodeBuild_20161006.', contentType: 'application/x-amz-json-1.1', key: 'codeBuild' },
  { prefix: 'Logs_20140328.', contentType: 'application/x-amz-json-1.1', key: 'logs' },
];

/** One handler for the whole local endpoint: JSON APIs by X-Amz-Target, S3 for the rest. */
export function createApiHandler(
  apis: {
    stepFunctions: Record<string, Operation>;
    codeBuild: Record<string, Operation>;
    logs?: Record<string, Operation>;
  },
  s3: RequestHandler,
): RequestHandler {
  return (req, res) => {
    const target = req.headers['x-amz-target'];
    if (typeof target !== 'string') return s3(req, res);
    const service = SERVICES.find((s) => target.startsWith(s.prefix));
    const operation = service ? apis[service.key]?.[target.slice(service.prefix.length)] : undefined;
    const contentType = service?.contentType ?? 'application/x-amz-json-1.0';
    if (!operation) {
      send(res, 400, contentType, {
        __type: 'UnknownOperationException',
        message: `the local runtime does not implement ${target}`,
      });
      return;
    }
    readBody(req)
      .then((text) => operation(text === '' ? {} : (JSON.parse(text) as Body)))
      .then((result) => send(res, 200, contentType, result))
      .catch((err: unknown) => {
        if (err instanceof LocalApiError)
          return send(res, err.statusCode, contentType, { __type: err.code, message: err.message });
        if (err instanceof SyntaxError)
          return send(res, 400, contentType, { __type: 'SerializationException', message: err.message });
        send(res, 500, contentType, { __type: 'InternalServerError', message: (err as Error).message });
      });
  };
}
