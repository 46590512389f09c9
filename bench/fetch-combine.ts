import { spawn } from 'node:child_process';
import {
  createReadStream,
  createWriteStream,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { join, relative } from 'node:path';
import { DeleteObjectCommand, ListObjectsV2Command, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { buildSync } from 'esbuild';
import { readFile } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import { crc32 } from 'node:zlib';
import { RawZipWriter, STORED, toDosDateTime } from '../tasks/shared/zip';
import { BuildRegistry, startBuild, type ProjectDefinition, type StartBuildSyncOutput } from '../local/codebuild';
import { localS3Client, type LocalS3 } from '../local/s3';
import { DEFAULT_PART_SIZE, DEFAULT_QUEUE_SIZE } from '../tasks/combine-sources/artifact-writer';
import { COMBINE_NODE_OPTIONS } from '../tasks/combine-sources/node-options';
import { branchReader } from '../tasks/resolve-source/remote-refs';
import { resolveSource, snapshotKeyOf } from '../tasks/resolve-source/resolve-source';
import type { CombineSourcesEvent, FetchedSource, PlannedSource } from '../shared/contracts';
import { executionName } from '../cli/execution-name';
import { git, writeLargeTree, writeSmallTree, type LargeSourceShape } from './git-fixtures';
import { registerBenchChild } from './interrupt';
import { makeScratchDirectory, makeStoreDirectory, startLocalS3Process } from './s3-process';
import { summarize, type Summary } from './stats';

/**
 * Fetch + combine on a large source: the FetchSources builds (buildspecs/fetch-source.yml through
 * the local CodeBuild runner, both sources in parallel as the Map runs them) and then
 * CombineConfigAndCode (tasks/combine-sources in a child process, whose peak RSS is read too),
 * against (a) `git archive --format=zip` + one upload to the same S3 and (b) one PutObject per
 * file. A re-run of the same commits is measured right after each first run.
 */

const PROJECT_ROOT = join(__dirname, '..');
export const BUCKET = 'stepdeploy-bench-artifacts';

export interface FetchCombineOptions {
  readonly runs: number;
  readonly shape: LargeSourceShape;
  /** Concurrent PUTs of baseline (b), as `aws s3 cp --recursive` (max_concurrent_requests 10). */
  readonly putConcurrency: number;
  /** Skip baseline (b) (it takes long). */
  readonly skipPerFile?: boolean;
  readonly log: (line: string) => void;
}

export interface FetchCombineResult {
  readonly shape: LargeSourceShape;
  readonly sourceBytes: number;
  readonly fetch: Summary;
  readonly combine: Summary;
  /** fetch + combine: time to the combined artifact in S3. */
  readonly pipeline: Summary;
  readonly rerun: Summary;
  readonly rerunFetch: Summary;
  readonly rerunCombine: Summary;
  readonly archive: Summary;
  readonly archiveZipBytes: number;
  readonly perFile?: Summary;
  readonly combineMaxRss: Summary;
  /** Snapshots the re-runs reused instead of fetching (2 per re-run when ResolveSource works). */
  readonly rerunReusedSnapshots: number;
  readonly artifactBytes: number;
  readonly snapshotBytes: number;
  /** Whether the local S3 kept its objects in RAM (tmpfs) or on disk (s3-process.ts makeStoreDirectory); absent from results saved before 2c1f622. */
  readonly storeInMemory?: boolean;
}

function fetchProject(): ProjectDefinition {
  return {
    name: 'stepdeploy-bench-fetch',
    buildspec: readFileSync(join(PROJECT_ROOT, 'buildspecs', 'fetch-source.yml'), 'utf8'),
    artifacts: { Type: 'S3', Location: BUCKET, Packaging: 'ZIP', NamespaceType: 'NONE', OverrideArtifactName: true },
    timeoutInMinutes: 30,
  };
}

export interface Fixture {
  readonly dir: string;
  /** The large source's repository (a work tree: its files also feed baseline (b)). */
  readonly app: string;
  readonly config: string;
  readonly sourceBytes: number;
}

/**
 * The large source as a git repository whose objects are stored uncompressed and never
 * delta-compressed, so that serving a clone costs a copy — what a hosted, pre-packed repository
 * costs its server — rather than the fixture's own packing. It stands for the git server's
 * storage, so it is kept where the local S3 keeps its objects (makeStoreDirectory: in RAM when
 * there is room): removing it then takes 0.4 s instead of 3.2-3.6 s (making it takes as long,
 * 9-12 s with the repack), and no writeback of it competes with the first round's checkouts. Its
 * work tree, which baseline (b) reads, is there too; the fetch builds' checkouts and zips stay in
 * the temporary folder, on disk. Removed if making it fails.
 */
export function makeFixture(shape: LargeSourceShape): Fixture {
  const dir = makeStoreDirectory('stepdeploy-bench-fetch-').path;
  try {
    return writeFixture(dir, shape);
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
}

function writeFixture(dir: string, shape: LargeSourceShape): Fixture {
  const app = join(dir, 'app');
  writeLargeTree(app, shape);
  git(app, ['init', '--quiet', '--initial-branch=main']);
  for (const [k, v] of [
    ['core.compression', '0'],
    ['core.looseCompression', '0'],
    ['pack.compression', '0'],
    ['core.bigFileThreshold', '16m'],
    ['pack.window', '0'],
    // No \`git gc --auto\` in the background: after a commit of 20,000 loose objects git starts one
    // (detached), which used to repack this repository while the first round was measured.
    ['gc.auto', '0'],
  ])
    git(app, ['config', k!, v!]);
  git(app, ['add', '--all']);
  git(app, ['commit', '--quiet', '-m', 'bench fixture']);
  // Packed here instead, before anything is measured, as a hosted repository is: the loose objects
  // into one pack, the 500 MB file staying in the pack \`git add\` streamed it into (what the
  // background gc did, \`git repack -d -l\`).
  git(app, ['repack', '-d', '-l', '-q']);
  const config = join(dir, 'config');
  writeSmallTree(config, { 'acceptance.json': '{"stackPrefix":"bench"}\n' });
  git(config, ['init', '--quiet', '--initial-branch=main']);
  git(config, ['add', '--all']);
  git(config, ['commit', '--quiet', '-m', 'bench config']);
  return { dir, app, config, sourceBytes: shape.files * shape.fileBytes + shape.bigFileBytes };
}

const s3Client = (endpoint: string): S3Client => localS3Client(endpoint);

/**
 * One execution's FetchSources, as the ASL runs each iteration (both sources in parallel):
 * ResolveSource (the real task: git ls-remote + HeadObject), then ReuseSnapshot when the
 * snapshot is stored, else the FetchSource build pinned to the resolved commit.
 */
export async function fetchSources(
  fixture: Fixture,
  s3: S3Client,
  root: string,
  registry: BuildRegistry,
  execution: string,
): Promise<FetchedSource[]> {
  const sources: PlannedSource[] = [
    {
      name: 'app',
      branch: 'main',
      repository: fixture.app,
      sourceType: 'LOCAL_GIT',
      path: '.',
      credentialsSecret: null,
      commit: null,
    },
    {
      name: 'config',
      branch: 'main',
      repository: fixture.config,
      sourceType: 'LOCAL_GIT',
      path: 'config/',
      credentialsSecret: null,
      commit: null,
    },
  ];
  const readBranch = branchReader();
  return Promise.all(
    sources.map(async (source): Promise<FetchedSource> => {
      const resolved = await resolveSource(source, { s3, bucket: BUCKET, readBranch, log: () => undefined });
      if (resolved.snapshotStored && resolved.commit !== null && resolved.snapshotKey !== null) {
        return {
          name: source.name,
          branch: source.branch,
          path: source.path,
          commit: resolved.commit,
          fetchBuildId: null,
          snapshotKey: resolved.snapshotKey,
        };
      }
      const { completion } = startBuild(
        {
          ProjectName: 'stepdeploy-bench-fetch',
          project: fetchProject(),
          SourceTypeOverride: 'LOCAL_GIT',
          SourceLocationOverride: source.repository,
          SourceVersion: resolved.sourceVersion,
          ArtifactsOverride: {
            Type: 'S3',
            Location: BUCKET,
            Path: `sources/${source.name}`,
            Name: 'snapshot.zip',
            Packaging: 'ZIP',
            NamespaceType: 'NONE',
            OverrideArtifactName: true,
          },
          EnvironmentVariablesOverride: [
            { Name: 'STEPDEPLOY_SOURCE', Type: 'PLAINTEXT', Value: source.name },
            { Name: 'STEPDEPLOY_BRANCH', Type: 'PLAINTEXT', Value: source.branch },
            { Name: 'STEPDEPLOY_EXECUTION', Type: 'PLAINTEXT', Value: execution },
          ],
        },
        { s3, root, registry },
      );
      const { Build } = (await completion) as StartBuildSyncOutput;
      const commit = Build.ResolvedSourceVersion!;
      return {
        name: source.name,
        branch: source.branch,
        path: source.path,
        commit,
        fetchBuildId: Build.Id,
        snapshotKey: snapshotKeyOf(source.name, commit),
      };
    }),
  );
}

/**
 * Deletes the fetch builds' folders (their checkouts), which are not needed once the snapshots
 * are stored: keeps /tmp from filling up. Called after the timing, since removing a checkout is
 * the bench's housekeeping, not part of the time to the artifact.
 */
function removeBuildFolders(registry: BuildRegistry, sources: ReadonlyArray<FetchedSource>): void {
  for (const source of sources)
    if (source.fetchBuildId !== null) rmSync(registry.buildDir(source.fetchBuildId), { recursive: true, force: true });
}

/** A scratch folder, and the local S3 in a process of its own (its objects in makeStoreDirectory's folder) with a client. */
interface BenchS3 {
  readonly work: string;
  readonly store: { readonly path: string; readonly inMemory: boolean };
  readonly endpoint: string;
  readonly s3: S3Client;
  /** Stops the local S3 and removes both folders. */
  close(): Promise<void>;
}

async function openBenchS3(name: string): Promise<BenchS3> {
  const work = makeScratchDirectory(`stepdeploy-bench-${name}-`);
  const store = makeStoreDirectory(`stepdeploy-bench-${name}-s3-`);
  const removeFolders = (): void => {
    rmSync(work, { recursive: true, force: true });
    rmSync(store.path, { recursive: true, force: true });
  };
  let server: LocalS3;
  try {
    server = await startLocalS3Process(store.path, BUCKET);
  } catch (error) {
    removeFolders();
    throw error;
  }
  const s3 = s3Client(server.endpoint);
  return {
    work,
    store,
    endpoint: server.endpoint,
    s3,
    close: async () => {
      s3.destroy();
      await server.close();
      removeFolders();
    },
  };
}

/** Deletes every object under the prefixes: a first run must find no snapshot and no combine cache. */
async function deletePrefixes(s3: S3Client, prefixes: ReadonlyArray<string>): Promise<void> {
  for (const Prefix of prefixes) {
    const listed = await s3.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix }));
    for (const object of listed.Contents ?? [])
      await s3.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: object.Key! }));
  }
}

