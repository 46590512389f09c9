import { execFile } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { resolveRepository, sourceTypeOf, type PipelineConfig } from '../shared/config';
import { ConfigError } from '../shared/errors';

/**
 * The config's local repositories (a path, relative to the config file's folder, or a file:// URL:
 * the user's own clones), checked when the runtime starts: a path that is not a git repository
 * fails there, naming the source and the fix, rather than as a fetch build's git error in the
 * middle of a deployment.
 */
export async function checkLocalRepositories(config: PipelineConfig, configPath: string): Promise<void> {
  await Promise.all(
    Object.entries(config.sources).map(async ([name, source]) => {
      if (sourceTypeOf(source) !== 'LOCAL_GIT') return;
      const problem = await localRepositoryProblem(resolveRepository(source, configPath));
      if (problem !== undefined) {
        throw new ConfigError(
          `sources.${name}.repository ${JSON.stringify(source.repository)} in ${configPath}: ${problem}; ${LOCAL_REPOSITORY_FIX}`,
        );
      }
    }),
  );
}

export const LOCAL_REPOSITORY_FIX =
  'set it to a git repository on this machine (a clone: `git clone <url> <path>`; a relative path is relative to the config file) or to the repository URL';

/**
 * What is wrong with a local repository (an absolute path or a file:// URL) for the fetch: no
 * folder there, or git does not read it as a repository; undefined when nothing is. `init` asks
 * the same when it is given a path.
 */
export async function localRepositoryProblem(location: string): Promise<string | undefined> {
  let path: string;
  try {
    path = location.startsWith('file://') ? fileURLToPath(location) : location;
  } catch (err) {
    return `${location} is not a file:// URL of this machine (${(err as Error).message})`;
  }
  if (!existsSync(path) || !statSync(path).isDirectory()) return `no folder at ${path}`;
  // What the fetch itself runs against the path (git's upload-pack), so the answer is git's:
  // a subfolder of some other repository's work tree is not a repository for it either.
  const failure = await gitFails(['ls-remote', '--heads', '--', path]);
  return failure === undefined ? undefined : `${path} is not a git repository (${failure})`;
}

function gitFails(args: string[]): Promise<string | undefined> {
  return new Promise((resolve) => {
    execFile(
      'git',
      args,
      { timeout: 30_000, env: { ...process.env, GIT_TERMINAL_PROMPT: '0' }, maxBuffer: 16 * 1024 * 1024 },
      (error, _stdout, stderr) => {
        resolve(error ? (stderr.trim().split('\n')[0] ?? '') || error.message : undefined);
      },
    );
  });
}
