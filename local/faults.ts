/**
 * Fault injection for the local runtime: tests make a Task attempt or an S3 request fail the way
 * AWS fails, to prove what the pipeline promises under faults. Nothing here runs unless a test
 * passes a plan.
 */
export interface FaultPlan {
  /**
   * Before each attempt of a Task state (nested states included): return an error to fail that
   * attempt with it instead of running the task (its `name` is the error the state sees).
   */
  task?(stateName: string, attempt: number): Error | undefined;
  /** For each S3 request: return an HTTP status (500, 503) to answer it with an S3 error instead. */
  s3?(method: string, bucket: string, key: string, query: URLSearchParams): number | undefined;
  /**
   * For each conditional write (If-None-Match / If-Match) the local S3 receives, holding its key's
   * lock and before checking the condition: return true to answer it 409 ConditionalRequestConflict,
   * as S3 does when a conflicting operation meets it. Nothing is written; a CompleteMultipartUpload
   * so answered also loses its upload (S3 says to start a new one), so a client that sends the same
   * Complete again gets NoSuchUpload. `conflictsOnConditionalWrites` makes one.
   */
  conditionalWrite?(write: ConditionalWrite): boolean;
  /** For each CloudWatch Logs call (`GetLogEvents`): return true to answer it 500 ServiceUnavailableException. */
  logs?(operation: string): boolean;
}

/** A conditional write as the local S3 receives it. */
export interface ConditionalWrite {
  readonly operation: 'PutObject' | 'CopyObject' | 'CompleteMultipartUpload';
  readonly bucket: string;
  readonly key: string;
  /** Its `If-None-Match` header (`*`), if any. */
  readonly ifNoneMatch?: string;
  /** Its `If-Match` header (an ETag), if any. */
  readonly ifMatch?: string;
}

/** A `FaultPlan.conditionalWrite` that also lists the writes it answered 409. */
export interface ConflictInjection {
  (write: ConditionalWrite): boolean;
  readonly injected: ReadonlyArray<ConditionalWrite>;
}

/**
 * Answers 409 ConditionalRequestConflict to the next `count` conditional writes (`Infinity`: all)
 * whose key starts with `keyPrefix` (and, if given, whose operation is `operation`); the others
 * go through. E.g. `faults: { conditionalWrite: conflictsOnConditionalWrites({ keyPrefix:
 * 'deployments/acceptance/', count: 2 }) }` makes the next two conditional writes under that
 * prefix fail with 409, then lets them through.
 */
export function conflictsOnConditionalWrites(options: {
  readonly keyPrefix: string;
  readonly count: number;
  readonly operation?: ConditionalWrite['operation'];
}): ConflictInjection {
  const injected: ConditionalWrite[] = [];
  const conflict = (write: ConditionalWrite): boolean => {
    if (injected.length >= options.count || !write.key.startsWith(options.keyPrefix)) return false;
    if (options.operation !== undefined && write.operation !== options.operation) return false;
    injected.push(write);
    return true;
  };
  return Object.assign(conflict, { injected });
}

/** An error with the name AWS gives it (e.g. `CodeBuild.AccountLimitExceededException`). */
export function awsError(name: string, message: string): Error {
  const err = new Error(message);
  err.name = name;
  return err;
}