/** What an earlier execution leaves behind that a later one may reuse: snapshots and the combine cache. */
const REUSABLE_PREFIXES = ['sources/', 'combined/'];

interface ChildResult {
  readonly ms: number;
  readonly maxRssBytes: number;
  readonly key: string;
  /** What combine-sources logged (which path it took). */
  readonly log: string;
}

/**
 * bench/combine-child.ts bundled as the Lambda is (infra/task-function.ts: esbuild, minified,
 * the pinned AWS SDK inside the bundle, `externalModules: []`), built once per bench: the child
 * then runs plain JavaScript and holds the SDK code the Lambda holds, as Lambda does. Under tsx the same child holds tsx's loader and the unminified sources: ~25 MB
 * more at rest and up to ~65 MB more at peak (measured at 200,000 entries: 257 MB vs 190 MB).
 */
export function bundledCombineChild(): string {
  if (combineChildBundle !== undefined) return combineChildBundle;
  const out = join(PROJECT_ROOT, 'node_modules', '.cache', 'stepdeploy-bench', 'combine-child.js');
  buildSync({
    entryPoints: [join(__dirname, 'combine-child.ts')],
    bundle: true,
    platform: 'node',
    target: `node${process.versions.node.split('.')[0]}`,
    minify: true,
    sourcemap: true,
    outfile: out,
    logLevel: 'error',
  });
  combineChildBundle = out;
  return out;
}
let combineChildBundle: string | undefined;

