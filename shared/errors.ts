/** The pipeline config is invalid: the message names the path, the value and the fix. */
export class ConfigError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'ConfigError';
  }
}

/** A Lambda lacks an environment variable the stack sets, or it holds no valid value (shared/env.ts). */
export class EnvironmentVariableError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'EnvironmentVariableError';
  }
}
