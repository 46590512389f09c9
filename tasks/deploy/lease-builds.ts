import {
  BatchGetBuildsCommand,
  paginateListBuildsForProject,
  StopBuildCommand,
  type Build,
  type CodeBuildClient,
} from '@aws-sdk/client-codebuild';
import type { DeployLease } from './lease';

/** The deploy build's variable naming the take of the lease it belongs to (its fence checks it). */
export const LEASE_ID_VARIABLE = 'STEPDEPLOY_LEASE_ID';

export interface LeaseBuild {
  readonly id: string;
  readonly complete: boolean;
  /** When it ended (epoch ms), when CodeBuild says. */
  readonly endedAt?: number;
}

function leaseBuild(build: Build, id: string): LeaseBuild {
  const endedAt = build.endTime?.getTime();
  return { id, complete: build.buildComplete === true, ...(endedAt === undefined ? {} : { endedAt }) };
}

/**
 * Builds listed before one that started this long before the lease was taken are not looked at:
 * a build of the lease starts after it was taken (clocks of CodeBuild and Lambda may differ a little).
 */
const CLOCK_MARGIN_MS = 5 * 60 * 1000;

/** BatchGetBuilds takes at most 100 ids, as many as one page of ListBuildsForProject. */
const PAGE = 100;

function leaseIdOf(build: Build): string | undefined {
  return build.environment?.environmentVariables?.find((v) => v.name === LEASE_ID_VARIABLE)?.value;
}

/**
 * The deploy build of a take of the lease, running or not: the recorded one (BatchGetBuilds), or,
 * when none is recorded — the holder stopped between StartBuild and writing the id — the build
 * carrying its lease id, found among the project's builds, newest first (ListBuildsForProject, then
 * BatchGetBuilds), back to the time the lease was taken. Undefined when there is none.
 */
export async function findLeaseBuild(
  codebuild: CodeBuildClient,
  projectName: string,
  lease: DeployLease,
): Promise<LeaseBuild | undefined> {
  if (lease.buildId) {
    const { builds } = await codebuild.send(new BatchGetBuildsCommand({ ids: [lease.buildId] }));
    const build = builds?.[0];
    // A recorded build CodeBuild no longer knows holds nothing.
    return build ? leaseBuild(build, build.id ?? lease.buildId) : undefined;
  }
  if (!lease.leaseId) return undefined;
  const since = Date.parse(lease.acquiredAt) - CLOCK_MARGIN_MS;
  // No sortOrder: the default is newest first, and setting it fails on a project with more than 100 builds.
  for await (const page of paginateListBuildsForProject({ client: codebuild }, { projectName })) {
    const ids = page.ids ?? [];
    if (ids.length === 0) return undefined;
    const { builds = [] } = await codebuild.send(new BatchGetBuildsCommand({ ids: ids.slice(0, PAGE) }));
    const mine = builds.filter((b) => leaseIdOf(b) === lease.leaseId);
    // One build per take (the idempotency token); should there be more, a running one is what matters.
    const found = mine.find((b) => b.buildComplete !== true) ?? mine[0];
    if (found) return leaseBuild(found, found.id!);
    const oldest = Math.min(...builds.map((b) => b.startTime?.getTime() ?? Number.POSITIVE_INFINITY));
    if (oldest < since) return undefined;
  }
  return undefined;
}

/** StopBuild that logs instead of throwing: a build that already ended, or is gone, needs no stop. */
export async function stopQuietly(codebuild: CodeBuildClient, id: string): Promise<void> {
  try {
    await codebuild.send(new StopBuildCommand({ id }));
  } catch (err) {
    console.error(`could not stop build ${id}: ${(err as Error).name}: ${(err as Error).message}`);
  }
}