/** CombineConfigAndCode in a child process: its own peak RSS, and its own duration (without node's start). */
export function combineInChild(endpoint: string, event: CombineSourcesEvent, workDir: string): Promise<ChildResult> {
  const request = join(workDir, `combine-${event.execution}.json`);
  writeFileSync(request, JSON.stringify({ endpoint, bucket: BUCKET, event }));
  const script = bundledCombineChild();
  return new Promise((resolve, reject) => {
    // With the Lambda's node options (its NODE_OPTIONS in infra/pipeline-stack.ts), and its
    // temporary files (Lambda's /tmp) in the bench's scratch folder, which an interrupted bench
    // removes, after stopping the child.
    const child = spawn(process.execPath, [...COMBINE_NODE_OPTIONS.split(' '), script, request], {
      cwd: PROJECT_ROOT,
      env: { ...process.env, TMPDIR: workDir },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    registerBenchChild(child);
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    child.on('error', reject);
    child.on('exit', (code) => {
      const lines = out.trim().split('\n');
      const line = lines.at(-1) ?? '';
      if (code !== 0 || !line.startsWith('{')) {
        reject(
          new Error(
            `combine child exited ${code}: ${err
              .split('\n')
              .filter(
                (l) =>
                  !/NodeVersionSupport|node >=22|a\.co\/|versions published|security updates|^\s*$|trace-warnings|will require|To continue/.test(
                    l,
                  ),
              )
              .join('\n')}`,
          ),
        );
        return;
      }
      resolve({ ...(JSON.parse(line) as Omit<ChildResult, 'log'>), log: lines.slice(0, -1).join('\n') });
    });
  });
}

function event(execution: string, sources: FetchedSource[]): CombineSourcesEvent {
  return {
    environment: 'bench',
    execution,
    requestedBy: null,
    account: '111111111111',
    region: 'eu-west-1',
    deployRoleArn: 'arn:aws:iam::111111111111:role/bench',
    variables: {},
    sources,
  };
}

/**
 * Baseline (a): `git archive --format=zip HEAD` streamed into one upload (lib-storage, the part
 * size and queue combine-sources uses), as `git archive ... | aws s3 cp - s3://...` would: the
 * upload of the first parts overlaps the compression of the rest. Returns the zip's size.
 */
export async function archiveAndUpload(fixture: Fixture, s3: S3Client, key: string): Promise<number> {
  const child = spawn('git', ['archive', '--format=zip', 'HEAD'], {
    cwd: fixture.app,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<void>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0 ? resolve() : reject(new Error(`git archive exited with ${code}: ${stderr.trim()}`)),
    );
  });
  let bytes = 0;
  child.stdout.on('data', (chunk: Buffer) => (bytes += chunk.length));
  const upload = new Upload({
    client: s3,
    params: { Bucket: BUCKET, Key: key, Body: child.stdout, ContentType: 'application/zip' },
    partSize: DEFAULT_PART_SIZE,
    queueSize: DEFAULT_QUEUE_SIZE,
  }).done();
  try {
    await Promise.all([exited, upload]);
  } catch (error) {
    child.kill();
    await Promise.allSettled([exited, upload]);
    throw error;
  }
  return bytes;
}

function* walk(dir: string): Generator<string> {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.name === '.git') continue;
    const path = join(dir, entry.name);
    if (entry.isDirectory()) yield* walk(path);
    else if (entry.isFile()) yield path;
  }
}

