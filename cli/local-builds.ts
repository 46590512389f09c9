import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

/**
 * The local runtime's builds of one execution, read from `.stepdeploy/builds/<dir>/build.json`
 * (Initiator `states/<execution name>`). Needed because the local history does not carry the
 * build id of a running or succeeded build the way AWS's TaskSubmitted/TaskSucceeded do; only
 * ids are taken from here: the builds themselves are read through BatchGetBuilds like on AWS.
 */

export interface LocalBuildRef {
  readonly id: string;
  readonly projectName: string;
  readonly startTime: number;
  readonly inProgress: boolean;
}

interface StoredBuild {
  readonly Id?: string;
  readonly ProjectName?: string;
  readonly Initiator?: string;
  readonly StartTime?: number;
  readonly BuildStatus?: string;
}

/** Builds of the execution, oldest first; only folders touched since `since` (epoch ms) are read. */
export function localBuildsOf(home: string, executionName: string, since = 0): LocalBuildRef[] {
  const root = join(home, 'builds');
  if (!existsSync(root)) return [];
  const found: LocalBuildRef[] = [];
  for (const entry of readdirSync(root, { withFileTypes: true })) {
    if (!entry.isDirectory()) continue;
    const file = join(root, entry.name, 'build.json');
    try {
      if (statSync(file).mtimeMs < since) continue;
      const build = JSON.parse(readFileSync(file, 'utf8')) as StoredBuild;
      if (build.Initiator !== `states/${executionName}` || !build.Id) continue;
      found.push({ id: build.Id, projectName: build.ProjectName ?? '', startTime: build.StartTime ?? 0, inProgress: build.BuildStatus === 'IN_PROGRESS' });
    } catch {
      // a build folder without build.json (yet): not a build to show
    }
  }
  return found.sort((a, b) => a.startTime - b.startTime);
}
