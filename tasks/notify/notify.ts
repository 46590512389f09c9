import type { BuildStateChange, ExecutionStatusChange, NotifyEvent } from '../shared/eventbridge-events';
import { toLine, toSlack } from './format';
import type { HistoryLookup } from './history';
import {
  describeBuild,
  describeExecution,
  NOTIFIED_BUILD_STATUSES,
  NOTIFIED_EXECUTION_STATUSES,
  type ExecutionHistorySummary,
  type Notification,
} from './message';
import { postToSlack, SLACK_TIMEOUT_MS } from './slack';

export interface NotifyDeps {
  /** Answers the Slack webhook URL. When absent, the message is printed instead (local runtime). */
  readonly webhookUrl?: () => Promise<string>;
  /** Tells where a run that did not succeed stopped and what it fetched. @default none */
  readonly history?: HistoryLookup;
  /** @default console.log */
  readonly print?: (line: string) => void;
  /** @default SLACK_TIMEOUT_MS (5 s) */
  readonly timeoutMs?: number;
}

export type NotifyResult =
  | { readonly delivered: true; readonly via: 'slack' | 'stdout' }
  | { readonly delivered: false; readonly reason: string };

/** Turns one EventBridge event into one message, or none (see NOTIFIED_*_STATUSES). Never throws. */
export async function notify(event: NotifyEvent, deps: NotifyDeps = {}): Promise<NotifyResult> {
  const notification = await describe(event, deps.history);
  if (notification === undefined) return { delivered: false, reason: `${statusOf(event)} is not notified` };
  if (deps.webhookUrl === undefined) {
    (deps.print ?? console.log)(toLine(notification));
    return { delivered: true, via: 'stdout' };
  }
  return deliver(notification, deps.webhookUrl, deps.timeoutMs ?? SLACK_TIMEOUT_MS);
}

function statusOf(event: NotifyEvent): string {
  return event['detail-type'] === 'CodeBuild Build State Change'
    ? `build status ${event.detail['build-status']}`
    : `execution status ${event.detail.status}`;
}

async function describe(event: NotifyEvent, history: HistoryLookup | undefined): Promise<Notification | undefined> {
  if (event['detail-type'] === 'CodeBuild Build State Change') return describeBuildEvent(event);
  if (!NOTIFIED_EXECUTION_STATUSES.has(event.detail.status)) return undefined;
  return describeExecution(event, await historyOf(event, history));
}

function describeBuildEvent(event: BuildStateChange): Notification | undefined {
  return NOTIFIED_BUILD_STATUSES.has(event.detail['build-status']) ? describeBuild(event) : undefined;
}

/** Only a run that stopped short needs its history; a lookup failure just leaves it out. */
async function historyOf(
  event: ExecutionStatusChange,
  history: HistoryLookup | undefined,
): Promise<ExecutionHistorySummary | undefined> {
  const { status, executionArn } = event.detail;
  if (history === undefined || status === 'RUNNING' || status === 'SUCCEEDED') return undefined;
  try {
    return await history(executionArn);
  } catch (err) {
    console.error(
      `notify: execution history of ${executionArn} unavailable (${(err as Error).name}); sending without it`,
    );
    return undefined;
  }
}

async function deliver(
  notification: Notification,
  webhookUrl: () => Promise<string>,
  timeoutMs: number,
): Promise<NotifyResult> {
  let url: string;
  try {
    url = await webhookUrl();
  } catch (err) {
    console.error(`notify: ${(err as Error).message}`);
    return { delivered: false, reason: 'the Slack webhook secret is unavailable' };
  }
  const result = await postToSlack(url, toSlack(notification), timeoutMs);
  if (result.ok) return { delivered: true, via: 'slack' };
  console.error(`notify: Slack notification for ${notification.execution} not delivered: ${result.reason}`);
  return { delivered: false, reason: result.reason };
}
