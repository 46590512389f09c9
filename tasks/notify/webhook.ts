import type { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { cachedSecret, plainOrJsonField, SECRET_CACHE_TTL_MS } from '../shared/secret';
import { WebhookSecretError } from './errors';

export const WEBHOOK_CACHE_TTL_MS = SECRET_CACHE_TTL_MS;

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
  return cachedSecret(secrets, secretName, {
    ...options,
    what: 'the Slack webhook secret',
    expected: 'a webhook URL nor JSON {"url": "https://hooks.slack.com/..."}',
    parse: (value) => {
      const url = plainOrJsonField(value, 'url');
      // fetch's error for a URL it cannot parse quotes the URL: such a value is refused here, by name.
      return url !== undefined && /^https?:\/\/[^\s]+$/.test(url) && URL.canParse(url) ? url : undefined;
    },
    error: (message, errorOptions) => new WebhookSecretError(message, errorOptions),
  });
}
