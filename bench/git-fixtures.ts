import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, mkdirSync, openSync, readdirSync, rmSync, statfsSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import type { ArtifactFile } from '../local/codebuild/artifacts';

/**
 * Generated git repositories for the benchmarks: a fixed author and date, random content (so
 * zip compression does what it does on real sources), committed on `main` and cloned bare, as
 * the local runtime expects a source repository.
 */

const IDENTITY = {
  GIT_AUTHOR_NAME: 'stepdeploy bench',
  GIT_AUTHOR_EMAIL: 'bench@stepdeploy.invalid',
  GIT_COMMITTER_NAME: 'stepdeploy bench',
  GIT_COMMITTER_EMAIL: 'bench@stepdeploy.invalid',
  GIT_AUTHOR_DATE: '2026-11-01T10:00:00Z',
  GIT_COMMITTER_DATE: '2026-11-01T10:00:00Z',
  GIT_CONFIG_NOSYSTEM: '1',
  GIT_CONFIG_GLOBAL: '/dev/null',
};

export function git(cwd: string, args: string[]): string {
  return execFileSync('git', args, {
    cwd,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...IDENTITY },
    maxBuffer: 64 * 1024 * 1024,
  });
}

/** Commits the working tree `work` on main and clones it bare to `<work>.git`; returns the bare path and the commit. */
export function commitAndCloneBare(work: string): { repository: string; commit: string } {
  git(work, ['init', '--quiet', '--initial-branch=main']);
  // Fast zlib for the loose objects: generating the fixture is not what is measured.
  git(work, ['-c', 'core.looseCompression=1', 'add', '--all']);
  git(work, ['commit', '--quiet', '-m', 'bench fixture']);
  const repository = `${work}.git`;
  rmSync(repository, { recursive: true, force: true });
  git(work, ['-c', 'pack.compression=1', 'clone', '--quiet', '--bare', '--no-local', work, repository]);
  return { repository, commit: git(repository, ['rev-parse', 'main']).trim() };
}

/** Text-like content: base64 of random bytes compresses to about 75%, as source text roughly does. */
function textFile(bytes: number): Buffer {
  const raw = randomBytes(Math.ceil((bytes * 3) / 4));
  const lines = raw.toString('base64').match(/.{1,76}/g) ?? [];
  return Buffer.from(lines.join('\n')).subarray(0, bytes);
}

export interface LargeSourceShape {
  /** Number of small text files. */
  readonly files: number;
  readonly fileBytes: number;
  /** One random binary file of this size (0 for none). */
  readonly bigFileBytes: number;
}

export function describeShape(shape: LargeSourceShape): string {
  const mb = (b: number): string => `${Math.round(b / 1024 / 1024)} MB`;
  return `${shape.files.toLocaleString('en-US')} files (${mb(shape.files * shape.fileBytes)}) + one ${mb(shape.bigFileBytes)} file`;
}

/** Writes the small files (100 per folder) and the big random file into `work`. */
export function writeLargeTree(work: string, shape: LargeSourceShape): void {
  mkdirSync(work, { recursive: true });
  for (let i = 0; i < shape.files; i++) {
    const dir = join(work, 'src', `d${String(Math.floor(i / 100)).padStart(4, '0')}`);
    if (i % 100 === 0) mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, `f${i}.txt`), textFile(shape.fileBytes));
  }
  if (shape.bigFileBytes > 0) {
    const fd = openSync(join(work, 'big.bin'), 'w');
    try {
      const chunk = 8 * 1024 * 1024;
      for (let left = shape.bigFileBytes; left > 0; left -= chunk) writeSync(fd, randomBytes(Math.min(chunk, left)));
    } finally {
      closeSync(fd);
    }
  }
}

/** A small repository from a map of path → content (executable when the path is under stepdeploy/ or bin/). */
export function writeSmallTree(work: string, files: Readonly<Record<string, string>>): void {
  for (const [path, content] of Object.entries(files)) {
    const file = join(work, path);
    mkdirSync(join(file, '..'), { recursive: true });
    writeFileSync(file, content, { mode: /^(stepdeploy|bin)\//.test(path) ? 0o755 : 0o644 });
  }
}

/** Every file under `root`, as the zip writers take them, in name order. */
export function listFiles(root: string): ArtifactFile[] {
  return readdirSync(root, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => {
      const path = join(entry.parentPath, entry.name);
      return { path, name: relative(root, path) };
    })
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** /dev/shm when it has twice `neededBytes` free, so the disk's writeback stays out of a figure; else the temp folder. */
export function scratchFolder(neededBytes: number): string {
  try {
    const fs = statfsSync('/dev/shm');
    if (fs.bavail * fs.bsize > 2 * neededBytes) return '/dev/shm';
  } catch {
    // No /dev/shm: the temp folder.
  }
  return tmpdir();
}
