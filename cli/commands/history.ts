import type { HistoryEvent } from '@aws-sdk/client-sfn';
import { ExitCode } from '../exit-codes';
import { fullHistory } from '../follow';
import { formatDuration } from '../graph';
import { println, type Io } from '../io';
import { describeCause } from '../progress';
import type { Target } from '../target';

interface EventDetails {
  readonly name?: string;
  readonly index?: number;
  readonly error?: string;
  readonly cause?: string;
  readonly resourceType?: string;
  readonly resource?: string;
}

function detailsOf(event: HistoryEvent): EventDetails {
  const entry = Object.entries(event).find(([key, value]) => key.endsWith('EventDetails') && value);
  return (entry?.[1] ?? {}) as EventDetails;
}

/** One line per event: id, time since start, type, the state (or Map iteration), and an error if any. */
export function historyLines(events: ReadonlyArray<HistoryEvent>): string[] {
  const start = events[0]?.timestamp?.getTime() ?? 0;
  return events.map((event) => {
    const d = detailsOf(event);
    const what =
      d.name !== undefined
        ? d.index !== undefined
          ? `${d.name}[${d.index}]`
          : d.name
        : d.resourceType
          ? `${d.resourceType}:${d.resource}`
          : '';
    const error =
      d.error !== undefined
        ? `${d.error}${d.cause ? `: ${describeCause(d.cause).replace(/\s+/g, ' ').slice(0, 200)}` : ''}`
        : '';
    const at = `+${formatDuration((event.timestamp?.getTime() ?? start) - start) || '0ms'}`;
    return [String(event.id ?? '').padStart(4), at.padStart(8), (event.type ?? '').padEnd(26), what.padEnd(24), error]
      .join('  ')
      .trimEnd();
  });
}

export async function runHistory(
  target: Target,
  executionArn: string,
  options: { readonly json?: boolean },
  io: Io,
): Promise<ExitCode> {
  const events = await fullHistory(target, executionArn);
  if (options.json) println(io, JSON.stringify(events, null, 2));
  else for (const line of historyLines(events)) println(io, line);
  return ExitCode.Ok;
}
