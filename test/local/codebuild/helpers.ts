import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, chmodSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { S3Client } from '@aws-sdk/client-s3';
import {
  BuildFailedError,
  BuildRegistry,
  runBuild,
  type Build,
  type BuildRequest,
  type RunnerDeps,
} from '../../../local/codebuild';

export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `stepdeploy-cb-${prefix}-`));
}

export function removeDir(dir: string): void {
  try {
    rmSync(dir, { recursive: true, force: true });
  } catch (err) {
    // Node's rm walks full paths, and a checkout can hold a path longer than PATH_MAX under
    // the build folder; coreutils' rm walks relative to each folder.
    if ((err as NodeJS.ErrnoException).code !== 'ENAMETOOLONG') throw err;
    execFileSync('rm', ['-rf', '--', dir]);
  }
}

/** Deps for builds that touch no S3: a client that would fail fast if used. */
export function depsFor(root: string, extra: Partial<RunnerDeps> = {}): RunnerDeps & { lines: string[] } {
  const lines: string[] = [];
  return {
    s3: new S3Client({
      region: 'eu-west-1',
      endpoint: 'http://127.0.0.1:9',
      credentials: { accessKeyId: 'x', secretAccessKey: 'x' },
    }),
    root,
    registry: new BuildRegistry(root),
    onLog: (line) => lines.push(line),
    lines,
    ...extra,
  };
}

export function request(buildspec: string, overrides: Partial<BuildRequest> = {}): BuildRequest {
  const project = overrides.project ?? { name: 'test-project', buildspec };
  return { ProjectName: project.name, project, ...overrides };
}

/** Runs a build that is expected to end in any status; returns the Build either way. */
export async function settle(req: BuildRequest, deps: RunnerDeps): Promise<Build> {
  try {
    return (await runBuild(req, deps)).Build;
  } catch (error) {
    if (error instanceof BuildFailedError) return error.build;
    throw error;
  }
}

export function phaseStatuses(build: Build): string[] {
  return build.Phases.map((p) => `${p.PhaseType}:${p.PhaseStatus ?? '-'}`);
}

/** Output lines of the build (not the runner's [Container] lines). */
export function outputLines(lines: ReadonlyArray<string>): string[] {
  return lines.filter((l) => !l.startsWith('[Container]'));
}

export function git(cwd: string, ...args: string[]): string {
  return execFileSync('git', args, {
    cwd,
    encoding: 'utf8',
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: cwd,
      GIT_CONFIG_NOSYSTEM: '1',
      GIT_CONFIG_GLOBAL: '/dev/null',
      GIT_AUTHOR_NAME: 'test',
      GIT_AUTHOR_EMAIL: 'test@example.com',
      GIT_COMMITTER_NAME: 'test',
      GIT_COMMITTER_EMAIL: 'test@example.com',
    },
  }).trim();
}

/** A repository with `main` and `develop`, each with its own marker file; returns each tip. */
export function makeRepo(dir: string): { main: string; develop: string } {
  mkdirSync(dir, { recursive: true });
  git(dir, '-c', 'init.defaultBranch=main', 'init', '-q');
  writeFile(join(dir, 'README.md'), 'main\n');
  writeFile(join(dir, 'bin/run.sh'), '#!/bin/sh\necho run\n', 0o755);
  git(dir, 'add', '-A');
  git(dir, 'commit', '-q', '-m', 'main');
  const main = git(dir, 'rev-parse', 'HEAD');
  git(dir, 'checkout', '-q', '-b', 'develop');
  writeFile(join(dir, 'develop.txt'), 'develop\n');
  git(dir, 'add', '-A');
  git(dir, 'commit', '-q', '-m', 'develop');
  const develop = git(dir, 'rev-parse', 'HEAD');
  git(dir, 'checkout', '-q', 'main');
  return { main, develop };
}

export function writeFile(path: string, content: string, mode?: number): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, content);
  if (mode !== undefined) chmodSync(path, mode);
}
