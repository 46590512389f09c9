import {
  type CloudWatchLogsClient,
  GetLogEventsCommand,
  type GetLogEventsCommandOutput,
  ResourceNotFoundException,
} from '@aws-sdk/client-cloudwatch-logs';
import type { Build } from '@aws-sdk/client-codebuild';

/**
 * A CodeBuild build's log read through CloudWatch Logs (GetLogEvents), on AWS and on the local
 * runtime alike: the build names its group and stream (BatchGetBuilds `logs`). Each read returns
 * what was written since the last one, so following a running build is calling `read()` again.
 */

export interface BuildLogLine {
  readonly timestamp: number;
  readonly message: string;
}

const MAX_PAGES_PER_READ = 100;

export class BuildLogReader {
  private token: string | undefined;

  constructor(
    private readonly logs: CloudWatchLogsClient,
    readonly group: string,
    readonly stream: string,
  ) {}

  /** A reader for the build's log, or undefined when the build names no CloudWatch stream (logs off). */
  static of(logs: CloudWatchLogsClient, build: Build | undefined): BuildLogReader | undefined {
    const { groupName, streamName } = build?.logs ?? {};
    return groupName && streamName ? new BuildLogReader(logs, groupName, streamName) : undefined;
  }

  /**
   * The lines written since the last read, oldest first. A stream that does not exist yet (the
   * build has not logged) reads as no lines; the next read tries again.
   */
  async read(signal?: AbortSignal): Promise<BuildLogLine[]> {
    const lines: BuildLogLine[] = [];
    // AWS may answer empty pages before the end: only a repeated token says "nothing more";
    // the bound keeps one read of a stream written faster than it is read finite.
    for (let pages = 0; pages < MAX_PAGES_PER_READ; pages++) {
      let page: GetLogEventsCommandOutput;
      try {
        page = await this.logs.send(
          new GetLogEventsCommand({
            logGroupName: this.group,
            logStreamName: this.stream,
            startFromHead: true,
            nextToken: this.token,
          }),
          { abortSignal: signal },
        );
      } catch (err) {
        if (err instanceof ResourceNotFoundException) return lines;
        throw err;
      }
      for (const e of page.events ?? []) lines.push({ timestamp: e.timestamp ?? 0, message: e.message ?? '' });
      const done = page.nextForwardToken === undefined || page.nextForwardToken === this.token;
      this.token = page.nextForwardToken ?? this.token;
      if (done) return lines;
    }
    return lines;
  }
}

/** The text of log lines as the build wrote it. */
export function logText(lines: ReadonlyArray<BuildLogLine>): string {
  return lines.map((l) => `${l.message}\n`).join('');
}
