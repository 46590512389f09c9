import { execFileSync } from 'node:child_process';
import { createWriteStream, lstatSync, mkdtempSync, rmSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { parseArgs } from 'node:util';
import * as yazl from 'yazl';
import type { ArtifactFile } from '../local/codebuild/artifacts';
import { compresses, writeZip } from '../local/codebuild/zip-writer';
import { describeShape, type LargeSourceShape, listFiles, scratchFolder, writeLargeTree } from './git-fixtures';
import { formatSeconds, summarize } from './stats';

/**
 * The local CodeBuild zip writer (local/codebuild/zip-writer.ts) against yazl, the zip library
 * already in the tree, on the bench's source shapes (bench/run.ts: the fetch + combine source and
 * the smaller memory one). Both follow the same policy: deflate level 1, and a large file whose
 * first 256 KiB do not deflate is stored. Runs alternate between the two, so the ratio printed is
 * measured in this run, on this machine's load. Each zip is checked with `unzip -tq`.
 *
 *   npx tsx bench/zip-writer.ts            # 20,000 files + 500 MB, and 2,000 files + 50 MB; 5 runs each
 *   npx tsx bench/zip-writer.ts --quick    # the quick bench's shapes, 2 runs
 */

type Writer = (files: ReadonlyArray<ArtifactFile>, zipPath: string) => Promise<void>;

/** The same entries as writeZip writes: unix modes, mtimes, symlinks as links, level 1, incompressible large files stored. */
async function yazlZip(files: ReadonlyArray<ArtifactFile>, zipPath: string): Promise<void> {
  const zip = new yazl.ZipFile();
  for (const file of files) {
    const stats = lstatSync(file.path);
    if (file.symlinkTarget !== undefined) {
      zip.addBuffer(Buffer.from(file.symlinkTarget), file.name, {
        mode: 0o120777,
        mtime: stats.mtime,
        compress: false,
      });
    } else {
      const compressionLevel = compresses(file.path, stats.size) ? 1 : 0;
      zip.addFile(file.path, file.name, { mode: stats.mode, mtime: stats.mtime, compressionLevel });
    }
  }
  zip.end();
  await pipeline(zip.outputStream, createWriteStream(zipPath));
}

const SUBJECTS: ReadonlyArray<readonly [string, Writer]> = [
  ['zip-writer.ts', (files, zipPath) => writeZip(files, zipPath)],
  ['yazl 3.3.1', yazlZip],
];

/** Room for the tree and two zips. */
function scratch(shape: LargeSourceShape): string {
  return scratchFolder(3 * (shape.files * shape.fileBytes + shape.bigFileBytes));
}

async function measure(shape: LargeSourceShape, runs: number): Promise<void> {
  const dir = mkdtempSync(join(scratch(shape), 'stepdeploy-zip-bench-'));
  try {
    const root = join(dir, 'tree');
    writeLargeTree(root, shape);
    const files = listFiles(root);
    const times = new Map<string, number[]>(SUBJECTS.map(([name]) => [name, []]));
    const cpu = new Map<string, number[]>(SUBJECTS.map(([name]) => [name, []]));
    const sizes = new Map<string, number>();
    for (let run = 0; run < runs; run++) {
      // Alternate which goes first, so neither always runs on the page cache the other warmed.
      const order = run % 2 === 0 ? SUBJECTS : [...SUBJECTS].reverse();
      for (const [name, write] of order) {
        const zipPath = join(dir, 'out.zip');
        const cpuBefore = process.cpuUsage();
        const start = performance.now();
        await write(files, zipPath);
        times.get(name)!.push(performance.now() - start);
        const used = process.cpuUsage(cpuBefore);
        cpu.get(name)!.push((used.user + used.system) / 1000);
        if (run === 0) {
          execFileSync('unzip', ['-tq', zipPath], { stdio: 'ignore' });
          sizes.set(name, lstatSync(zipPath).size);
        }
        rmSync(zipPath);
      }
    }
    const [ours, library] = SUBJECTS.map(([name]) => summarize(times.get(name)!));
    console.log(`\n${describeShape(shape)}, ${runs} runs each, alternating:`);
    for (const [name] of SUBJECTS) {
      const mb = (sizes.get(name)! / 1024 / 1024).toFixed(1);
      const cpuSeconds = (summarize(cpu.get(name)!).median / 1000).toFixed(2);
      console.log(
        `  ${name.padEnd(14)} ${formatSeconds(summarize(times.get(name)!))}, CPU ${cpuSeconds} s, zip ${mb} MB`,
      );
    }
    console.log(`  yazl / zip-writer.ts (median wall time): ${(library!.median / ours!.median).toFixed(2)}x`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { quick: { type: 'boolean', default: false }, runs: { type: 'string' } },
  });
  const MB = 1024 * 1024;
  const shapes: LargeSourceShape[] = values.quick
    ? [{ files: 300, fileBytes: 10 * 1024, bigFileBytes: 5 * MB }]
    : [
        { files: 20_000, fileBytes: 10 * 1024, bigFileBytes: 500 * MB },
        { files: 2_000, fileBytes: 10 * 1024, bigFileBytes: 50 * MB },
      ];
  const runs = values.runs === undefined ? (values.quick ? 2 : 5) : Number(values.runs);
  if (!Number.isInteger(runs) || runs < 1)
    throw new Error(`--runs must be a whole number of at least 1, got ${values.runs}`);
  console.log(
    `zip writers on ${new Date().toISOString()}, load average ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
  );
  for (const shape of shapes) await measure(shape, runs);
}

main().catch((error: Error) => {
  console.error(error.message);
  process.exitCode = 1;
});
