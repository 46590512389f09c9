/**
 * Deploy's errors. The names are a contract with workflows/deploy-pipeline.asl.json:
 * DeployLeaseBusyError is retried with backoff (waiting for the environment), the others are not.
 */

/** Another, older execution is deploying to this environment: wait (the state machine retries). */
export class DeployLeaseBusyError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'DeployLeaseBusyError';
  }
}

/** A newer execution has deployed, or is deploying, to this environment: this one must not deploy over it. */
export class DeploySupersededError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'DeploySupersededError';
  }
}
