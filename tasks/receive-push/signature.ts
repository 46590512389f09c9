import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { Headers, WebhookProvider } from './push';

/**
 * Whether a webhook request comes from whoever holds the secret: GitHub's X-Hub-Signature-256 and
 * Bitbucket Cloud's X-Hub-Signature are `sha256=<hex HMAC-SHA256 of the raw body>`; GitLab sends
 * the secret itself as X-Gitlab-Token. Every comparison takes the same time wherever the values
 * differ (timingSafeEqual on equal-length digests), so the answer times leak nothing of the secret.
 * Returns why the request is refused, or undefined when it is authentic.
 */
export function signatureProblem(
  provider: WebhookProvider,
  headers: Headers,
  body: Buffer,
  secret: string,
): string | undefined {
  if (provider === 'gitlab') {
    const token = headers['x-gitlab-token'];
    if (token === undefined) return 'no X-Gitlab-Token header: set the secret token on the GitLab webhook';
    return sameDigest(sha256(Buffer.from(token, 'utf8')), sha256(Buffer.from(secret, 'utf8')))
      ? undefined
      : 'X-Gitlab-Token is not the secret';
  }
  const header = provider === 'github' ? 'X-Hub-Signature-256' : 'X-Hub-Signature';
  const value = headers[header.toLowerCase()];
  if (value === undefined) return `no ${header} header: set the secret on the webhook`;
  const match = /^sha256=([0-9a-f]{64})$/i.exec(value);
  if (match === null) return `${header} is not "sha256=" followed by 64 hexadecimal digits`;
  const expected = createHmac('sha256', secret).update(body).digest();
  return sameDigest(Buffer.from(match[1]!, 'hex'), expected) ? undefined : `${header} does not match the body`;
}

function sha256(data: Buffer): Buffer {
  return createHash('sha256').update(data).digest();
}

function sameDigest(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

/** What a git host (or the local git hook) sends: `sha256=<hex>`. */
export function signBody(body: Buffer | string, secret: string): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}
