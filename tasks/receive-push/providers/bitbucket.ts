import { z } from 'zod';
import type { BranchPush, Headers, ParsedDelivery } from '../push';
import { contentKey } from './github';

/**
 * Bitbucket Cloud's repo:push (X-Event-Key). One delivery lists every ref the push changed. Its
 * key is the webhook's id plus the changes themselves: Bitbucket's retries of one event send the
 * same payload, and no documented header promises to stay the same across them.
 */
const refSchema = z
  .object({ type: z.string(), name: z.string(), target: z.object({ hash: z.string() }).optional() })
  .nullable()
  .optional();

const payloadSchema = z.object({
  push: z.object({ changes: z.array(z.object({ new: refSchema, old: refSchema })) }),
  repository: z.object({
    full_name: z.string().optional(),
    links: z.object({ html: z.object({ href: z.string() }).optional() }).optional(),
  }),
  actor: z.object({ nickname: z.string().optional(), display_name: z.string().optional() }).optional(),
});

export function parseBitbucket(headers: Headers, payload: unknown): ParsedDelivery {
  const event = headers['x-event-key'];
  if (event === 'diagnostics:ping') return { kind: 'ignored', reason: 'a ping event: the webhook reaches stepdeploy' };
  if (event !== 'repo:push')
    return { kind: 'ignored', reason: `a ${JSON.stringify(event ?? '(none)')} event, not a push` };
  const body = payloadSchema.parse(payload);
  const { full_name: fullName, links } = body.repository;
  const repositoryUrls = [
    ...(links?.html ? [links.html.href] : []),
    ...(fullName ? [`https://bitbucket.org/${fullName}.git`] : []),
  ];
  const pusher = body.actor?.nickname ?? body.actor?.display_name ?? 'unknown';
  const pushes: BranchPush[] = [];
  const ignored: string[] = [];
  for (const change of body.push.changes) {
    const now = change.new;
    if (now === null || now === undefined)
      ignored.push(`a deletion of ${JSON.stringify(change.old?.name ?? '(unknown)')}`);
    else if (now.type !== 'branch')
      ignored.push(`a ${now.type} push (${JSON.stringify(now.name)}): only branch pushes deploy`);
    else if (now.target === undefined) ignored.push(`a push to ${JSON.stringify(now.name)} without a commit`);
    else pushes.push({ repositoryUrls, branch: now.name, commit: now.target.hash, pusher });
  }
  if (pushes.length === 0) return { kind: 'ignored', reason: ignored.join('; ') || 'a push that changed no ref' };
  const changes = body.push.changes.map((c) => [c.old?.name, c.old?.target?.hash, c.new?.name, c.new?.target?.hash]);
  return {
    kind: 'pushes',
    deliveryKey: contentKey(headers['x-hook-uuid'] ?? '', repositoryUrls, changes),
    pushes,
    ignored,
  };
}
