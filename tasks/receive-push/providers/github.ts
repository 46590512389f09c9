import { createHash } from 'node:crypto';
import { z } from 'zod';
import { type Headers, type ParsedDelivery, ZERO_COMMIT } from '../push';

/**
 * GitHub's `push` event (X-GitHub-Event: push). One delivery is one ref; X-GitHub-Delivery is the
 * event's id and stays the same when the delivery is redelivered (GitHub's webhook docs).
 */
const payloadSchema = z.object({
  ref: z.string(),
  after: z.string(),
  deleted: z.boolean().optional(),
  repository: z.object({
    clone_url: z.string().optional(),
    html_url: z.string().optional(),
    ssh_url: z.string().optional(),
    url: z.string().optional(),
  }),
  pusher: z.object({ name: z.string().optional() }).optional(),
  sender: z.object({ login: z.string().optional() }).optional(),
});

export function parseGitHub(headers: Headers, payload: unknown): ParsedDelivery {
  const event = headers['x-github-event'];
  if (event === 'ping') return { kind: 'ignored', reason: 'a ping event: the webhook reaches stepdeploy' };
  if (event !== 'push') return { kind: 'ignored', reason: `a ${JSON.stringify(event ?? '(none)')} event, not a push` };
  const push = payloadSchema.parse(payload);
  const ignored = refIgnored(push.ref, push.after, push.deleted === true);
  if (ignored !== undefined) return { kind: 'ignored', reason: ignored };
  const repositoryUrls = Object.values(push.repository).filter((u): u is string => typeof u === 'string');
  return {
    kind: 'pushes',
    deliveryKey: headers['x-github-delivery'] ?? contentKey(push.ref, push.after, repositoryUrls),
    pushes: [
      {
        repositoryUrls,
        branch: push.ref.slice('refs/heads/'.length),
        commit: push.after,
        pusher: push.pusher?.name ?? push.sender?.login ?? 'unknown',
      },
    ],
    ignored: [],
  };
}

/** Why a pushed ref starts no deployment, or undefined for a branch that now has a commit. */
export function refIgnored(ref: string, after: string, deleted: boolean): string | undefined {
  if (ref.startsWith('refs/tags/')) return `a tag push (${JSON.stringify(ref)}): only branch pushes deploy`;
  if (!ref.startsWith('refs/heads/')) return `a push to ${JSON.stringify(ref)}, not to a branch`;
  if (deleted || ZERO_COMMIT.test(after)) return `a branch deletion (${JSON.stringify(ref)})`;
  return undefined;
}

/** Without a delivery id, the same push delivered again still gets the same key. */
export function contentKey(...parts: ReadonlyArray<unknown>): string {
  return `content-${createHash('sha256').update(JSON.stringify(parts)).digest('hex')}`;
}
