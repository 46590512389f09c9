import { BatchGetBuildsCommand, type Build } from '@aws-sdk/client-codebuild';
import type { HistoryEvent } from '@aws-sdk/client-sfn';
import { allStates } from '../../workflows/definition';
import { BuildLogReader, logText, type BuildLogLine } from '../build-logs';
import { usageError } from '../errors';
import { ExitCode } from '../exit-codes';
import { executionNameOf } from '../execution-ref';
import {
  eventsAfter,
  executionDefinition,
  fullHistory,
  isTerminal,
  projectStates,
  sleep,
  toGraphEvents,
} from '../follow';
import { ExecutionGraph } from '../graph';
import { println, type Io } from '../io';
import type { Target } from '../target';

/**
 * `logs`: the build log of each CodeBuild step of an execution. The builds come from the
 * history (TaskSubmitted / TaskSucceeded / a failed build's cause); BatchGetBuilds names each
 * one's CloudWatch Logs group and stream, read with GetLogEvents: on AWS, and on the local
 * runtime, whose endpoint answers GetLogEvents from its build logs. `--follow` goes on reading
 * while the execution runs: new builds as the history names them, new lines as builds write them.
 */

export interface LogsOptions {
  readonly state?: string;
  readonly json?: boolean;
  readonly follow?: boolean;
  /** Seconds between reads with --follow. @default the target's poll interval */
  readonly interval?: number;
  /** Ends --follow early (Ctrl-C). */
  readonly signal?: AbortSignal;
}

interface ExecutionBuild {
  readonly id: string;
  /** Top-level state. */
  readonly state: string;
  /** Map iteration label, when the build ran in one. */
  readonly label?: string;
}

export async function runLogs(target: Target, executionArn: string, options: LogsOptions, io: Io): Promise<ExitCode> {
  const definition = await executionDefinition(target, executionArn);
  const graph = new ExecutionGraph(definition);
  let lastId = 0;
  const apply = (events: HistoryEvent[]): void => {
    graph.apply(toGraphEvents(events));
    lastId = events.reduce((max, e) => Math.max(max, e.id ?? 0), lastId);
  };
  apply(await fullHistory(target, executionArn));
  const refresh = async (): Promise<void> => apply(await eventsAfter(target, executionArn, lastId));
  const projects = projectStates(definition);
  let top: string | undefined;
  if (options.state !== undefined) {
    top = topLevelOf(definition, options.state);
    // The .sync CodeBuild states, and any other state whose task started a build (Deploy).
    const withBuilds = [...new Set([...projects.values(), ...graph.builds.map((b) => b.state)])];
    if (top === undefined || !withBuilds.includes(top)) {
      throw usageError(
        `--state ${JSON.stringify(options.state)} is not a state that runs a CodeBuild build; one of: ${withBuilds.join(', ')}`,
      );
    }
  }
  const selected = (): ExecutionBuild[] =>
    graph.builds
      .filter((b) => top === undefined || b.state === top)
      .map((b) => ({ id: b.id, state: b.state, label: b.iteration?.label }));
  if (options.follow) return followLogs(target, graph, { ...options, selected, refresh }, io);

  const refs = selected();
  const builds = await batchGet(
    target,
    refs.map((r) => r.id),
  );
  const logs = new Map<string, BuildLogLine[] | undefined>();
  for (const ref of refs) logs.set(ref.id, await BuildLogReader.of(target.logs, builds.get(ref.id))?.read());
  if (options.json) {
    println(
      io,
      JSON.stringify(
        refs.map((r) => jsonOf(r, builds.get(r.id), logs.get(r.id))),
        null,
        2,
      ),
    );
    return ExitCode.Ok;
  }
  if (refs.length === 0) {
    println(
      io,
      `no CodeBuild builds${options.state ? ` for ${options.state}` : ''} in ${executionNameOf(executionArn)} (yet)`,
    );
    return ExitCode.Ok;
  }
  for (const ref of refs) printBuild(ref, builds.get(ref.id), logs.get(ref.id), io);
  return ExitCode.Ok;
}

