import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, sep } from 'node:path';
import { resolveRepository, sourceTypeOf, type PipelineConfig } from '../shared/config';
import { ConfigError } from '../shared/errors';

/**
 * Turns `examples/<repo>/` into a bare git repository with branches main, develop and
 * feature/cloudformationchange (each other branch = main + `examples/overlays/<repo>/<branch>/`).
 * Fixed author and dates make the commit ids the same on every machine.
 */

/** In a clone of stepdeploy only: the npm package does not ship examples/ (README, "The package"). */
export const EXAMPLES_DIR = join(__dirname, '..', 'examples');
export const EXAMPLE_REPOS = ['app', 'config'] as const;
export const EXAMPLE_BRANCHES = ['main', 'develop', 'feature/cloudformationchange'] as const;

const IDENTITY = {
  GIT_AUTHOR_NAME: 'stepdeploy example',
  GIT_AUTHOR_EMAIL: 'example@stepdeploy.invalid',
  GIT_COMMITTER_NAME: 'stepdeploy example',
  GIT_COMMITTER_EMAIL: 'example@stepdeploy.invalid',
};

function git(cwd: string, args: string[], date?: string): string {
  return execFileSync('git', args, {
    cwd,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      ...process.env,
      ...IDENTITY,
      ...(date ? { GIT_AUTHOR_DATE: date, GIT_COMMITTER_DATE: date } : {}),
      GIT_CONFIG_NOSYSTEM: '1',
      GIT_CONFIG_GLOBAL: '/dev/null',
    },
  });
}

function makeRepository(repo: string, destination: string, examples: string): void {
  const work = mkdtempSync(join(tmpdir(), `stepdeploy-example-${repo}-`));
  try {
    git(work, ['init', '--quiet', '--initial-branch=main']);
    cpSync(join(examples, repo), work, { recursive: true });
    git(work, ['add', '--all']);
    git(work, ['commit', '--quiet', '-m', `${repo}: initial version`], '2026-11-01T10:00:00Z');
    EXAMPLE_BRANCHES.filter((b) => b !== 'main').forEach((branch, i) => {
      git(work, ['checkout', '--quiet', '-b', branch, 'main']);
      const overlay = join(examples, 'overlays', repo, branch);
      if (existsSync(overlay)) cpSync(overlay, work, { recursive: true });
      git(work, ['add', '--all']);
      git(
        work,
        ['commit', '--quiet', '--allow-empty', '-m', `${repo}: work on ${branch}`],
        `2026-11-0${2 + i}T10:00:00Z`,
      );
    });
    const bare = `${destination}.tmp-${process.pid}`;
    rmSync(bare, { recursive: true, force: true });
    git(tmpdir(), ['clone', '--quiet', '--bare', work, bare]);
    git(bare, ['symbolic-ref', 'HEAD', 'refs/heads/main']);
    renameSync(bare, destination);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** Creates the example repositories under `<directory>/<repo>.git` unless they exist. */
export function ensureExampleRepositories(directory: string, examples: string = EXAMPLES_DIR): string[] {
  mkdirSync(directory, { recursive: true });
  const created: string[] = [];
  for (const repo of EXAMPLE_REPOS) {
    const destination = join(directory, `${repo}.git`);
    if (existsSync(destination)) continue;
    makeRepository(repo, destination, examples);
    created.push(destination);
  }
  return created;
}

/**
 * The example config's sources are local repositories under `<home>/example-repos`: make them on
 * first run, from `examples` (the examples/ folder of a clone of stepdeploy). A config copied from
 * this repository into a project that installed the package names them too, but the package has
 * no examples/ to make them from: that is an error naming the setting and the fix, not git's ENOENT.
 */
export function prepareExampleRepositories(
  config: PipelineConfig,
  configPath: string,
  home: string,
  examples: string = EXAMPLES_DIR,
): string[] {
  const exampleRepos = join(home, 'example-repos');
  const missing = Object.entries(config.sources).filter(([, source]) => {
    if (sourceTypeOf(source) !== 'LOCAL_GIT') return false;
    const path = resolveRepository(source, configPath);
    return path.startsWith(exampleRepos + sep) && !existsSync(path);
  });
  if (missing.length === 0) return [];
  if (!existsSync(examples)) {
    const [name, source] = missing[0]!;
    throw new ConfigError(
      `sources.${name}.repository ${JSON.stringify(source.repository)} in ${configPath} names a repository of stepdeploy's bundled example (${resolveRepository(source, configPath)}), which only a clone of the stepdeploy repository can make (from its examples/ folder, not in the npm package); ` +
        `write a config for your own repositories with \`npx stepdeploy init\`, or set each source's repository to your clone (a path relative to the config file) or its URL`,
    );
  }
  return ensureExampleRepositories(exampleRepos, examples);
}
