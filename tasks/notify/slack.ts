import type { SlackMessage } from './format';

/** Slack is best effort: a slow webhook must not hold the notifier (or its retries) for long. */
export const SLACK_TIMEOUT_MS = 5000;

export type SlackResult = { readonly ok: true } | { readonly ok: false; readonly reason: string };

/**
 * Posts to an incoming webhook and never throws. The reason never contains the URL: the
 * webhook URL is the secret, and error messages end up in logs.
 */
export async function postToSlack(
  url: string,
  message: SlackMessage,
  timeoutMs = SLACK_TIMEOUT_MS,
): Promise<SlackResult> {
  try {
    const response = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(message),
      signal: AbortSignal.timeout(timeoutMs),
    });
    await response.body?.cancel();
    return response.ok ? { ok: true } : { ok: false, reason: `Slack answered HTTP ${response.status}` };
  } catch (err) {
    return { ok: false, reason: failureReason(err, timeoutMs) };
  }
}

function failureReason(err: unknown, timeoutMs: number): string {
  const name = (err as Error | undefined)?.name;
  if (name === 'TimeoutError' || name === 'AbortError') return `Slack did not answer within ${timeoutMs} ms`;
  // fetch's own message is generic ("fetch failed"); the cause's code says what happened.
  const code = (err as { cause?: { code?: string } } | undefined)?.cause?.code ?? name ?? 'unknown error';
  return `the request to Slack failed (${code})`;
}
