import { EnvironmentVariableError } from './errors';

/**
 * Environment variables, read in one place by every layer: a required one that is unset, or a
 * number that does not parse, is an error naming the variable, its value and the fix, never a
 * silent default (`Number('70m')` is NaN, and a NaN lease would expire at once).
 */

/** The value, or an EnvironmentVariableError when it is unset or empty. */
export function requireEnv(name: string): string {
  const value = optionalEnv(name);
  if (value === undefined) throw new EnvironmentVariableError(`${name} environment variable is not set`);
  return value;
}

/** The value; unset and empty are the same (a shell's `NAME=` unsets in effect). */
export function optionalEnv(name: string): string | undefined {
  const value = process.env[name];
  return value === undefined || value === '' ? undefined : value;
}

export interface NumberEnvOptions {
  /** When the variable is unset or empty. */
  readonly default: number;
  /** @default 0 */
  readonly min?: number;
  /** @default Number.MAX_SAFE_INTEGER */
  readonly max?: number;
  /** What the number counts, for the message (`seconds`). */
  readonly unit?: string;
}

/** A whole number from `min` to `max`, or the default when unset; anything else is an error. */
export function numberEnv(name: string, options: NumberEnvOptions): number {
  const text = optionalEnv(name);
  if (text === undefined) return options.default;
  const { min = 0, max = Number.MAX_SAFE_INTEGER } = options;
  const value = Number(text.trim());
  if (Number.isInteger(value) && value >= min && value <= max) return value;
  const unit = options.unit ? ` (${options.unit})` : '';
  throw new EnvironmentVariableError(
    `${name} environment variable is ${JSON.stringify(text)}, not a whole number from ${min} to ${max}${unit}: ` +
      `set it to one, or unset it for the default ${options.default}`,
  );
}
