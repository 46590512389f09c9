import { LocalApiError } from './errors';
import type { LogEvent } from './codebuild/log-events';

/**
 * CloudWatch Logs' GetLogEvents (JSON 1.1, `X-Amz-Target: Logs_20140328.GetLogEvents`), answered
 * from the local builds' logs, so the CLI and the console read a build log through
 * `@aws-sdk/client-cloudwatch-logs` on AWS and locally alike. Each CodeBuild project logs to
 * `/aws/codebuild/<project>`, one stream per build named after the build id's UUID, as on AWS.
 *
 * As documented: exactly one of logGroupName / logGroupIdentifier (a name or a log group ARN);
 * limit 1-10,000 (default: up to 10,000 events); without a token, startFromHead=false returns the
 * newest events; tokens page forward (`f/`) and backward (`b/`), and a token handed back unchanged
 * means there is nothing more (yet). Errors: InvalidParameterException, ResourceNotFoundException
 * (group or stream), ServiceUnavailableException (on demand, through a fault plan).
 */

export interface LocalLogStreams {
  /** Whether the log group exists (one per CodeBuild project). */
  hasGroup(group: string): boolean;
  /** The stream's events, oldest first; undefined when no such stream exists (yet). */
  events(group: string, stream: string): ReadonlyArray<LogEvent> | undefined;
}

type Body = Record<string, unknown>;

const MAX_EVENTS = 10_000;
const LOG_GROUP_ARN = /^arn:[a-z-]+:logs:[a-z0-9-]+:\d{12}:log-group:([^:]+)(?::\*)?$/;

function invalid(message: string): LocalApiError {
  return new LocalApiError('InvalidParameterException', message);
}

function optionalNumber(body: Body, field: string, min: number, max = Number.MAX_SAFE_INTEGER): number | undefined {
  const value = body[field];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max)
    throw invalid(`1 validation error detected: Value '${String(value)}' at '${field}' failed to satisfy constraint`);
  return value;
}

function groupOf(body: Body): string {
  const { logGroupName: name, logGroupIdentifier: identifier } = body;
  if (name !== undefined && identifier !== undefined)
    throw invalid('LogGroup name and LogGroup ARN are mutually exclusive parameters.');
  const given = name ?? identifier;
  if (typeof given !== 'string' || given === '')
    throw invalid('Either logGroupName or logGroupIdentifier should be provided');
  return identifier === undefined ? given : (LOG_GROUP_ARN.exec(given)?.[1] ?? given);
}

/** A token is a position in the stream: `f/<n>` reads from event n on, `b/<n>` reads the events before n. */
function parseToken(token: unknown, size: number): { forward: boolean; at: number } | undefined {
  if (token === undefined || token === null) return undefined;
  const match = typeof token === 'string' ? /^([fb])\/(\d{20})$/.exec(token) : null;
  const at = match ? Number(match[2]) : Number.NaN;
  if (!match || at > size) throw invalid('The specified nextToken is invalid.');
  return { forward: match[1] === 'f', at };
}

function token(direction: 'f' | 'b', at: number): string {
  return `${direction}/${String(at).padStart(20, '0')}`;
}

export function cloudWatchLogsOperations(
  streams: LocalLogStreams,
  fault?: (operation: string) => boolean,
): Record<string, (body: Body) => Body> {
  return {
    GetLogEvents: (body) => {
      if (fault?.('GetLogEvents'))
        throw new LocalApiError('ServiceUnavailableException', 'The service cannot complete the request.', 500);
      const group = groupOf(body);
      const stream = body.logStreamName;
      if (typeof stream !== 'string' || stream === '' || /[:*]/.test(stream))
        throw invalid(`1 validation error detected: Value at 'logStreamName' failed to satisfy constraint`);
      const limit = optionalNumber(body, 'limit', 1, MAX_EVENTS) ?? MAX_EVENTS;
      const startTime = optionalNumber(body, 'startTime', 0);
      const endTime = optionalNumber(body, 'endTime', 0);
      if (!streams.hasGroup(group))
        throw new LocalApiError('ResourceNotFoundException', 'The specified log group does not exist.');
      const all = streams.events(group, stream);
      if (!all) throw new LocalApiError('ResourceNotFoundException', 'The specified log stream does not exist.');
      const events = all.filter(
        (e) =>
          (startTime === undefined || e.timestamp >= startTime) && (endTime === undefined || e.timestamp < endTime),
      );
      const position = parseToken(body.nextToken, events.length);
      let from: number;
      let to: number;
      if (position?.forward) [from, to] = [position.at, Math.min(events.length, position.at + limit)];
      else if (position) [from, to] = [Math.max(0, position.at - limit), position.at];
      else if (body.startFromHead === true) [from, to] = [0, Math.min(events.length, limit)];
      else [from, to] = [Math.max(0, events.length - limit), events.length];
      return {
        events: events
          .slice(from, to)
          .map((e) => ({ timestamp: e.timestamp, message: e.message, ingestionTime: e.timestamp })),
        nextForwardToken: token('f', to),
        nextBackwardToken: token('b', from),
      };
    },
  };
}
