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
`;
}
