import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Slack's request signing ("Verifying requests from Slack"): every request carries
 * `X-Slack-Request-Timestamp` (Unix seconds) and `X-Slack-Signature`, which is `v0=` followed by the
 * hex HMAC-SHA256, keyed with the app's signing secret, of `v0:<timestamp>:<raw body>`. The
 * signature covers the timestamp, so a captured request cannot be sent again with a new one; the
 * age limit is what makes an old capture useless.
 */

/** Slack's documented limit: a request whose timestamp is more than five minutes from now is refused. */
export const MAX_REQUEST_AGE_SECONDS = 300;

/** Slack's only signature version so far. */
const VERSION = 'v0';

/**
 * Why the timestamp is refused, or undefined when it is within MAX_REQUEST_AGE_SECONDS of now
 * (either way: a clock ahead of ours is as suspect as one behind). Checked before the signature,
 * so an old or malformed request costs no secret read.
 */
export function timestampProblem(timestamp: string | undefined, nowSeconds: number): string | undefined {
  if (timestamp === undefined) return 'no X-Slack-Request-Timestamp header';
  if (!/^\d{1,12}$/.test(timestamp)) return 'X-Slack-Request-Timestamp is not a Unix time in seconds';
  const skew = Math.abs(nowSeconds - Number(timestamp));
  if (skew > MAX_REQUEST_AGE_SECONDS) {
    return `X-Slack-Request-Timestamp is ${skew} s from now, more than ${MAX_REQUEST_AGE_SECONDS} s (a replayed or delayed request)`;
  }
  return undefined;
}

/**
 * Why the signature is refused, or undefined when it is the signing secret's over this timestamp
 * and body. The comparison takes the same time wherever the digests differ (timingSafeEqual on
 * two 32-byte buffers), so answer times leak nothing of the expected signature.
 */
export function signatureProblem(
  signature: string | undefined,
  timestamp: string,
  body: Buffer,
  secret: string,
): string | undefined {
  if (signature === undefined) return 'no X-Slack-Signature header';
  const match = /^v0=([0-9a-f]{64})$/i.exec(signature);
  if (match === null) return 'X-Slack-Signature is not "v0=" followed by 64 hexadecimal digits';
  const given = Buffer.from(match[1]!, 'hex');
  const expected = slackDigest(timestamp, body, secret);
  return given.length === expected.length && timingSafeEqual(given, expected)
    ? undefined
    : 'X-Slack-Signature does not match the body and timestamp';
}

function slackDigest(timestamp: string, body: Buffer, secret: string): Buffer {
  return createHmac('sha256', secret).update(`${VERSION}:${timestamp}:`).update(body).digest();
}
