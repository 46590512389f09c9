import { z } from 'zod';
import type { ParsedDelivery } from '../push';
import { refIgnored } from './github';

/**
 * CodeCommit's "CodeCommit Repository State Change" EventBridge event (CodeCommit user guide,
 * "Monitoring CodeCommit events"). It reaches the receiver through an EventBridge rule, so IAM,
 * not a signature, vouches for it. EventBridge redelivers an event with the same `id`.
 */
export const codeCommitEventSchema = z.object({
  id: z.string().min(1),
  source: z.literal('aws.codecommit'),
  'detail-type': z.literal('CodeCommit Repository State Change'),
  region: z.string().regex(/^[a-z]{2}(-[a-z]+)+-\d$/),
  detail: z.object({
    event: z.string(),
    repositoryName: z.string().regex(/^[\w.-]{1,100}$/),
    referenceType: z.string().optional(),
    referenceFullName: z.string().optional(),
    referenceName: z.string().optional(),
    commitId: z.string().optional(),
    callerUserArn: z.string().optional(),
  }),
});
export type CodeCommitEvent = z.infer<typeof codeCommitEventSchema>;

export function parseCodeCommit(event: CodeCommitEvent): ParsedDelivery {
  const { detail } = event;
  if (detail.event === 'referenceDeleted')
    return { kind: 'ignored', reason: `a deletion of ${JSON.stringify(detail.referenceFullName)}` };
  if (detail.event !== 'referenceCreated' && detail.event !== 'referenceUpdated')
    return { kind: 'ignored', reason: `a ${JSON.stringify(detail.event)} event, not a push` };
  const ref =
    detail.referenceFullName ??
    `refs/${detail.referenceType === 'tag' ? 'tags' : 'heads'}/${detail.referenceName ?? ''}`;
  const ignored = refIgnored(ref, detail.commitId ?? '', false);
  if (ignored !== undefined) return { kind: 'ignored', reason: ignored };
  return {
    kind: 'pushes',
    deliveryKey: event.id,
    pushes: [
      {
        repositoryUrls: [`https://git-codecommit.${event.region}.amazonaws.com/v1/repos/${detail.repositoryName}`],
        branch: ref.slice('refs/heads/'.length),
        commit: detail.commitId ?? '',
        pusher: detail.callerUserArn?.split(/[:/]/).at(-1) ?? 'unknown',
      },
    ],
    ignored: [],
  };
}
