import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { BatchGetBuildsCommand, type Build } from '@aws-sdk/client-codebuild';
import { allStates } from '../../workflows/definition';
import { usageError } from '../errors';
import { ExitCode } from '../exit-codes';
import { executionNameOf } from '../execution-ref';
import { executionDefinition, fullHistory, projectStates, toGraphEvents } from '../follow';
import { ExecutionGraph } from '../graph';
import { println, type Io } from '../io';
import type { Target } from '../target';

/**
 * `logs`: the build log of each CodeBuild step of an execution. The builds come from the
 * history (TaskSubmitted / TaskSucceeded / a failed build's cause); BatchGetBuilds tells where each
 * log is. A local build's log is a file (its deep link is a file:// URL) and is printed; on AWS the
 * log is in CloudWatch Logs, and this CLI has no CloudWatch Logs client: it prints the link and
 * the group/stream for `aws logs tail`.
 */

export interface LogsOptions {
  readonly state?: string;
  readonly json?: boolean;
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
  graph.apply(toGraphEvents(await fullHistory(target, executionArn)));
  const projects = projectStates(definition);

  const refs: ExecutionBuild[] = graph.builds.map((b) => ({ id: b.id, state: b.state, label: b.iteration?.label }));
  let selected = refs;
  if (options.state !== undefined) {
    const top = topLevelOf(definition, options.state);
    // The .sync CodeBuild states, and any other state whose task started a build (Deploy).
    const withBuilds = [...new Set([...projects.values(), ...refs.map((r) => r.state)])];
    if (top === undefined || !withBuilds.includes(top)) {
      throw usageError(
        `--state ${JSON.stringify(options.state)} is not a state that runs a CodeBuild build; one of: ${withBuilds.join(', ')}`,
      );
    }
    selected = refs.filter((r) => r.state === top);
  }
  const builds = await batchGet(
    target,
    selected.map((r) => r.id),
  );
  if (options.json) {
    println(
      io,
      JSON.stringify(
        selected.map((r) => jsonOf(r, builds.get(r.id))),
        null,
        2,
      ),
    );
    return ExitCode.Ok;
  }
  if (selected.length === 0) {
    println(
      io,
      `no CodeBuild builds${options.state ? ` for ${options.state}` : ''} in ${executionNameOf(executionArn)} (yet)`,
    );
    return ExitCode.Ok;
  }
  for (const ref of selected) printBuild(ref, builds.get(ref.id), io);
  return ExitCode.Ok;
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

function localLogFile(build: Build | undefined): string | undefined {
  const link = build?.logs?.deepLink;
  if (!link?.startsWith('file:')) return undefined;
  const file = fileURLToPath(link);
  return existsSync(file) ? file : undefined;
}

function jsonOf(ref: ExecutionBuild, build: Build | undefined): Record<string, unknown> {
  const file = localLogFile(build);
  return {
    state: ref.state,
    ...(ref.label ? { iteration: ref.label } : {}),
    buildId: ref.id,
    status: build?.buildStatus,
    phase: build?.currentPhase,
    logGroup: build?.logs?.groupName,
    logStream: build?.logs?.streamName,
    deepLink: build?.logs?.deepLink,
    ...(file ? { log: readFileSync(file, 'utf8') } : {}),
  };
}

function printBuild(ref: ExecutionBuild, build: Build | undefined, io: Io): void {
  const label = ref.label ? ` (${ref.label})` : '';
  println(io, `== ${ref.state}${label}: build ${ref.id} ${build?.buildStatus ?? 'not found'} ==`);
  if (!build) {
    println(io, 'CodeBuild does not know this build (builds are kept for a year on AWS)');
    return;
  }
  const file = localLogFile(build);
  if (file) {
    io.out(readFileSync(file, 'utf8'));
    return;
  }
  const { groupName, streamName, deepLink } = build.logs ?? {};
  if (deepLink) println(io, `log: ${deepLink}`);
  if (groupName && streamName) {
    println(io, `CloudWatch Logs group ${groupName}, stream ${streamName}`);
    println(
      io,
      `  (stepdeploy has no CloudWatch Logs client; read it with: aws logs tail ${groupName} --log-stream-names ${streamName})`,
    );
  }
  if (!deepLink && !groupName) println(io, 'this build has no log (yet)');
}
