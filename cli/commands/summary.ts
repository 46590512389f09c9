import { DescribeExecutionCommand } from '@aws-sdk/client-sfn';
import type { CombineSourcesResult, FetchedSource } from '../../shared/contracts';
import { executionNameOf } from '../execution-ref';
import { durationOf, formatDuration } from '../graph';
import { println, type Io } from '../io';
import type { Target } from '../target';

/** The parts of the execution's output (its last state's) that the summary shows. */
interface ExecutionOutput {
  readonly fetched?: ReadonlyArray<FetchedSource>;
  readonly artifact?: Pick<CombineSourcesResult, 'key' | 'location' | 'buildPath'>;
  readonly record?: { readonly currentKey: string };
}

function parseOutput(output: string | undefined): ExecutionOutput {
  if (output === undefined) return {};
  try {
    return JSON.parse(output) as ExecutionOutput;
  } catch {
    return {};
  }
}

/**
 * After a waited `start` or `redrive`: what the execution deployed — each source's branch and
 * commit and whether an earlier execution's snapshot was reused, the artifacts, the deployment
 * record — from DescribeExecution's output, so that it reads the same on AWS and locally.
 */
export async function printSummary(target: Target, executionArn: string, io: Io): Promise<void> {
  const execution = await target.sfn.send(new DescribeExecutionCommand({ executionArn }));
  const out = parseOutput(execution.output);
  const took = formatDuration(
    durationOf({ startedAt: execution.startDate?.getTime(), endedAt: execution.stopDate?.getTime() }),
  );
  println(io);
  println(
    io,
    `execution ${executionNameOf(executionArn)}: ${execution.status ?? 'UNKNOWN'}${took ? ` in ${took}` : ''}`,
  );
  if (out.fetched?.length) {
    println(io, 'sources:');
    for (const source of out.fetched) {
      const reused = source.fetchBuildId === null ? '  (already stored: same commit as an earlier run)' : '';
      println(
        io,
        `  ${source.name.padEnd(10)} ${source.branch} @ ${source.commit.slice(0, 12)}  ${source.snapshotKey}${reused}`,
      );
    }
  }
  if (out.artifact) {
    // The location is "<bucket>/<key>": the bucket is known even where the CLI was not told it (AWS).
    const bucket = out.artifact.location.slice(0, -out.artifact.key.length - 1);
    println(io, 'artifacts:');
    println(io, `  s3://${bucket}/${out.artifact.key}`);
    println(io, `  s3://${bucket}/${out.artifact.buildPath}/build.zip`);
    if (out.record) println(io, `deployment record: s3://${bucket}/${out.record.currentKey}`);
  }
  if (target.home) println(io, `local data: ${target.home}`);
}
