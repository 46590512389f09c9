import { GetSecretValueCommand, type SecretsManagerClient } from '@aws-sdk/client-secrets-manager';

/** Long enough to spare Secrets Manager on a busy day, short enough that a rotated value is picked up soon. */
export const SECRET_CACHE_TTL_MS = 5 * 60 * 1000;

/**
 * A fresh read asked for within this long of the last read answers the cached value: a caller
 * that asks after a signature mismatch (the secret may have been rotated) cannot be made, by a
 * stream of forged requests, to read Secrets Manager on each one.
 */
export const SECRET_MIN_REFRESH_MS = 10 * 1000;

export interface CachedSecretOptions<T> {
  /** What the secret is for, in errors: "the Slack webhook secret". */
  readonly what: string;
  /** The usable value in the secret string, or undefined when it holds none. */
  readonly parse: (value: string) => T | undefined;
  /** What a good value looks like, in the error when parse finds none. */
  readonly expected: string;
  /** Builds the error thrown (the caller's own error class). */
  readonly error: (message: string, options?: ErrorOptions) => Error;
  /** @default SECRET_CACHE_TTL_MS */
  readonly ttlMs?: number;
  /** @default SECRET_MIN_REFRESH_MS */
  readonly minRefreshMs?: number;
  /** @default Date.now */
  readonly now?: () => number;
}

/** `fresh`: read again unless the last read is under `minRefreshMs` old (e.g. after a signature mismatch). */
export type SecretReader<T> = (read?: { readonly fresh?: boolean }) => Promise<T>;

/**
 * A function that answers a value kept in a Secrets Manager secret, read at run time (never in
 * code, config, environment variables or input) and cached for `ttlMs` per container. Errors
 * name the secret, never its value.
 */
export function cachedSecret<T>(
  secrets: SecretsManagerClient,
  secretName: string,
  options: CachedSecretOptions<T>,
): SecretReader<T> {
  const ttlMs = options.ttlMs ?? SECRET_CACHE_TTL_MS;
  const minRefreshMs = options.minRefreshMs ?? SECRET_MIN_REFRESH_MS;
  const now = options.now ?? Date.now;
  let cached: { value: T; readAt: number } | undefined;
  return async (read = {}) => {
    if (cached !== undefined) {
      const age = now() - cached.readAt;
      if (age < (read.fresh ? minRefreshMs : ttlMs)) return cached.value;
    }
    const value = await readSecret(secrets, secretName, options);
    cached = { value, readAt: now() };
    return value;
  };
}

/** `cachedSecret` of a secret that holds one plain string (a signing secret): non-empty, used as it is. */
export function cachedSecretString(
  secrets: SecretsManagerClient,
  secretName: string,
  what: string,
): SecretReader<string> {
  return cachedSecret(secrets, secretName, {
    what,
    expected: 'a secret string',
    parse: (value) => (value === '' ? undefined : value),
    error: (message, options) => new Error(message, options),
  });
}

async function readSecret<T>(
  secrets: SecretsManagerClient,
  secretName: string,
  options: CachedSecretOptions<T>,
): Promise<T> {
  let text: string | undefined;
  try {
    text = (await secrets.send(new GetSecretValueCommand({ SecretId: secretName }))).SecretString;
  } catch (err) {
    throw options.error(`cannot read ${options.what} ${secretName}: ${(err as Error).name}`, { cause: err });
  }
  const value = options.parse(text?.trim() ?? '');
  if (value === undefined) throw options.error(`${options.what} ${secretName} holds neither ${options.expected}`);
  return value;
}

/** The secret string itself, or the string at `key` when it is a JSON object. */
export function plainOrJsonField(value: string, key: string): string | undefined {
  if (!value.startsWith('{')) return value === '' ? undefined : value;
  try {
    const field = (JSON.parse(value) as Record<string, unknown>)[key];
    return typeof field === 'string' && field !== '' ? field : undefined;
  } catch {
    return undefined;
  }
}
