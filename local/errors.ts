/**
 * Errors the local Step Functions and CodeBuild APIs answer with. `name` is the AWS error code
 * (`ExecutionDoesNotExist`, `InvalidExecutionInput`, …): the HTTP API sends it as `__type`, so
 * AWS SDK clients raise the same exception classes they raise against AWS.
 */
export class LocalApiError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly statusCode = 400,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = code;
  }
}
