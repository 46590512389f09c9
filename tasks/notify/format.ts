import type { Notification, SourceRef } from './message';

const ICONS: Readonly<Record<string, string>> = {
  RUNNING: ':arrow_forward:',
  REDRIVEN: ':repeat:',
  SUCCEEDED: ':white_check_mark:',
  FAILED: ':x:',
  TIMED_OUT: ':hourglass:',
  ABORTED: ':no_entry_sign:',
};

export function shortSha(commit: string): string {
  return commit.slice(0, 7);
}

function sourceText(source: SourceRef): string {
  return `${source.name} ${source.branch}${source.commit ? `@${shortSha(source.commit)}` : ''}`;
}

/** 45s, 4m 12s, 1h 03m. */
export function formatDuration(ms: number): string {
  const seconds = Math.max(0, Math.round(ms / 1000));
  if (seconds < 60) return `${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes}m ${String(seconds % 60).padStart(2, '0')}s`;
  return `${Math.floor(minutes / 60)}h ${String(minutes % 60).padStart(2, '0')}m`;
}

/** "acceptance: FAILED at BuildTemplates" */
function headline(n: Notification): string {
  const where = n.step ? ` at ${n.step}` : '';
  return `${n.environment ?? 'unknown environment'}: ${n.status}${where}`;
}

function facts(n: Notification): string[] {
  return [
    n.sources.length > 0 ? n.sources.map(sourceText).join(', ') : 'sources not resolved yet',
    ...(n.durationMs === undefined ? [] : [formatDuration(n.durationMs)]),
    `execution ${n.execution}`,
    ...(n.requestedBy ? [`requested by ${n.requestedBy}`] : []),
  ];
}

/** One readable terminal line (the local runtime prints this when no webhook is configured). */
export function toLine(n: Notification): string {
  const parts = [headline(n), ...facts(n), ...(n.error ? [n.error] : []), ...(n.link ? [n.link.url] : [])];
  return `[stepdeploy] ${parts.join(' | ')}`;
}

/** Slack wants &, < and > escaped in mrkdwn; branch names are safe, free text may not be. */
function escapeMrkdwn(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

export interface SlackMessage {
  /** The notification text (push notifications, clients without blocks). */
  readonly text: string;
  readonly blocks: ReadonlyArray<Record<string, unknown>>;
}

export function toSlack(n: Notification): SlackMessage {
  const icon = ICONS[n.status] ?? ':grey_question:';
  const title = `${icon} *${escapeMrkdwn(headline(n))}*`;
  const lines = [title, escapeMrkdwn(facts(n).join(' · ')), ...(n.error ? [`\`${escapeMrkdwn(n.error)}\``] : [])];
  const link = n.link ? [`<${n.link.url}|${n.link.label}>`] : [];
  return {
    text: `${icon} ${escapeMrkdwn(headline(n))}`,
    blocks: [{ type: 'section', text: { type: 'mrkdwn', text: [...lines, ...link].join('\n') } }],
  };
}
