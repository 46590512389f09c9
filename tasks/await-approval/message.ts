import type { SlackMessage } from '../notify/format';
import { shortSha } from '../notify/format';

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

export function approvalSlackMessage(request: ApprovalRequest): SlackMessage {
  const [headline, ...rest] = approvalLines(request);
  return {
    text: headline!,
    blocks: [
      { type: 'section', text: { type: 'mrkdwn', text: `:raised_hand: *${escapeMrkdwn(headline!)}*` } },
      { type: 'section', text: { type: 'mrkdwn', text: rest.map((line) => escapeMrkdwn(line.trim())).join('\n') } },
    ],
  };
}
