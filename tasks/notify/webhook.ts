import { GetSecretValueCommand, type SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { WebhookSecretError } from './errors';

/** Long enough to spare Secrets Manager on a busy day, short enough that a rotated URL is picked up soon. */
export const WEBHOOK_CACHE_TTL_MS = 5 * 60 * 1000;

export interface WebhookUrlOptions {
  /** @default WEBHOOK_CACHE_TTL_MS */
  readonly ttlMs?: number;
  /** @default Date.now */
  readonly now?: () => number;
}

/**
 * A function that answers the webhook URL kept in a Secrets Manager secret (the URL itself or
 * `{"url": "..."}`), read at run time and cached for `ttlMs` per container. Errors name the
 * secret, never its value.
 */
export function webhookUrlFromSecret(
  secrets: SecretsManagerClient,
  secretName: string,
  options: WebhookUrlOptions = {},
): () => Promise<string> {
  const ttlMs = options.ttlMs ?? WEBHOOK_CACHE_TTL_MS;
  const now = options.now ?? Date.now;
  let cached: { url: string; expires: number } | undefined;
  return async () => {
    if (cached !== undefined && now() < cached.expires) return cached.url;
    const url = await readSecret(secrets, secretName);
    cached = { url, expires: now() + ttlMs };
    return url;
  };
}

async function readSecret(secrets: SecretsManagerClient, secretName: string): Promise<string> {
  let value: string | undefined;
  try {
    value = (await secrets.send(new GetSecretValueCommand({ SecretId: secretName }))).SecretString;
  } catch (err) {
    throw new WebhookSecretError(`cannot read the Slack webhook secret ${secretName}: ${(err as Error).name}`, {
      cause: err,
    });
  }
  const url = urlIn(value?.trim() ?? '');
  if (url === undefined) {
    throw new WebhookSecretError(
      `the Slack webhook secret ${secretName} holds neither a webhook URL nor JSON {"url": "https://hooks.slack.com/..."}`,
    );
  }
  return url;
}

function urlIn(value: string): string | undefined {
  let candidate: unknown = value;
  if (value.startsWith('{')) {
    try {
      candidate = (JSON.parse(value) as { url?: unknown }).url;
    } catch {
      return undefined;
    }
  }
  return typeof candidate === 'string' && /^https?:\/\/[^\s]+$/.test(candidate) ? candidate : undefined;
}
