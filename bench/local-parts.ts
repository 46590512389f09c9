/**
 * Section 7 of BENCHMARKS.md: figures of the local runtime's own parts, measured apart from the
 * bench's run (each says how and when), so that the code they justify keeps only its reason.
 */
export function localPartsSection(): string {
  return `## 7. Local runtime parts

Measured on their own, on these machines (2 cores), not by \`npm run bench\`.

**Local S3, CompleteMultipartUpload** (\`local/s3/concatenate.ts\`, measured before 2026-12-07). A
Complete of 6 MiB + 644 MB: 0.3-0.5 s with 4 MiB positional reads and writes, 1.1-1.9 s with 1 MiB
streams. Copying a 650 MB file alone: 4 MiB chunks ~0.2 s, 1 MiB ~0.27 s, 8 and 16 MiB slower (more
writeback stalls), \`fs.copyFile\` (copy_file_range, whole files only) ~0.3 s. A re-run's Complete
whose copied parts sit at their source's offsets copies the source with \`fs.copyFile\` and writes
the uploaded parts over it: ~0.3 s for 650 MB, where reading and writing it in 4 MiB chunks took
~1.5 s. An UploadPartCopy's ETag is not the MD5 of its bytes because hashing 650 MB took over a second.

**Local engine, StartExecution** (\`local/engine.ts\`, measured before 2026-12-07). aws-local-stepfunctions
validating the definition at every start cost 0.2-0.6 s; the local state machine validates it once, when
it is created, and starts each run with \`noValidate\`.

**Local CodeBuild zip writer against a library** (\`local/codebuild/zip-writer.ts\` against yazl 3.3.1,
\`npx tsx bench/zip-writer.ts --runs 3\`, 2026-12-07 18:12 UTC, load average 21-23 on the 2 cores:
five engineers' test suites ran at the same time). Both write the same entries (level 1, a large file
whose first 256 KiB do not deflate stored); runs alternate; every zip passes \`unzip -tq\`.

| source                                            | zip-writer.ts wall | yazl wall          | yazl / ours | CPU ours | CPU yazl |
| ------------------------------------------------- | ------------------ | ------------------ | ----------- | -------- | -------- |
| 20,000 files (195 MB) + one 500 MB file           | 33.7 s (27.7-37.7) | 38.1 s (18.5-52.9) | 1.13x       | 6.3 s    | 13.0 s   |
| 2,000 files (20 MB) + one 50 MB file              | 5.0 s (4.1-5.1)    | 2.4 s (2.1-7.0)    | 0.48x       | 0.83 s   | 1.41 s   |
| 300 files (3 MB) + one 5 MB file (\`--quick\`, n=2) | 1.8 s              | 1.0 s              | 0.55x       | 0.45 s   | 0.48 s   |

Kept by hand, for the CPU figure: yazl takes 1.7-2x the CPU time at the bench's two sizes (a CRC-32
in JavaScript, one entry at a time, where the writer takes zlib's native CRC-32 and deflates batches
on worker threads), and CPU time is what a loaded machine and CI have least of. On idle cores the
same comparison gave ~5 s against ~15 s for the bench's source (measured when the writer was
written). What this load shows too: on smaller zips the writer's worker threads cost it wall time
(2.4 s against 5.0 s at 2,000 files), so the next step is to start workers only from a size where they
pay, measured with this script. Other libraries do not change the picture: archiver 8 (zip-stream)
also handles one entry at a time with a JavaScript CRC-32; zip.js compresses entries concurrently
but computes CRC-32 in JavaScript, and its native path (CompressionStream) takes no compression level.
Also from when the writer was written: deflating 500 MB of random data took ~14 s to save nothing
(why a large file is sampled first); on 5,000 files of 10 KB, batches on workers took ~1.6 s where
\`readFile\` + \`zlib.deflateRaw\` per file took ~3.8 s; starting a worker costs ~70 ms (why a zip
of one batch is written without one); per-file buffers left ~30 MB more garbage on the 20,000 files
than one reused read buffer.

**Local CodeBuild, S3 source extraction** (\`extractZip\` in \`local/codebuild/sources.ts\`: what the build
and deploy builds do with \`source.zip\` / \`build.zip\`; \`npx tsx bench/s3-source-extract.ts --runs 3\`,
2026-12-08, 3 runs each, alternating with Info-ZIP's \`unzip -q\` of the same zip, made by the local zip
writer; both trees compared with \`diff -r\`; in /dev/shm). Before: one \`yauzl.open\` reading the zip in
pieces of a few dozen bytes (a directory record, a name, a local header: each a read on the thread pool)
and, per file, yauzl's read stream piped into a write stream (open, write, close on the thread pool):
12,003 file operations for 2,000 files (the test in \`test/local/codebuild/sources.test.ts\` counts
them; now at most 10). After: the zip read through \`fileWindowReader\` (1 MiB windows, as
combine-sources reads snapshots), and an entry up to 64 KiB compressed / 1 MiB inflated read, inflated
(\`inflateRawSync\`, bounded by its declared size) and written whole, with no stream.

| source                                | before: extractZip  | unzip  | ratio | after: extractZip  | unzip  | ratio | extractZip CPU  |
| ------------------------------------- | ------------------- | ------ | ----- | ------------------ | ------ | ----- | --------------- |
| 20,000 files of 1 KB                  | 70.1 s (62.9-130.8) | 9.70 s | 7.22x | 10.1 s (3.6-13.5)  | 3.47 s | 2.91x | 18.1 s -> 2.5 s |
| 2,000 files of 10 KB + one 50 MB file | 6.10 s (5.84-11.6)  | 5.63 s | 1.08x | 1.48 s (1.08-2.03) | 1.02 s | 1.45x | 1.9 s -> 0.8 s  |

Before: 2026-12-08 00:24 UTC, load average 16.5; after: 00:31 UTC, load average 17.3 (medians, min-max).
An earlier run of the new code at load 9 gave 11.3 s against 4.89 s (2.31x) and 2.78 s against 2.74 s (1.01x).

Which change did it (2,000 files of 1 KB, \`--quick\`, load 9-11): before 7.38 s against unzip's 0.79 s
(9.3x); the windows alone, streams kept, 5.69 s against 0.43 s (13.2x, no better); windows and small
entries whole 0.66 s against 0.18 s (3.6x). The per-file streams were the cost, not the reads. What
is left against unzip (2.3-2.9x at 20,000 files; 2.31x at load 9): three awaits per entry (the next
entry, its local header, its data) and a \`realpathSync\` of its folder (the zip-slip check).
`;
}
