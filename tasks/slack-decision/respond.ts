import { postToSlack, type SlackResult } from '../notify/slack';
import type { SlackReply } from './slack-decision';

/** A click's response_url is good for a few answers within 30 minutes; one that does not come in time is given up. */
export const REPLY_TIMEOUT_MS = 2000;

/**
 * Where replies may go: Slack's response URLs only (https://hooks.slack.com/...). The URL comes
 * from a signed request, but a function that POSTs wherever a request says would be a relay.
 */
export function isSlackResponseUrl(url: URL): boolean {
  return url.protocol === 'https:' && url.hostname === 'hooks.slack.com' && url.port === '';
}

/** Posts a reply to a click's response_url when `allowed` accepts it; never throws, never logs the URL. */
export function replyPoster(
  allowed: (url: URL) => boolean = isSlackResponseUrl,
  timeoutMs = REPLY_TIMEOUT_MS,
): (responseUrl: string, message: SlackReply) => Promise<SlackResult> {
  return async (responseUrl, message) => {
    const url = URL.canParse(responseUrl) ? new URL(responseUrl) : undefined;
    if (url === undefined || !allowed(url))
      return { ok: false, reason: 'the response_url is not a Slack response URL (https://hooks.slack.com/...)' };
    return postToSlack(url.href, message, timeoutMs);
  };
}
