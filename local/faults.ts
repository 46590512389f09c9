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
}

/** An error with the name AWS gives it (e.g. `CodeBuild.AccountLimitExceededException`). */
export function awsError(name: string, message: string): Error {
  const err = new Error(message);
  err.name = name;
  return err;
}
