/**
 * Error names are a contract: the state machine's Retry and Catch `ErrorEquals` match them,
 * and the Lambda integration reports them as the state's error.
 */

export class EnvironmentVariableError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'EnvironmentVariableError';
  }
}

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

/** Reads a required environment variable; the message names it so the fix is obvious. */
export function requireEnv(name: string): string {
  const value = process.env[name];
  if (value === undefined || value === '') {
    throw new EnvironmentVariableError(`${name} environment variable is not set`);
  }
  return value;
}
