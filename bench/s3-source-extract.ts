import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { extractZip } from '../local/codebuild/sources';
import { writeZip } from '../local/codebuild/zip-writer';
import { describeShape, type LargeSourceShape, listFiles, scratchFolder, writeLargeTree } from './git-fixtures';
import { formatSeconds, summarize } from './stats';

/**
 * The local CodeBuild's S3 source extraction (extractZip in local/codebuild/sources.ts: what the
 * BuildTemplates and deploy builds do with source.zip / build.zip) against Info-ZIP's `unzip -q` of
 * the same zip, made by the local zip writer as the pipeline makes it. Runs alternate between the
 * two, so the ratio printed is measured in this run, at this machine's load. Both trees are
 * compared file by file after the first run.
 *
 *   npx tsx bench/s3-source-extract.ts                 # 20,000 files of 1 KB, and 2,000 files of 10 KB + 50 MB; 5 runs
 *   npx tsx bench/s3-source-extract.ts --quick         # 2,000 files of 1 KB, 3 runs
 */

/** Room for the tree, its zip and two extractions (a small file takes a 4 KiB block); both sides alike. */
function scratch(shape: LargeSourceShape): string {
  return scratchFolder(4 * (shape.files * Math.max(shape.fileBytes, 4096) + shape.bigFileBytes));
}

const SUBJECTS: ReadonlyArray<readonly [string, (zip: string, dest: string) => Promise<void>]> = [
  ['extractZip', (zip, dest) => extractZip(zip, dest)],
  [
    'unzip -q',
    async (zip, dest) => {
      execFileSync('unzip', ['-q', zip, '-d', dest], { stdio: 'ignore' });
    },
  ],
];

async function measure(shape: LargeSourceShape, runs: number): Promise<void> {
  const dir = mkdtempSync(join(scratch(shape), 'stepdeploy-extract-bench-'));
  try {
    const tree = join(dir, 'tree');
    writeLargeTree(tree, shape);
    const zip = join(dir, 'source.zip');
    await writeZip(listFiles(tree), zip);
    const times = new Map<string, number[]>(SUBJECTS.map(([name]) => [name, []]));
    const cpu = new Map<string, number[]>(SUBJECTS.map(([name]) => [name, []]));
    for (let run = 0; run < runs; run++) {
      // Alternate which goes first, so neither always reads the zip from the cache the other warmed.
      const order = run % 2 === 0 ? SUBJECTS : [...SUBJECTS].reverse();
      for (const [name, extract] of order) {
        const dest = join(dir, `out-${name.replace(/\W/g, '')}`);
        mkdirSync(dest);
        const before = process.cpuUsage();
        const start = performance.now();
        await extract(zip, dest);
        times.get(name)!.push(performance.now() - start);
        const used = process.cpuUsage(before);
        cpu.get(name)!.push((used.user + used.system) / 1000);
      }
      if (run === 0) {
        // The same files with the same content and modes on both sides, or the comparison means nothing.
        execFileSync('diff', ['-r', join(dir, 'out-extractZip'), join(dir, 'out-unzipq')]);
      }
      for (const [name] of SUBJECTS) rmSync(join(dir, `out-${name.replace(/\W/g, '')}`), { recursive: true });
    }
    const [ours, unzip] = SUBJECTS.map(([name]) => summarize(times.get(name)!));
    console.log(`\n${describeShape(shape)}, ${runs} runs each, alternating:`);
    for (const [name] of SUBJECTS) {
      // unzip runs in a child process: this process's CPU time counts only extractZip's.
      const cpuSeconds = name === 'extractZip' ? `, CPU ${(summarize(cpu.get(name)!).median / 1000).toFixed(2)} s` : '';
      console.log(`  ${name.padEnd(11)} ${formatSeconds(summarize(times.get(name)!))}${cpuSeconds}`);
    }
    console.log(`  extractZip / unzip (median wall time): ${(ours!.median / unzip!.median).toFixed(2)}x`);
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
    ? [{ files: 2_000, fileBytes: 1024, bigFileBytes: 0 }]
    : [
        { files: 20_000, fileBytes: 1024, bigFileBytes: 0 },
        { files: 2_000, fileBytes: 10 * 1024, bigFileBytes: 50 * MB },
      ];
  const runs = values.runs === undefined ? (values.quick ? 3 : 5) : Number(values.runs);
  if (!Number.isInteger(runs) || runs < 1) {
    throw new Error(`--runs must be a whole number of at least 1, got ${values.runs}`);
  }
  console.log(
    `S3 source extraction on ${new Date().toISOString()}, load average ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
  );
  for (const shape of shapes) await measure(shape, runs);
}

main().catch((error: Error) => {
  console.error(error.message);
  process.exitCode = 1;
});
