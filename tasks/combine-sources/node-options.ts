/**
 * Node options of the CombineSources Lambda (infra/pipeline-stack.ts sets them as NODE_OPTIONS;
 * the Lambda runtime keeps a semi-space size given there) and of the bench's combine child.
 *
 * A small young generation: a combine allocates a few short-lived objects per zip entry, under
 * which V8 grows each semi-space to 16 MiB or more and promotes what a scavenge finds in flight;
 * 4 MiB lowers the peak at a million entries in about the same time (BENCHMARKS.md §3). Old space
 * keeps V8's default: the live heap stays small whatever the entry count (records and paths are
 * in buffers: tasks/shared/zip/writer.ts, path-registry.ts).
 */
export const COMBINE_NODE_OPTIONS = '--max-semi-space-size=4';
