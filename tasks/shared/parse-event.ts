import type { z } from 'zod';
import { formatPath } from '../../shared/config';

/**
 * A task received an event the state machine should never build: the ASL's Parameters and the
 * task disagree. That is a wiring bug, not a bad deployment request, so the state fails at once
 * (the ASL never retries it) with every mismatch named.
 */
export class InvalidEventError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'InvalidEventError';
  }
}

/** Parses a task's event with its zod schema; `state` is the ASL state name, for the message. */
export function parseEvent<T extends z.ZodType>(schema: T, event: unknown, state: string): z.output<T> {
  const result = schema.safeParse(event);
  if (result.success) return result.data;
  const lines = result.error.issues.map((issue) => `  ${formatPath(issue.path) || '(event)'}: ${issue.message}`);
  throw new InvalidEventError(`${state} received an invalid event:\n${lines.join('\n')}`, { cause: result.error });
}