/** The largest file baseline (b) sends as a buffer: the AWS CLI's multipart_threshold. */
const WHOLE_FILE_BODY_MAX = 8 * 1024 * 1024;

/**
 * Baseline (b): one PutObject per file with bounded concurrency, as `aws s3 cp --recursive` does.
 * A small file is read whole and sent as a buffer: with the SDK's client bound by its CPU per
 * PUT, that costs ~20% less than a file stream body (4,000 files of 10 KB: 1.14-1.47 vs
 * 1.32-1.79 ms of client CPU per PUT), so the baseline is the faster of the two ways to send a
 * small file. A large one (the 500 MB file) is streamed, as before, rather than held in memory.
 */
async function putEachFile(fixture: Fixture, s3: S3Client, prefix: string, concurrency: number): Promise<void> {
  const files = [...walk(fixture.app)];
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < files.length) {
      const file = files[next++]!;
      const size = statSync(file).size;
      const Body = size <= WHOLE_FILE_BODY_MAX ? await readFile(file) : createReadStream(file);
      await s3.send(
        new PutObjectCommand({
          Bucket: BUCKET,
          Key: `${prefix}/${relative(fixture.app, file)}`,
          Body,
          ContentLength: size,
        }),
      );
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
}

export async function measureFetchCombine(options: FetchCombineOptions, fixture: Fixture): Promise<FetchCombineResult> {
  const bench = await openBenchS3('s3');
  const { work, store, s3 } = bench;
  const registry = new BuildRegistry(join(work, 'runner'));
  const series = {
    fetch: [] as number[],
    combine: [] as number[],
    pipeline: [] as number[],
    rerun: [] as number[],
    rerunFetch: [] as number[],
    rerunCombine: [] as number[],
    archive: [] as number[],
    perFile: [] as number[],
    rss: [] as number[],
  };
  let archiveZipBytes = 0;
  let reusedFetches = 0;
  let artifactBytes = 0;
  let snapshotBytes = 0;
  const s = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;
  try {
    for (let i = 0; i < options.runs; i++) {
      const roundStart = performance.now();
      const run = async (
        execution: string,
      ): Promise<{ fetch: number; combine: number; rss: number; key: string; fetchBuilds: number }> => {
        const start = performance.now();
        const sources = await fetchSources(fixture, s3, join(work, 'runner'), registry, execution);
        const fetch = performance.now() - start;
        const child = await combineInChild(bench.endpoint, event(execution, sources), work);
        removeBuildFolders(registry, sources);
        const artifact = join(store.path, BUCKET, child.key);
        artifactBytes = statSync(`${artifact}._S3rver_object`, { throwIfNoEntry: false })?.size ?? artifactBytes;
        const snapshot = join(store.path, BUCKET, sources[0]!.snapshotKey);
        snapshotBytes = statSync(`${snapshot}._S3rver_object`, { throwIfNoEntry: false })?.size ?? snapshotBytes;
        return {
          fetch,
          combine: child.ms,
          rss: child.maxRssBytes,
          key: child.key,
          fetchBuilds: sources.filter((x) => x.fetchBuildId !== null).length,
        };
      };
      // A first run finds nothing stored by the previous round.
      await deletePrefixes(s3, REUSABLE_PREFIXES);
      // Execution names as the CLI makes them (fixed length: environment, UTC time, 6 random characters).
      const first = await run(executionName('bench'));
      if (first.fetchBuilds !== 2)
        throw new Error(
          `the first run of round ${i + 1} reused a snapshot (${first.fetchBuilds} fetch builds): it must start from nothing`,
        );
      series.fetch.push(first.fetch);
      series.combine.push(first.combine);
      // Peak RSS of the full combine (a re-run's combine copies server-side and needs less).
      series.rss.push(first.rss);
      series.pipeline.push(first.fetch + first.combine);
      // The same commits again, as a new execution: ResolveSource finds the snapshots, combine its cache.
      const again = await run(executionName('bench'));
      reusedFetches += 2 - again.fetchBuilds;
      series.rerunFetch.push(again.fetch);
      series.rerunCombine.push(again.combine);
      series.rerun.push(again.fetch + again.combine);
      for (const key of [first.key, again.key]) await s3.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: key }));
      const archiveStart = performance.now();
      archiveZipBytes = await archiveAndUpload(fixture, s3, `baseline/archive-${i}.zip`);
      series.archive.push(performance.now() - archiveStart);
      await s3.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: `baseline/archive-${i}.zip` }));
      let line = `  run ${i + 1}/${options.runs}: fetch ${s(first.fetch)} + combine ${s(first.combine)} (re-run ${s(again.fetch)} + ${s(again.combine)}), git archive + upload ${s(series.archive.at(-1)!)}`;
      if (!options.skipPerFile) {
        const perFileStart = performance.now();
        await putEachFile(fixture, s3, `baseline/per-file-${i}`, options.putConcurrency);
        series.perFile.push(performance.now() - perFileStart);
        rmSync(join(store.path, BUCKET, 'baseline', `per-file-${i}`), { recursive: true, force: true });
        line += `, one PUT per file ${s(series.perFile.at(-1)!)}`;
      }
      const measured = [
        series.fetch,
        series.combine,
        series.rerunFetch,
        series.rerunCombine,
        series.archive,
        ...(options.skipPerFile ? [] : [series.perFile]),
      ].reduce((sum, x) => sum + x.at(-1)!, 0);
      options.log(`${line} (+${s(performance.now() - roundStart - measured)} outside the timings)`);
    }
  } finally {
    await bench.close();
  }
  return {
    shape: options.shape,
    sourceBytes: fixture.sourceBytes,
    storeInMemory: store.inMemory,
    fetch: summarize(series.fetch),
    combine: summarize(series.combine),
    pipeline: summarize(series.pipeline),
    rerun: summarize(series.rerun),
    rerunFetch: summarize(series.rerunFetch),
    rerunCombine: summarize(series.rerunCombine),
    archive: summarize(series.archive),
    archiveZipBytes,
    ...(series.perFile.length > 0 ? { perFile: summarize(series.perFile) } : {}),
    combineMaxRss: summarize(series.rss),
    rerunReusedSnapshots: reusedFetches,
    artifactBytes,
    snapshotBytes,
  };
}

