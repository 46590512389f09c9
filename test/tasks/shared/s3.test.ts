import { createReadStream, mkdtempSync, rmSync, writeFileSync, type ReadStream } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { text } from 'node:stream/consumers';
import { S3ServiceException } from '@aws-sdk/client-s3';
import { ConditionalWriteConflictError } from '../../../tasks/shared/errors';
import {
  CONFLICT_ATTEMPTS,
  conflictBackoffMs,
  isClientError,
  isConditionalRequestConflict,
  isPreconditionFailed,
  retryOnConditionalConflict,
  sendFileStream,
} from '../../../tasks/shared/s3';

describe('sendFileStream: a request whose body is a file stream, which the SDK cannot send again', () => {
  let dir: string;
  let file: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'stepdeploy-send-file-'));
    file = join(dir, 'part.bin');
    writeFileSync(file, 'the whole file\n');
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const serverError = Object.assign(new Error('We encountered an internal error'), {
    name: 'InternalError',
    $metadata: { httpStatusCode: 500 },
  });
  const denied = Object.assign(new Error('Access Denied'), {
    name: 'AccessDenied',
    $metadata: { httpStatusCode: 403 },
  });

  test('each attempt reads a stream of its own from the start, and every stream is destroyed', async () => {
    const opened: ReadStream[] = [];
    const bodies: string[] = [];
    let calls = 0;
    const result = await sendFileStream(
      () => {
        const stream = createReadStream(file);
        opened.push(stream);
        return stream;
      },
      async (body) => {
        bodies.push(await text(body));
        if (++calls < 3) throw serverError;
        return 'sent';
      },
      { attempts: 3 },
    );
    expect(result).toBe('sent');
    expect(bodies).toEqual(['the whole file\n', 'the whole file\n', 'the whole file\n']);
    expect(opened.map((s) => s.destroyed)).toEqual([true, true, true]);
  });

  /** Two attempts on `path` whose request fails before reading its body; the streams they opened. */
  const failingBeforeReading = (path: string): { opened: ReadStream[]; sending: Promise<unknown> } => {
    const opened: ReadStream[] = [];
    const open = (): ReadStream => {
      const stream = createReadStream(path);
      opened.push(stream);
      return stream;
    };
    return { opened, sending: sendFileStream(open, () => Promise.reject(serverError), { attempts: 2 }) };
  };

  test('destroys a stream the request failed before reading (it would leave the file open)', async () => {
    const { opened, sending } = failingBeforeReading(file);
    await expect(sending).rejects.toBe(serverError);
    expect(opened.map((s) => s.destroyed)).toEqual([true, true]);
  });

  test('an abandoned stream that then fails to open (its file gone) raises nothing', async () => {
    const { opened, sending } = failingBeforeReading(join(dir, 'removed-since.bin'));
    await expect(sending).rejects.toBe(serverError);
    // Each stream's open fails after its attempt ended: an 'error' no one listens to would be thrown.
    await Promise.all(
      opened.map((s) => new Promise<void>((resolve) => (s.closed ? resolve() : s.once('close', () => resolve())))),
    );
    expect(opened.map((s) => s.destroyed)).toEqual([true, true]);
  }, 5_000);

  test('gives up after the last attempt with its error', async () => {
    let calls = 0;
    const sending = sendFileStream(
      () => createReadStream(file),
      async () => {
        calls++;
        throw serverError;
      },
      { attempts: 3 },
    );
    await expect(sending).rejects.toBe(serverError);
    expect(calls).toBe(3);
  });

  test('throws at once an error that retry refuses (an S3 4xx)', async () => {
    let calls = 0;
    const sending = sendFileStream(
      () => createReadStream(file),
      async () => {
        calls++;
        throw denied;
      },
      { attempts: 3, retry: (error) => !isClientError(error) },
    );
    await expect(sending).rejects.toBe(denied);
    expect(calls).toBe(1);
    expect([isClientError(denied), isClientError(serverError), isClientError(new Error('socket hang up'))]).toEqual([
      true,
      false,
      false,
    ]);
  });
});