interface Followed {
  readonly ref: ExecutionBuild;
  readonly reader?: BuildLogReader;
  /** Set once a read after the build ended has taken its last lines. */
  drained: boolean;
}

/** Reads every selected build's new lines until the execution and its builds have ended. */
async function followLogs(
  target: Target,
  graph: ExecutionGraph,
  options: LogsOptions & { selected: () => ExecutionBuild[]; refresh: () => Promise<void> },
  io: Io,
): Promise<ExitCode> {
  const followed = new Map<string, Followed>();
  let lastHeader: string | undefined;
  const pollMs = options.interval !== undefined ? options.interval * 1000 : target.pollMs;
  for (;;) {
    const ended = isTerminal(graph.status);
    const open = options.selected().filter((r) => !followed.get(r.id)?.drained);
    const builds = await batchGet(
      target,
      open.map((r) => r.id),
    );
    for (const ref of open) {
      const build = builds.get(ref.id);
      let entry = followed.get(ref.id);
      if (!entry?.reader) {
        entry = { ref, reader: BuildLogReader.of(target.logs, build), drained: false };
        followed.set(ref.id, entry);
      }
      // Read after BatchGetBuilds said it ended: what is read now is all there is.
      const complete = build === undefined || build.buildComplete === true;
      const lines = (await entry.reader?.read(options.signal)) ?? [];
      entry.drained = complete;
      if (lines.length === 0) continue;
      if (options.json) {
        for (const line of lines)
          println(io, JSON.stringify({ state: ref.state, iteration: ref.label, buildId: ref.id, ...line }));
        continue;
      }
      const header = headerOf(ref, build);
      if (header !== lastHeader) println(io, header);
      lastHeader = header;
      for (const line of lines) println(io, line.message);
    }
    if ((ended && [...followed.values()].every((f) => f.drained)) || options.signal?.aborted) return ExitCode.Ok;
    await sleep(pollMs, options.signal);
    await options.refresh();
  }
}

function headerOf(ref: ExecutionBuild, build: Build | undefined): string {
  const label = ref.label ? ` (${ref.label})` : '';
  return `== ${ref.state}${label}: build ${ref.id} ${build?.buildStatus ?? 'not found'} ==`;
}

/** A state name, inner (FetchSource) or top-level (FetchSources), as its top-level state. */
function topLevelOf(definition: Parameters<typeof allStates>[0], name: string): string | undefined {
  const found = allStates(definition).find((s) => s.name === name);
  return found ? (found.parents[0] ?? found.name) : undefined;
}

async function batchGet(target: Target, ids: ReadonlyArray<string>): Promise<Map<string, Build>> {
  const byId = new Map<string, Build>();
  for (let i = 0; i < ids.length; i += 100) {
    const { builds } = await target.codebuild.send(new BatchGetBuildsCommand({ ids: ids.slice(i, i + 100) }));
    for (const build of builds ?? []) if (build.id) byId.set(build.id, build);
  }
  return byId;
}

function jsonOf(
  ref: ExecutionBuild,
  build: Build | undefined,
  lines: ReadonlyArray<BuildLogLine> | undefined,
): Record<string, unknown> {
  return {
    state: ref.state,
    ...(ref.label ? { iteration: ref.label } : {}),
    buildId: ref.id,
    status: build?.buildStatus,
    phase: build?.currentPhase,
    logGroup: build?.logs?.groupName,
    logStream: build?.logs?.streamName,
    deepLink: build?.logs?.deepLink,
    ...(lines ? { log: logText(lines) } : {}),
  };
}

function printBuild(
  ref: ExecutionBuild,
  build: Build | undefined,
  lines: ReadonlyArray<BuildLogLine> | undefined,
  io: Io,
): void {
  println(io, headerOf(ref, build));
  if (!build) {
    println(io, 'CodeBuild does not know this build (builds are kept for a year on AWS)');
    return;
  }
  if (lines === undefined) {
    println(io, 'this build has no CloudWatch Logs stream (its project does not log to CloudWatch Logs)');
    return;
  }
  if (lines.length === 0) println(io, 'this build has no log (yet)');
  for (const line of lines) println(io, line.message);
}