/** Peak RSS of combine-sources alone on one source shape: fetch once, then combine `runs` times. */
export async function measureCombineMemory(
  shape: LargeSourceShape,
  runs: number,
): Promise<{ shape: LargeSourceShape; maxRss: Summary; combine: Summary }> {
  const fixture = makeFixture(shape);
  try {
    const bench = await openBenchS3('mem');
    const { work, s3 } = bench;
    try {
      const sources = await fetchSources(
        fixture,
        s3,
        join(work, 'runner'),
        new BuildRegistry(join(work, 'runner')),
        'bench-memory',
      );
      const rss: number[] = [];
      const ms: number[] = [];
      for (let i = 0; i < runs; i++) {
        // Every run combines in full: no cache from the previous one.
        await deletePrefixes(s3, ['combined/']);
        const child = await combineInChild(bench.endpoint, event(`bench-memory-${i}`, sources), work);
        rss.push(child.maxRssBytes);
        ms.push(child.ms);
        await s3.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: child.key }));
      }
      return { shape, maxRss: summarize(rss), combine: summarize(ms) };
    } finally {
      await bench.close();
    }
  } finally {
    rmSync(fixture.dir, { recursive: true, force: true });
  }
}

/** Peak RSS and time of combine-sources on one snapshot of many small entries, per path it can take. */
export interface EntriesMemoryResult {
  readonly entries: number;
  /** First combine: the "." snapshot copied inside S3 (copy-snapshot.ts). */
  readonly copy: { readonly maxRss: Summary; readonly combine: Summary };
  /** The same snapshots again: the earlier artifact copied (copy-combined.ts). */
  readonly rerun: { readonly maxRss: Summary; readonly combine: Summary };
  /** A snapshot the copy cannot take (a name it would have to rewrite): the full streaming combine (artifact-writer.ts). */
  readonly full: { readonly maxRss: Summary; readonly combine: Summary };
}

