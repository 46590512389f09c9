import type { SlackMessage } from '../notify/format';
import { shortSha } from '../notify/format';
import { APPROVAL_BLOCK_ID, APPROVE_ACTION_ID, buttonValue, REJECT_ACTION_ID } from '../slack-decision/actions';

/** What a person needs to decide: what would deploy, what is deployed now, who asked, how to answer. */
export interface ApprovalRequest {
  readonly environment: string;
  readonly execution: string;
  readonly requestedBy: string | null;
  readonly expiresAt: string;
  /** The execution whose build this one deploys again (a rollback), if any. */
  readonly redeployOf: string | null;
  /** The execution deployed now, if any. */
  readonly deployedExecution: string | null;
  readonly sources: ReadonlyArray<{
    readonly name: string;
    readonly branch: string;
    readonly commit: string;
    /** What is deployed now of this source, if anything. */
    readonly deployed?: { readonly branch: string; readonly commit: string };
    readonly compareUrl?: string;
  }>;
}

function sourceLine(source: ApprovalRequest['sources'][number]): string {
  const next = `${source.name} ${source.branch}@${shortSha(source.commit)}`;
  if (!source.deployed) return `${next} (nothing deployed yet)`;
  if (source.deployed.commit === source.commit) return `${next} (unchanged)`;
  const now = `deployed now ${source.deployed.branch}@${shortSha(source.deployed.commit)}`;
  return `${next} (${now}${source.compareUrl ? `, changes: ${source.compareUrl}` : ''})`;
}

export function approvalLines(request: ApprovalRequest): string[] {
  const what = request.redeployOf ? `a rollback to the build of ${request.redeployOf}` : 'a deployment';
  return [
    `${request.environment}: ${what} waits for approval (execution ${request.execution})`,
    ...request.sources.map((s) => `  ${sourceLine(s)}`),
    `  deployed now: ${request.deployedExecution ?? 'nothing'}`,
    `  requested by ${request.requestedBy ?? 'unknown'}; no decision by ${request.expiresAt} fails it (ApprovalTimedOutError; a redrive asks again)`,
    `  approve: stepdeploy approve ${request.execution} [--comment TEXT]`,
    `  reject:  stepdeploy reject ${request.execution} --reason TEXT`,
  ];
}

/** Slack wants &, < and > escaped in mrkdwn: requestedBy is free text. */
function escapeMrkdwn(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/**
 * `buttons`: Approve / Reject buttons, answered by tasks/slack-decision (only where the pipeline
 * has one: notifications.slack.signingSecretName). Approve asks for a confirmation first.
 */
export function approvalSlackMessage(
  request: ApprovalRequest,
  options: { readonly buttons?: boolean } = {},
): SlackMessage {
  const [headline, ...rest] = approvalLines(request);
  const value = buttonValue(request);
  const plain = (text: string) => ({ type: 'plain_text', text });
  return {
    text: headline!,
    blocks: [
      { type: 'section', text: { type: 'mrkdwn', text: `:raised_hand: *${escapeMrkdwn(headline!)}*` } },
      { type: 'section', text: { type: 'mrkdwn', text: rest.map((line) => escapeMrkdwn(line.trim())).join('\n') } },
      ...(options.buttons
        ? [
            {
              type: 'actions',
              block_id: APPROVAL_BLOCK_ID,
              elements: [
                {
                  type: 'button',
                  action_id: APPROVE_ACTION_ID,
                  text: plain('Approve'),
                  style: 'primary',
                  value,
                  confirm: {
                    title: plain('Approve this deployment?'),
                    text: plain(`${request.execution} deploys to ${request.environment} as soon as you confirm.`),
                    confirm: plain('Approve'),
                    deny: plain('Cancel'),
                  },
                },
                { type: 'button', action_id: REJECT_ACTION_ID, text: plain('Reject'), style: 'danger', value },
              ],
            },
          ]
        : []),
    ],
  };
}
