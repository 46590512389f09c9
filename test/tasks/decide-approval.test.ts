import { GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import {
  InvalidToken,
  SendTaskFailureCommand,
  SendTaskSuccessCommand,
  SFNClient,
  TaskDoesNotExist,
  TaskTimedOut,
} from '@aws-sdk/client-sfn';
import { mockClient } from 'aws-sdk-client-mock';
import 'aws-sdk-client-mock-jest';
import type { ApprovalRecord } from '../../tasks/await-approval/approval-record';
import { decideApproval, type Decision } from '../../tasks/decide-approval/decide-approval';
import { DecisionRefusedError } from '../../tasks/decide-approval/errors';
import { createHandler } from '../../tasks/decide-approval/handler';
import { isRequester } from '../../tasks/decide-approval/identity';
import { serveJsonObjects } from '../helpers/s3-mock';

const s3Mock = mockClient(S3Client);
const sfnMock = mockClient(SFNClient);
const s3 = new S3Client({});
const sfn = new SFNClient({});
const BUCKET = 'shop-artifacts';
const NOW = new Date('2026-11-29T10:05:00.000Z');
const deps = { s3, sfn, bucket: BUCKET, now: () => NOW };
const EXECUTION = 'production-20261129T095000-aaaaaa';
const KEY = `approvals/production/${EXECUTION}.json`;
const BOB = 'arn:aws:sts::123456789012:assumed-role/Operators/bob@example.com';
const TOKEN = 'AQCEAAAAKgAAAA-the-task-token';

const waiting: ApprovalRecord = {
  environment: 'production',
  execution: EXECUTION,
  startedAt: '2026-11-29T09:50:00.000Z',
  redriveCount: 0,
  taskToken: TOKEN,
  requestedBy: 'alice@example.com',
  allowSelfApproval: false,
  requestedAt: '2026-11-29T10:00:00.000Z',
  expiresAt: '2026-11-29T14:00:00.000Z',
  sources: [{ name: 'app', branch: 'main', commit: 'a'.repeat(40) }],
  redeployOf: null,
  status: 'waiting',
};

const approve: Decision = { action: 'approve', environment: 'production', execution: EXECUTION, text: 'ok' };
const reject: Decision = { action: 'reject', environment: 'production', execution: EXECUTION, text: 'wrong branch' };

beforeEach(() => {
  s3Mock.reset();
  sfnMock.reset();
  s3Mock.on(PutObjectCommand).resolves({ ETag: '"e2"' });
  sfnMock.on(SendTaskSuccessCommand).resolves({});
  sfnMock.on(SendTaskFailureCommand).resolves({});
});

test('approve: SendTaskSuccess with the caller as approver, then the record says who', async () => {
  serveJsonObjects(s3Mock, { [KEY]: waiting });

  const result = await decideApproval(approve, BOB, deps);

  expect(result).toMatchObject({ action: 'approved', decidedBy: BOB });
  expect(sfnMock).toHaveReceivedCommandWith(SendTaskSuccessCommand, {
    taskToken: TOKEN,
    output: JSON.stringify({ approvedBy: BOB, comment: 'ok', approvedAt: NOW.toISOString() }),
  });
  expect(s3Mock).toHaveReceivedCommandWith(PutObjectCommand, { Key: KEY, IfMatch: '"e1"' });
  const written = JSON.parse(s3Mock.commandCalls(PutObjectCommand)[0]!.args[0].input.Body as string);
  expect(written).toMatchObject({ status: 'approved', decidedBy: BOB, comment: 'ok' });
});

test('reject: SendTaskFailure ApprovalRejectedError with who and why; the requester may reject', async () => {
  serveJsonObjects(s3Mock, { [KEY]: waiting });

  await decideApproval(reject, 'arn:aws:iam::123456789012:user/alice@example.com', deps);

  expect(sfnMock).toHaveReceivedCommandWith(SendTaskFailureCommand, {
    taskToken: TOKEN,
    error: 'ApprovalRejectedError',
    cause: `rejected by arn:aws:iam::123456789012:user/alice@example.com at ${NOW.toISOString()}: wrong branch`,
  });
});

test('fails: the requester cannot approve where allowSelfApproval is false (user name or role session)', async () => {
  serveJsonObjects(s3Mock, { [KEY]: waiting });
  for (const caller of [
    'arn:aws:iam::123456789012:user/alice@example.com',
    'arn:aws:sts::123456789012:assumed-role/Operators/Alice@example.com',
  ]) {
    await expect(decideApproval(approve, caller, deps)).rejects.toMatchObject({
      statusCode: 403,
      message: expect.stringContaining('allowSelfApproval: false'),
    });
  }
  expect(sfnMock).not.toHaveReceivedCommand(SendTaskSuccessCommand);
  expect(isRequester('alice', 'arn:aws:sts::123456789012:assumed-role/alice/bob')).toBe(false);
});

test('fails: superseded by a newer deployed execution or lease holder, naming it', async () => {
  const newer = { execution: 'production-newer', startedAt: '2026-11-29T09:55:00.000Z' };
  for (const key of ['deployments/production/current.json', 'deployments/production/lease.json']) {
    serveJsonObjects(s3Mock, { [KEY]: waiting, [key]: newer });
    await expect(decideApproval(approve, BOB, deps)).rejects.toMatchObject({
      statusCode: 409,
      message: expect.stringContaining(`${EXECUTION} is superseded: the newer execution production-newer`),
    });
  }
  expect(sfnMock).not.toHaveReceivedCommand(SendTaskSuccessCommand);
});

test('fails: no longer waiting — decided, timed out (TaskTimedOut), ended (TaskDoesNotExist)', async () => {
  serveJsonObjects(s3Mock, { [KEY]: { ...waiting, status: 'approved', decidedBy: BOB } });
  await expect(decideApproval(approve, BOB, deps)).rejects.toThrow(`it was approved by ${BOB}`);

  serveJsonObjects(s3Mock, { [KEY]: waiting });
  sfnMock.on(SendTaskSuccessCommand).rejects(new TaskTimedOut({ message: 'Task Timed Out', $metadata: {} }));
  await expect(decideApproval(approve, BOB, deps)).rejects.toMatchObject({
    statusCode: 409,
    message: expect.stringContaining('(TaskTimedOut)'),
  });
  sfnMock.on(SendTaskFailureCommand).rejects(new TaskDoesNotExist({ message: 'Task Does Not Exist', $metadata: {} }));
  await expect(decideApproval(reject, BOB, deps)).rejects.toMatchObject({
    statusCode: 409,
    message: expect.stringContaining('(TaskDoesNotExist)'),
  });
  expect(s3Mock).not.toHaveReceivedCommand(PutObjectCommand);
});

test('an InvalidToken is an error of the stored record, reported without the token', async () => {
  serveJsonObjects(s3Mock, { [KEY]: waiting });
  sfnMock.on(SendTaskSuccessCommand).rejects(new InvalidToken({ message: `Invalid Token: ${TOKEN}`, $metadata: {} }));

  const error = await decideApproval(approve, BOB, deps).catch((e: Error) => e);

  expect(error).not.toBeInstanceOf(DecisionRefusedError);
  expect((error as Error).message).toContain('(InvalidToken): redrive the execution to ask again');
  expect((error as Error).message).not.toContain(TOKEN);
});

test('fails: no request recorded is a 404 naming what to check', async () => {
  serveJsonObjects(s3Mock, {});
  await expect(decideApproval(approve, BOB, deps)).rejects.toMatchObject({ statusCode: 404 });
});

describe('handler (function URL, payload format 2.0)', () => {
  const request = (body: unknown, iam?: object) => ({
    version: '2.0',
    requestContext: { http: { method: 'POST' }, ...(iam ? { authorizer: { iam } } : {}) },
    body: JSON.stringify(body),
    isBase64Encoded: false,
  });
  const body = { action: 'approve', environment: 'production', execution: EXECUTION };

  const handler = createHandler({ ARTIFACT_BUCKET: BUCKET });

  test('the caller is the IAM identity Lambda put in requestContext, not anything in the body', async () => {
    serveJsonObjects(s3Mock, { [KEY]: waiting });
    const response = await handler(request({ ...body }, { userArn: BOB, accountId: '123456789012' }));
    expect(response.statusCode).toBe(200);
    expect(JSON.parse(response.body)).toMatchObject({ decidedBy: BOB });
  });

  test('fails: a request without requestContext.authorizer.iam (a direct invoke) is refused, nothing read', async () => {
    const response = await handler(request(body));
    expect(response.statusCode).toBe(403);
    expect(s3Mock).not.toHaveReceivedCommand(GetObjectCommand);
  });

  test('fails: an unknown field, a missing reason, or unprintable text is a 400 naming it', async () => {
    const iam = { userArn: BOB };
    const cases: Array<[unknown, string]> = [
      [{ ...body, approvedBy: 'someone-else' }, 'approvedBy'],
      [{ action: 'reject', environment: 'production', execution: EXECUTION }, 'reason'],
      [{ ...body, comment: 'ok\u202e' }, 'printable'],
    ];
    for (const [b, named] of cases) {
      const response = await handler(request(b, iam));
      expect(response.statusCode).toBe(400);
      expect(JSON.parse(response.body).message).toMatch(
        named === 'approvedBy' ? /Unrecognized key|approvedBy/ : new RegExp(named),
      );
    }
  });
});