/**
 * Peak RSS of combine-sources on a snapshot of many small entries (memory per entry, where the
 * other shapes measure memory per byte), on each of its three paths: the snapshot is written
 * directly with RawZipWriter, as a fetch build would store it (1 byte per file under a ~60-byte
 * path, plus one 12 MB file so that a first combine copies it inside S3 as it does real
 * sources), without git. A second snapshot of the same files plus a last entry whose name is not
 * normalized (`./notes.txt`, which the full combine writes as `notes.txt`) takes the full
 * streaming combine, the fallback whenever the copy cannot be used. Each run checks from the
 * combine's log that it took the path it is counted for.
 */
export async function measureEntriesMemory(entries: number, runs: number): Promise<EntriesMemoryResult> {
  const bench = await openBenchS3('entries');
  const { work, s3 } = bench;
  try {
    const snapshot = async (
      name: string,
      commit: string,
      count: number,
      extra: { bigBytes: number; unnormalized: boolean },
    ): Promise<FetchedSource> => {
      const file = join(work, `${name}-${commit}.zip`);
      await writeManyEntries(file, count, extra);
      const key = snapshotKeyOf(name, commit);
      await s3.send(
        new PutObjectCommand({
          Bucket: BUCKET,
          Key: key,
          Body: createReadStream(file),
          ContentLength: statSync(file).size,
        }),
      );
      rmSync(file);
      return {
        name,
        branch: 'main',
        path: name === 'app' ? '.' : `${name}/`,
        commit,
        fetchBuildId: null,
        snapshotKey: key,
      };
    };
    const config = await snapshot('config', 'c'.repeat(40), 3, { bigBytes: 0, unnormalized: false });
    const plain = [
      await snapshot('app', 'a'.repeat(40), entries, { bigBytes: 12 * 1024 * 1024, unnormalized: false }),
      config,
    ];
    const uncopyable = [
      await snapshot('app', 'b'.repeat(40), entries, { bigBytes: 12 * 1024 * 1024, unnormalized: true }),
      config,
    ];
    const took = (result: ChildResult, path: RegExp, what: string): ChildResult => {
      if (!path.test(result.log))
        throw new Error(`the ${what} combine did not take its path (${path}); it logged: ${result.log || '(nothing)'}`);
      return result;
    };
    const series = { copy: [] as ChildResult[], rerun: [] as ChildResult[], full: [] as ChildResult[] };
    for (let i = 0; i < runs; i++) {
      await deletePrefixes(s3, ['combined/']);
      series.copy.push(
        took(
          await combineInChild(bench.endpoint, event(`bench-entries-${i}`, plain), work),
          /copied \d+ bytes of \d+ entries from snapshot/,
          'first',
        ),
      );
      series.rerun.push(
        took(
          await combineInChild(bench.endpoint, event(`bench-entries-again-${i}`, plain), work),
          /copied \d+ bytes of \d+ entries from artifacts\//,
          're-run',
        ),
      );
      series.full.push(
        took(
          await combineInChild(bench.endpoint, event(`bench-entries-full-${i}`, uncopyable), work),
          /is not a normalized path\); combining in full/,
          'full streaming',
        ),
      );
      for (const done of [series.copy, series.rerun, series.full])
        await s3.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: done.at(-1)!.key }));
    }
    const figures = (results: ChildResult[]) => ({
      maxRss: summarize(results.map((r) => r.maxRssBytes)),
      combine: summarize(results.map((r) => r.ms)),
    });
    return { entries, copy: figures(series.copy), rerun: figures(series.rerun), full: figures(series.full) };
  } finally {
    await bench.close();
  }
}

