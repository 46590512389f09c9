import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { InvalidInputException, ResourceNotFoundException } from './errors';
import type { Build } from './types';

/** How long CodeBuild keeps a StartBuild idempotencyToken. */
const IDEMPOTENCY_MS = 5 * 60 * 1000;

/**
 * Every local build by id, persisted as `<root>/builds/<dir>/build.json` (dir = the id with its
 * `:` replaced, which paths and PATH-like variables do not like), so BatchGetBuilds answers after
 * a restart too. Running builds can be stopped through it.
 */
export class BuildRegistry {
  private readonly builds = new Map<string, Build>();
  private readonly running = new Map<string, () => void>();
  private readonly tokens = new Map<string, { request: string; buildId: string; at: number }>();

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
   * ListBuildsForProject: the project's build ids by build number, newest first by default, 100 a
   * page (`nextToken` is opaque to callers). As CodeBuild documents, a sortOrder on a project with
   * more than 100 builds is an error.
   */
  listBuildsForProject(
    projectName: string,
    options: { sortOrder?: string; nextToken?: string } = {},
  ): { ids: string[]; nextToken?: string } {
    const dir = join(this.root, 'builds');
    const onDisk = existsSync(dir)
      ? readdirSync(dir)
          .filter((name) => name.startsWith(`${projectName}-`) && existsSync(join(dir, name, 'build.json')))
          .map((name) => JSON.parse(readFileSync(join(dir, name, 'build.json'), 'utf8')) as Build)
      : [];
    const byId = new Map<string, Build>(onDisk.filter((b) => b.ProjectName === projectName).map((b) => [b.Id, b]));
    for (const build of this.builds.values()) if (build.ProjectName === projectName) byId.set(build.Id, build);
    const builds = [...byId.values()];
    if (options.sortOrder !== undefined && builds.length > 100) {
      throw new InvalidInputException(`project ${projectName} has more than 100 builds: sortOrder cannot be set`);
    }
    builds.sort((a, b) =>
      options.sortOrder === 'ASCENDING' ? a.BuildNumber - b.BuildNumber : b.BuildNumber - a.BuildNumber,
    );
    const from = options.nextToken === undefined ? 0 : Number.parseInt(options.nextToken, 10);
    if (!Number.isInteger(from) || from < 0 || from > builds.length)
      throw new InvalidInputException(`nextToken is not valid: ${options.nextToken}`);
    const ids = builds.slice(from, from + 100).map((b) => b.Id);
    return { ids, ...(from + 100 < builds.length ? { nextToken: String(from + 100) } : {}) };
  }

  /**
   * StartBuild's idempotencyToken: the build a token started in the last 5 minutes (CodeBuild's
   * validity), if the request is the same; a different request with that token is an error.
   */
  buildForToken(token: string, request: string, now: number): Build | undefined {
    const known = this.tokens.get(token);
    if (!known || now - known.at > IDEMPOTENCY_MS) return undefined;
    if (known.request !== request) {
      throw new InvalidInputException(
        `idempotencyToken ${token} was used by another StartBuild request in the last 5 minutes: parameter mismatch`,
      );
    }
    return this.get(known.buildId);
  }

  rememberToken(token: string, request: string, buildId: string, now: number): void {
    this.tokens.set(token, { request, buildId, at: now });
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
