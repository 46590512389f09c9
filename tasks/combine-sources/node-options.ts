/**
 * Node options of the CombineSources Lambda (infra/pipeline-stack.ts sets them as NODE_OPTIONS;
 * the Lambda runtime keeps a semi-space size given there) and of the bench's combine child.
 *
 * A small young generation: a combine allocates a few short-lived objects per zip entry (yauzl's
 * entry, its streams, promises), and V8 grows each semi-space to 16 MiB under that load (25 MiB
 * on a 512 MB Lambda), and promotes what a scavenge finds in flight. At a million entries, a full
 * streaming combine after a snapshot copy that gave up peaked at 268-303 MB; with 4 MiB semi-spaces
 * at 230-246 MB, in about the same time. Old space keeps V8's default: the live heap stays ~20-40
 * MB, whatever the entry count (records and paths are in buffers, see tasks/shared/zip/writer.ts and
 * path-registry.ts).
 */
export const COMBINE_NODE_OPTIONS = '--max-semi-space-size=4';