async function writeManyEntries(
  path: string,
  count: number,
  extra: { bigBytes: number; unnormalized: boolean },
): Promise<void> {
  const zip = new RawZipWriter();
  const written = pipeline(zip.output, createWriteStream(path));
  const mtime = toDosDateTime(new Date('2026-11-01T10:00:00Z'));
  const data = Buffer.from('x');
  const crc = crc32(data);
  for (let i = 0; i < count; i++) {
    const name = `services/payments/src/main/resources/d${String(Math.floor(i / 100)).padStart(5, '0')}/entry-${String(i).padStart(6, '0')}.json`;
    await zip.addRawEntry(
      {
        name,
        mode: 0o100644,
        mtime,
        compressionMethod: STORED,
        crc32: crc,
        compressedSize: data.length,
        uncompressedSize: data.length,
      },
      [data],
    );
  }
  if (extra.bigBytes > 0) {
    const big = Buffer.alloc(extra.bigBytes, 1);
    await zip.addRawEntry(
      {
        name: 'big.bin',
        mode: 0o100644,
        mtime,
        compressionMethod: STORED,
        crc32: crc32(big),
        compressedSize: big.length,
        uncompressedSize: big.length,
      },
      [big],
    );
  }
  if (extra.unnormalized)
    await zip.addBuffer('./notes.txt', Buffer.from('notes\n'), { mode: 0o100644, mtime, compress: false });
  await zip.end();
  await written;
}
