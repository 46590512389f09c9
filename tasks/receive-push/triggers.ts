import { realpathSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { branchMatches } from '../../shared/branch-name';
import { resolveRepository, sourceTypeOf, type PipelineConfig, type SourceType } from '../../shared/config';
import type { BranchPush, Provider } from './push';

/** The source types each provider's events may stand for; the local git hook posts GitHub-style events. */
const SOURCE_TYPES_OF: Readonly<Record<Provider, ReadonlySet<SourceType>>> = {
  github: new Set(['GITHUB', 'GITHUB_ENTERPRISE', 'LOCAL_GIT']),
  gitlab: new Set(['GITLAB', 'GITLAB_SELF_MANAGED', 'LOCAL_GIT']),
  bitbucket: new Set(['BITBUCKET', 'LOCAL_GIT']),
  codecommit: new Set(['CODECOMMIT']),
};

/**
 * One repository, however it is written: `https://github.com/Acme/App.git`, `git@github.com:acme/app`
 * and `https://github.com/acme/app/` are the same; a local path is compared by its real path.
 */
export function repositoryKey(url: string): string {
  const scp = /^(?:[\w.-]+@)?([\w.-]+):(?!\/\/)(.+)$/.exec(url);
  if (scp !== null && !isAbsolute(url)) return normalizedRemote(scp[1]!, scp[2]!);
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(url)) {
    try {
      const parsed = new URL(url);
      return normalizedRemote(parsed.hostname, parsed.pathname);
    } catch {
      return url;
    }
  }
  try {
    return `file:${realpathSync.native(url)}`;
  } catch {
    return `file:${resolve(url)}`;
  }
}

function normalizedRemote(host: string, path: string): string {
  const trimmed = path
    .replace(/^\/+/, '')
    .replace(/\/+$/, '')
    .replace(/\.git$/i, '');
  return `${host.toLowerCase()}/${trimmed.toLowerCase()}`;
}

/** The configured sources a push is for: same repository, a source type the provider serves. */
export function sourcesOf(push: BranchPush, provider: Provider, config: PipelineConfig, configPath: string): string[] {
  const pushed = new Set(push.repositoryUrls.map(repositoryKey));
  return Object.entries(config.sources)
    .filter(([, source]) => {
      let type: SourceType;
      try {
        type = sourceTypeOf(source);
      } catch {
        return false;
      }
      return SOURCE_TYPES_OF[provider].has(type) && pushed.has(repositoryKey(resolveRepository(source, configPath)));
    })
    .map(([name]) => name);
}

/** The environments whose triggers take a push of `branch` to `source`. */
export function triggeredEnvironments(config: PipelineConfig, source: string, branch: string): string[] {
  return Object.entries(config.environments)
    .filter(([, environment]) =>
      environment.triggers.some(
        (trigger) =>
          trigger.source === source &&
          trigger.branches.some((pattern) => branchMatches(pattern, branch)) &&
          !trigger.exclude.some((pattern) => branchMatches(pattern, branch)),
      ),
    )
    .map(([name]) => name);
}
