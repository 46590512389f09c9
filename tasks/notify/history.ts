import { type HistoryEvent, paginateGetExecutionHistory, type SFNClient } from '@aws-sdk/client-sfn';
import { fetchedIn, type ExecutionHistorySummary } from './message';

/** Given an execution ARN, what its history says about where it stopped and what it fetched. */
export type HistoryLookup = (executionArn: string) => Promise<ExecutionHistorySummary>;

/** The newest events tell where the execution stopped; a deployment's history is far shorter than this. */
const MAX_PAGES = 3;
/** A notification is not worth waiting long for. */
const LOOKUP_TIMEOUT_MS = 3000;

/** Reads the execution history newest first, stopping as soon as both facts are found. */
export function historyLookup(sfn: SFNClient): HistoryLookup {
  return async (executionArn) => {
    const signal = AbortSignal.timeout(LOOKUP_TIMEOUT_MS);
    let summary: ExecutionHistorySummary = {};
    let read = 0;
    const pages = paginateGetExecutionHistory(
      { client: sfn, pageSize: 1000 },
      { executionArn, reverseOrder: true },
      { abortSignal: signal },
    );
    for await (const page of pages) {
      summary = summarize(page.events ?? [], summary);
      if ((summary.lastState && summary.fetched) || ++read === MAX_PAGES) break;
    }
    return summary;
  };
}

/** Adds what `events` (newest first) tell to what newer pages already told. */
export function summarize(
  events: ReadonlyArray<HistoryEvent>,
  known: ExecutionHistorySummary = {},
): ExecutionHistorySummary {
  let { lastState, fetched } = known;
  for (const event of events) {
    lastState ??= event.stateEnteredEventDetails?.name;
    fetched ??= fetchedIn(event.stateEnteredEventDetails?.input) ?? fetchedIn(event.stateExitedEventDetails?.output);
    if (lastState !== undefined && fetched !== undefined) break;
  }
  return { lastState, fetched };
}
