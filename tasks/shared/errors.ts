/**
 * Error names are a contract: the state machine's Retry and Catch `ErrorEquals` match them,
 * and the Lambda integration reports them as the state's error.
 */

/**
 * S3 answered 409 ConditionalRequestConflict to every attempt of a conditional write (see
 * retryOnConditionalConflict): a conflicting operation on the key each time, and none of them
 * wrote anything. Safe to run the step again.
 */
export class ConditionalWriteConflictError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'ConditionalWriteConflictError';
  }
}
