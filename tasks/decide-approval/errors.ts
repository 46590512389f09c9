/**
 * A decision that decide-approval refuses, with the HTTP status its function URL answers. These
 * never reach the state machine: the caller gets the message, the execution keeps waiting.
 */
export class DecisionRefusedError extends Error {
  constructor(
    readonly statusCode: 400 | 403 | 404 | 409,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = 'DecisionRefusedError';
  }
}
