/**
 * The approval's errors. Their names are a contract with workflows/deploy-pipeline.asl.json and
 * with people reading a failed execution: neither is retried, and a redrive asks again.
 */

/** No decision came within the environment's approval.timeoutMinutes (the ApprovalTimedOut state). */
export class ApprovalTimedOutError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'ApprovalTimedOutError';
  }
}

/**
 * A person rejected the deployment. decide-approval fails the AwaitApproval task with this name
 * (SendTaskFailure), so the execution ends FAILED at AwaitApproval with who and why as the cause.
 */
export class ApprovalRejectedError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'ApprovalRejectedError';
  }
}
