import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, sep } from 'node:path';
import { resolveRepository, sourceTypeOf, type PipelineConfig } from '../shared/config';

/**
 * Turns `examples/<repo>/` into a bare git repository with branches main, develop and
 * feature/cloudformationchange (each other branch = main + `examples/overlays/<repo>/<branch>/`).
 * Fixed author and dates make the commit ids the same on every machine.
 */

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

function makeRepository(repo: string, destination: string): void {
  const work = mkdtempSync(join(tmpdir(), `stepdeploy-example-${repo}-`));
  try {
    git(work, ['init', '--quiet', '--initial-branch=main']);
    cpSync(join(EXAMPLES_DIR, repo), work, { recursive: true });
    git(work, ['add', '--all']);
    git(work, ['commit', '--quiet', '-m', `${repo}: initial version`], '2026-11-01T10:00:00Z');
    EXAMPLE_BRANCHES.filter((b) => b !== 'main').forEach((branch, i) => {
      git(work, ['checkout', '--quiet', '-b', branch, 'main']);
      const overlay = join(EXAMPLES_DIR, 'overlays', repo, branch);
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
export function ensureExampleRepositories(directory: string): string[] {
  mkdirSync(directory, { recursive: true });
  const created: string[] = [];
  for (const repo of EXAMPLE_REPOS) {
    const destination = join(directory, `${repo}.git`);
    if (existsSync(destination)) continue;
    makeRepository(repo, destination);
    created.push(destination);
  }
  return created;
}

/** The example config's sources are local repositories under `<home>/example-repos`: make them on first run. */
export function prepareExampleRepositories(config: PipelineConfig, configPath: string, home: string): string[] {
  const examples = join(home, 'example-repos');
  const missing = Object.values(config.sources).some((source) => {
    if (sourceTypeOf(source) !== 'LOCAL_GIT') return false;
    const path = resolveRepository(source, configPath);
    return path.startsWith(examples + sep) && !existsSync(path);
  });
  return missing ? ensureExampleRepositories(examples) : [];
}
