import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * A local build's log as CloudWatch Logs keeps CodeBuild's: one event per line with the time it
 * was written. `build.log` stays the plain text people open; `log-events.ndjson` beside it holds
 * the same lines with their timestamps, which the local GetLogEvents answers from.
 */

export interface LogEvent {
  readonly timestamp: number;
  readonly message: string;
}

export function logEventsFile(buildDir: string): string {
  return join(buildDir, 'log-events.ndjson');
}

export function logEventLine(event: LogEvent): string {
  return `${JSON.stringify(event)}\n`;
}

/**
 * The build's log events, oldest first; undefined when the build has not logged yet (CodeBuild
 * creates the stream with its first line). A build from before the events file existed has only
 * `build.log`: its lines get the build's start time.
 */
export function readLogEvents(buildDir: string, startTime: number): LogEvent[] | undefined {
  const file = logEventsFile(buildDir);
  if (existsSync(file)) {
    const events: LogEvent[] = [];
    for (const line of readFileSync(file, 'utf8').split('\n')) {
      // The last line can be half-written while the build runs: it is read on the next call.
      if (line === '') continue;
      try {
        events.push(JSON.parse(line) as LogEvent);
      } catch {
        break;
      }
    }
    return events;
  }
  const text = join(buildDir, 'build.log');
  if (!existsSync(text)) return undefined;
  const lines = readFileSync(text, 'utf8').split('\n');
  if (lines.at(-1) === '') lines.pop();
  return lines.map((message) => ({ timestamp: startTime, message }));
}
