import { z } from 'zod';
import type { Headers, ParsedDelivery } from '../push';
import { contentKey, refIgnored } from './github';

/**
 * GitLab's Push Hook (X-Gitlab-Event: Push Hook). The delivery key is `Idempotency-Key`, which
 * GitLab keeps across retries of one event (GitLab 17.4 and later), else X-Gitlab-Event-UUID.
 */
const payloadSchema = z.object({
  object_kind: z.string(),
  ref: z.string(),
  after: z.string(),
  user_username: z.string().optional(),
  user_name: z.string().optional(),
  project: z
    .object({
      git_http_url: z.string().optional(),
      git_ssh_url: z.string().optional(),
      web_url: z.string().optional(),
    })
    .optional(),
  repository: z.object({ git_http_url: z.string().optional(), homepage: z.string().optional() }).optional(),
});

export function parseGitLab(headers: Headers, payload: unknown): ParsedDelivery {
  const event = headers['x-gitlab-event'];
  if (event === 'Tag Push Hook') return { kind: 'ignored', reason: 'a tag push: only branch pushes deploy' };
  if (event !== 'Push Hook')
    return { kind: 'ignored', reason: `a ${JSON.stringify(event ?? '(none)')} event, not a push` };
  const push = payloadSchema.parse(payload);
  if (push.object_kind !== 'push')
    return { kind: 'ignored', reason: `a ${JSON.stringify(push.object_kind)} event, not a push` };
  const ignored = refIgnored(push.ref, push.after, false);
  if (ignored !== undefined) return { kind: 'ignored', reason: ignored };
  const repositoryUrls = [...Object.values(push.project ?? {}), ...Object.values(push.repository ?? {})].filter(
    (u): u is string => typeof u === 'string',
  );
  return {
    kind: 'pushes',
    deliveryKey:
      headers['idempotency-key'] ?? headers['x-gitlab-event-uuid'] ?? contentKey(push.ref, push.after, repositoryUrls),
    pushes: [
      {
        repositoryUrls,
        branch: push.ref.slice('refs/heads/'.length),
        commit: push.after,
        pusher: push.user_username ?? push.user_name ?? 'unknown',
      },
    ],
    ignored: [],
  };
}
