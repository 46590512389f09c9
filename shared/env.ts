import { EnvironmentVariableError } from './errors';

/**
 * Environment variables, read in one place by every layer: a required one that is unset, or a
 * number that does not parse, is an error naming the variable, its value and the fix, never a
 * silent default (`Number('70m')` is NaN, and a NaN lease would expire at once).
 *
 * Each reader takes the environment it reads: a task handler's is its function's own (process.env
 * on Lambda, one object per function in the local runtime), so two local runtimes in one process
 * never read each other's; the CLI passes process.env.
 */

/** A function's (or a process's) environment variables. */
export type Environment = Readonly<Record<string, string | undefined>>;

/** The value, or an EnvironmentVariableError when it is unset or empty. */
export function requireEnv(env: Environment, name: string): string {
  const value = optionalEnv(env, name);
  if (value === undefined) throw new EnvironmentVariableError(`${name} environment variable is not set`);
  return value;
}

/** The value; unset and empty are the same (a shell's `NAME=` unsets in effect). */
export function optionalEnv(env: Environment, name: string): string | undefined {
  const value = env[name];
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
export function numberEnv(env: Environment, name: string, options: NumberEnvOptions): number {
  const text = optionalEnv(env, name);
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

/** The services the tasks call, as their `AWS_ENDPOINT_URL_<SERVICE>` variables spell them. */
export type AwsService = 'S3' | 'SFN' | 'CODEBUILD' | 'SECRETS_MANAGER';

type ChecksumSetting = 'WHEN_SUPPORTED' | 'WHEN_REQUIRED';

/** What an SDK client is given so that it reads nothing of process.env that its environment sets. */
export interface ClientSettings {
  readonly region?: string;
  readonly endpoint?: string;
  readonly credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  readonly requestChecksumCalculation?: ChecksumSetting;
  readonly responseChecksumValidation?: ChecksumSetting;
}

/**
 * An SDK client's settings from a function's environment, the variables the SDK itself reads from
 * process.env (region, `AWS_ENDPOINT_URL_<SERVICE>` / `AWS_ENDPOINT_URL`, the credentials Lambda
 * puts there, S3's checksum settings): on Lambda the same client as `new S3Client({})`; locally a
 * client of this runtime's endpoint. What the environment leaves unset the SDK resolves as usual.
 */
export function clientSettings(env: Environment, service: AwsService): ClientSettings {
  const accessKeyId = optionalEnv(env, 'AWS_ACCESS_KEY_ID');
  const secretAccessKey = optionalEnv(env, 'AWS_SECRET_ACCESS_KEY');
  const sessionToken = optionalEnv(env, 'AWS_SESSION_TOKEN');
  const settings: Record<string, unknown> = {
    region: optionalEnv(env, 'AWS_REGION'),
    endpoint: optionalEnv(env, `AWS_ENDPOINT_URL_${service}`) ?? optionalEnv(env, 'AWS_ENDPOINT_URL'),
    credentials:
      accessKeyId && secretAccessKey
        ? { accessKeyId, secretAccessKey, ...(sessionToken ? { sessionToken } : {}) }
        : undefined,
  };
  if (service === 'S3') {
    settings.requestChecksumCalculation = checksumSetting(env, 'AWS_REQUEST_CHECKSUM_CALCULATION');
    settings.responseChecksumValidation = checksumSetting(env, 'AWS_RESPONSE_CHECKSUM_VALIDATION');
  }
  return Object.fromEntries(Object.entries(settings).filter(([, v]) => v !== undefined)) as ClientSettings;
}

function checksumSetting(env: Environment, name: string): ChecksumSetting | undefined {
  const value = optionalEnv(env, name)?.toUpperCase();
  if (value === undefined) return undefined;
  if (value === 'WHEN_SUPPORTED' || value === 'WHEN_REQUIRED') return value;
  throw new EnvironmentVariableError(
    `${name} environment variable is ${JSON.stringify(env[name])}: set it to when_supported or when_required, or unset it`,
  );
}
