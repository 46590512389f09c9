import type { Server } from 'node:http';
import {
  CloudWatchLogsClient,
  GetLogEventsCommand,
  InvalidParameterException,
  paginateGetLogEvents,
  ResourceNotFoundException,
  ServiceUnavailableException,
} from '@aws-sdk/client-cloudwatch-logs';
import { createApiHandler } from '../../local/api';
import type { LogEvent } from '../../local/codebuild/log-events';
import { cloudWatchLogsOperations } from '../../local/logs';
import { closeServer, listenLocal } from '../../local/s3';

const GROUP = '/aws/codebuild/shop-build';
const STREAM = '0b6f3c1e-5f0a-4c1b-9d8e-2f4a6b8c0d1e';
let events: LogEvent[];
let unavailable = false;
let server: Server;
let logs: CloudWatchLogsClient;

beforeAll(async () => {
  const operations = cloudWatchLogsOperations(
    {
      hasGroup: (group) => group === GROUP,
      events: (group, stream) => (group === GROUP && stream === STREAM ? events : undefined),
    },
    () => unavailable,
  );
  const notS3 = (): void => {
    throw new Error('no S3 request expected');
  };
  let endpoint: string;
  ({ server, endpoint } = await listenLocal(
    createApiHandler({ stepFunctions: {}, codeBuild: {}, logs: operations }, notS3),
  ));
  logs = new CloudWatchLogsClient({
    endpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    maxAttempts: 1,
  });
});

beforeEach(() => {
  events = Array.from({ length: 25 }, (_, i) => ({ timestamp: 1_000 + i * 10, message: `line ${i}` }));
  unavailable = false;
});

afterAll(async () => {
  logs.destroy();
  await closeServer(server);
});

const messages = (out: { events?: Array<{ message?: string }> }): string[] =>
  (out.events ?? []).map((e) => e.message ?? '');

describe('local CloudWatch Logs: GetLogEvents on build logs', () => {
  test('reads from the head with startFromHead, with timestamps, ingestion times and tokens both ways', async () => {
    const out = await logs.send(
      new GetLogEventsCommand({ logGroupName: GROUP, logStreamName: STREAM, startFromHead: true, limit: 2 }),
    );

    expect(out.events).toEqual([
      { timestamp: 1000, message: 'line 0', ingestionTime: 1000 },
      { timestamp: 1010, message: 'line 1', ingestionTime: 1010 },
    ]);
    const next = await logs.send(
      new GetLogEventsCommand({
        logGroupName: GROUP,
        logStreamName: STREAM,
        nextToken: out.nextForwardToken,
        limit: 3,
      }),
    );
    expect(messages(next)).toEqual(['line 2', 'line 3', 'line 4']);
    const back = await logs.send(
      new GetLogEventsCommand({ logGroupName: GROUP, logStreamName: STREAM, nextToken: next.nextBackwardToken }),
    );
    expect(messages(back)).toEqual(['line 0', 'line 1']);
  });

  test('without a token nor startFromHead answers the newest events, oldest first', async () => {
    const out = await logs.send(new GetLogEventsCommand({ logGroupName: GROUP, logStreamName: STREAM, limit: 3 }));

    expect(messages(out)).toEqual(['line 22', 'line 23', 'line 24']);
  });

  test('a forward token at the end comes back unchanged, and reads the lines written after it', async () => {
    const first = await logs.send(
      new GetLogEventsCommand({ logGroupName: GROUP, logStreamName: STREAM, startFromHead: true }),
    );
    const idle = await logs.send(
      new GetLogEventsCommand({ logGroupName: GROUP, logStreamName: STREAM, nextToken: first.nextForwardToken }),
    );
    events.push({ timestamp: 9_000, message: 'written later' });
    const later = await logs.send(
      new GetLogEventsCommand({ logGroupName: GROUP, logStreamName: STREAM, nextToken: idle.nextForwardToken }),
    );

    expect(messages(first)).toHaveLength(25);
    expect(idle.events).toEqual([]);
    expect(idle.nextForwardToken).toBe(first.nextForwardToken);
    expect(messages(later)).toEqual(['written later']);
  });

  test("the SDK's paginator (stopOnSameToken) reads every page and stops when the token repeats", async () => {
    const pages: string[][] = [];
    for await (const page of paginateGetLogEvents(
      { client: logs, pageSize: 10, stopOnSameToken: true },
      { logGroupName: GROUP, logStreamName: STREAM, startFromHead: true },
    ))
      pages.push(messages(page));

    expect(pages.map((p) => p.length)).toEqual([10, 10, 5, 0]);
    expect(pages.flat()).toEqual(events.map((e) => e.message));
  });

  test('startTime is inclusive and endTime exclusive; a log group ARN names the group', async () => {
    const out = await logs.send(
      new GetLogEventsCommand({
        logGroupIdentifier: `arn:aws:logs:us-east-1:000000000000:log-group:${GROUP}`,
        logStreamName: STREAM,
        startTime: 1_020,
        endTime: 1_050,
        startFromHead: true,
      }),
    );

    expect(messages(out)).toEqual(['line 2', 'line 3', 'line 4']);
  });

  test('fails with ResourceNotFoundException for an unknown group or stream', async () => {
    await expect(
      logs.send(new GetLogEventsCommand({ logGroupName: '/aws/codebuild/other', logStreamName: STREAM })),
    ).rejects.toThrow(
      new ResourceNotFoundException({ message: 'The specified log group does not exist.', $metadata: {} }),
    );
    await expect(
      logs.send(new GetLogEventsCommand({ logGroupName: GROUP, logStreamName: 'not-started-yet' })),
    ).rejects.toBeInstanceOf(ResourceNotFoundException);
  });

  test.each([
    [{ logGroupName: GROUP, logGroupIdentifier: GROUP, logStreamName: STREAM }, /mutually exclusive/],
    [{ logStreamName: STREAM }, /logGroupName or logGroupIdentifier/],
    [{ logGroupName: GROUP, logStreamName: STREAM, limit: 10_001 }, /limit/],
    [{ logGroupName: GROUP, logStreamName: STREAM, limit: 0 }, /limit/],
    [{ logGroupName: GROUP, logStreamName: STREAM, nextToken: 'f/garbage' }, /nextToken is invalid/],
    [{ logGroupName: GROUP, logStreamName: 'a:b' }, /logStreamName/],
  ])('fails with InvalidParameterException on %j', async (input, message) => {
    const call = logs.send(new GetLogEventsCommand(input as never));

    await expect(call).rejects.toBeInstanceOf(InvalidParameterException);
    await expect(call).rejects.toThrow(message);
  });

  test('answers ServiceUnavailableException (HTTP 500) when the fault plan says so', async () => {
    unavailable = true;

    const call = logs.send(new GetLogEventsCommand({ logGroupName: GROUP, logStreamName: STREAM }));

    await expect(call).rejects.toBeInstanceOf(ServiceUnavailableException);
    await expect(call).rejects.toMatchObject({ $metadata: { httpStatusCode: 500 } });
  });
});