describe("isConditionalRequestConflict: S3's 409 to a conditional write that met a conflicting operation", () => {
  function s3Error(name: string, status: number): S3ServiceException {
    return new S3ServiceException({ name, $fault: 'client', $metadata: { httpStatusCode: status }, message: name });
  }

  test('is true for 409 ConditionalRequestConflict, and that error is no precondition failure', () => {
    const conflict = s3Error('ConditionalRequestConflict', 409);
    expect(isConditionalRequestConflict(conflict)).toBe(true);
    expect(isPreconditionFailed(conflict)).toBe(false);
  });

  test.each([
    ['412 PreconditionFailed (the condition answered: another writer won)', s3Error('PreconditionFailed', 412)],
    ['another 409 (BucketAlreadyOwnedByYou)', s3Error('BucketAlreadyOwnedByYou', 409)],
    ['another 409 (OperationAborted)', s3Error('OperationAborted', 409)],
    ['a 500', s3Error('InternalError', 500)],
    ['a plain Error', new Error('ConditionalRequestConflict')],
    ['undefined', undefined],
  ])('is false for %s', (_what, err) => {
    expect(isConditionalRequestConflict(err)).toBe(false);
  });
});

describe('retryOnConditionalConflict: sends a conditional write again while S3 answers 409, with a bounded backoff', () => {
  const conflict = () =>
    new S3ServiceException({
      name: 'ConditionalRequestConflict',
      $fault: 'client',
      $metadata: { httpStatusCode: 409 },
      message: 'A conflicting operation occurred',
    });
  const preconditionFailed = () =>
    new S3ServiceException({
      name: 'PreconditionFailed',
      $fault: 'client',
      $metadata: { httpStatusCode: 412 },
      message: 'At least one of the pre-conditions you specified did not hold',
    });

  function answers(...outcomes: Array<Error | string>): { write: () => Promise<string>; calls: () => number } {
    let calls = 0;
    return {
      write: async () => {
        const outcome = outcomes[Math.min(calls++, outcomes.length - 1)]!;
        if (outcome instanceof Error) throw outcome;
        return outcome;
      },
      calls: () => calls,
    };
  }

  test('409 twice, then the write succeeds: its result, after two waits', async () => {
    const waits: number[] = [];
    const { write, calls } = answers(conflict(), conflict(), 'written');
    await expect(
      retryOnConditionalConflict('s3://b/k', write, { sleep: async (ms) => waits.push(ms), random: () => 1 }),
    ).resolves.toBe('written');
    expect(calls()).toBe(3);
    expect(waits).toEqual([100, 200]);
  });

  test('409 then 412: the 412 is thrown as it is (the condition decided: another write came first)', async () => {
    const { write, calls } = answers(conflict(), preconditionFailed());
    await expect(retryOnConditionalConflict('s3://b/k', write, { sleep: async () => undefined })).rejects.toMatchObject(
      { name: 'PreconditionFailed' },
    );
    expect(calls()).toBe(2);
  });

  test('409 on every attempt: ConditionalWriteConflictError naming the key, after CONFLICT_ATTEMPTS writes and waits of at most 2 s', async () => {
    const waits: number[] = [];
    const { write, calls } = answers(conflict());
    const error = await retryOnConditionalConflict('s3://b/deployments/x.json', write, {
      sleep: async (ms) => waits.push(ms),
      random: () => 0.999,
    }).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(ConditionalWriteConflictError);
    expect((error as Error).message).toMatch(
      /409 ConditionalRequestConflict to all 6 conditional writes of s3:\/\/b\/deployments\/x\.json/,
    );
    expect((error as Error).cause).toMatchObject({ name: 'ConditionalRequestConflict' });
    expect(calls()).toBe(CONFLICT_ATTEMPTS);
    expect(waits).toHaveLength(CONFLICT_ATTEMPTS - 1);
    expect(Math.max(...waits)).toBeLessThanOrEqual(2000);
  });

  test('any other error is thrown at once, without waiting', async () => {
    const waits: number[] = [];
    const denied = new S3ServiceException({
      name: 'AccessDenied',
      $fault: 'client',
      $metadata: { httpStatusCode: 403 },
      message: 'Access Denied',
    });
    const { write, calls } = answers(denied);
    await expect(retryOnConditionalConflict('s3://b/k', write, { sleep: async (ms) => waits.push(ms) })).rejects.toBe(
      denied,
    );
    expect(calls()).toBe(1);
    expect(waits).toEqual([]);
  });

  test('the backoff doubles from 100 ms with full jitter and never exceeds 2 s', () => {
    expect([1, 2, 3, 4, 5, 6, 12].map((attempt) => conflictBackoffMs(attempt, () => 0.999999))).toEqual([
      99, 199, 399, 799, 1599, 1999, 1999,
    ]);
    expect(conflictBackoffMs(3, () => 0)).toBe(0);
  });
});
