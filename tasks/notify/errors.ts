/**
 * notify never throws to its caller (a Slack outage must not look like a failed deployment);
 * these errors are caught, logged without the secret, and reported in the handler's result.
 */

/** The webhook secret is missing, unreadable, or holds neither a URL nor `{"url": ...}`. */
export class WebhookSecretError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'WebhookSecretError';
  }
}
