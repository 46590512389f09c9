import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ResourceNotFoundException } from './errors';
import type { Build } from './types';

/**
 * Every local build by id, persisted as `<root>/builds/<dir>/build.json` (dir = the id with its
 * `:` replaced, which paths and PATH-like variables do not like), so BatchGetBuilds answers after
 * a restart too. Running builds can be stopped through it.
 */
export class BuildRegistry {
  private readonly builds = new Map<string, Build>();
  private readonly running = new Map<string, () => void>();

  constructor(readonly root: string) {}

  buildDir(id: string): string {
    return join(this.root, 'builds', id.replace(/:/g, '-'));
  }

  save(build: Build): void {
    this.builds.set(build.Id, build);
    const dir = this.buildDir(build.Id);
    mkdirSync(dir, { recursive: true });
    const tmp = join(dir, 'build.json.tmp');
    writeFileSync(tmp, `${JSON.stringify(build, null, 2)}\n`);
    renameSync(tmp, join(dir, 'build.json'));
  }

  get(id: string): Build | undefined {
    const known = this.builds.get(id);
    if (known) return known;
    const file = join(this.buildDir(id), 'build.json');
    if (!existsSync(file)) return undefined;
    const build = JSON.parse(readFileSync(file, 'utf8')) as Build;
    return build.Id === id ? build : undefined;
  }

  /** BatchGetBuilds: ids may be build ids or build ARNs. */
  batchGetBuilds(ids: ReadonlyArray<string>): { builds: Build[]; buildsNotFound: string[] } {
    const builds: Build[] = [];
    const buildsNotFound: string[] = [];
    for (const id of ids) {
      const build = this.get(id.replace(/^arn:aws:codebuild:[^:]*:[^:]*:build\//, ''));
      if (build) builds.push(build);
      else buildsNotFound.push(id);
    }
    return { builds, buildsNotFound };
  }

  /**
   * The next build number of a project (1, 2, …), kept across restarts. One file per project:
   * runtimes of two pipelines in one folder write their counters side by side, and a shared file
   * would lose one's update to the other's.
   */
  nextBuildNumber(project: string): number {
    const next = this.lastBuildNumber(project) + 1;
    mkdirSync(join(this.root, 'builds', 'build-numbers'), { recursive: true });
    writeFileSync(this.buildNumberFile(project), `${next}\n`);
    return next;
  }

  /** How many builds the project has had (0 before its first). */
  lastBuildNumber(project: string): number {
    const file = this.buildNumberFile(project);
    return existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as number) : this.legacyBuildNumber(project);
  }

  private buildNumberFile(project: string): string {
    return join(this.root, 'builds', 'build-numbers', `${project}.json`);
  }

  /** The counter of the single file used before (`builds/build-numbers.json`), so numbers go on rising. */
  private legacyBuildNumber(project: string): number {
    const file = join(this.root, 'builds', 'build-numbers.json');
    if (!existsSync(file)) return 0;
    return (JSON.parse(readFileSync(file, 'utf8')) as Record<string, number>)[project] ?? 0;
  }

  markRunning(id: string, stop: () => void): void {
    this.running.set(id, stop);
  }

  markDone(id: string): void {
    this.running.delete(id);
  }

  /** StopBuild: the build ends STOPPED; a finished build is returned as it is, as CodeBuild does. */
  stopBuild(id: string): Build {
    const build = this.get(id);
    if (!build) throw new ResourceNotFoundException(`build ${id} does not exist`);
    this.running.get(id)?.();
    return build;
  }
}
