import { GetExecutionHistoryCommand, type HistoryEvent, type SFNClient } from '@aws-sdk/client-sfn';
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
    let nextToken: string | undefined;
    for (let page = 0; page < MAX_PAGES; page++) {
      const response = await sfn.send(
        new GetExecutionHistoryCommand({ executionArn, reverseOrder: true, maxResults: 1000, nextToken }),
        { abortSignal: signal },
      );
      summary = summarize(response.events ?? [], summary);
      nextToken = response.nextToken;
      if ((summary.lastState && summary.fetched) || nextToken === undefined) break;
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
