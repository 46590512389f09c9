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
      const location = resolveRepository(source, configPath);
      const path = location.startsWith('file://') ? fileURLToPath(location) : location;
      const setting = `sources.${name}.repository ${JSON.stringify(source.repository)} in ${configPath}`;
      const fix =
        'set it to a git repository on this machine (a clone: `git clone <url> <path>`; a relative path is relative to the config file) or to the repository URL';
      if (!existsSync(path) || !statSync(path).isDirectory()) {
        throw new ConfigError(`${setting}: no folder at ${path}; ${fix}`);
      }
      // What the fetch itself runs against the path (git's upload-pack), so the answer is git's:
      // a subfolder of some other repository's work tree is not a repository for it either.
      const failure = await gitFails(['ls-remote', '--heads', '--', path]);
      if (failure !== undefined)
        throw new ConfigError(`${setting}: ${path} is not a git repository (${failure}); ${fix}`);
    }),
  );
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
