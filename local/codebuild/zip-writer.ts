import { closeSync, createReadStream, createWriteStream, lstatSync, openSync, readSync, type Stats } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Worker } from 'node:worker_threads';
import { crc32, createDeflateRaw, deflateRawSync } from 'node:zlib';
import { DEFLATED, type RawEntry, RawZipWriter, STORED, toDosDateTime } from '../../tasks/shared/zip';
import type { ArtifactFile } from './artifacts';
import { ArtifactsError } from './errors';

/** Files at least this large are sampled before they are deflated, and streamed; smaller ones are read whole. */
export const SAMPLED_FILE_BYTES = 1024 * 1024;
const SAMPLE_BYTES = 256 * 1024;
/** Deflate level 1: about three times faster than zlib's default 6 for a slightly larger zip. */
const LEVEL = 1;
const SYMLINK_MODE = 0o120777;
/** Read size for large files: big reads keep the native CRC-32 and the copy cheap per byte. */
const STREAM_CHUNK = 1024 * 1024;
/** Small files per message to a worker, at most, and their bytes: one message costs about as much as a 10 KB file. */
const BATCH_FILES = 64;
const BATCH_BYTES = 1024 * 1024;

export interface WriteZipOptions {
  /**
   * Jobs prepared ahead of the one being written, at most. A job is a batch of small files
   * (up to 64 files and 1 MiB), one large file or one symlink. @default 16
   */
  readonly window?: number;
  /**
   * Memory those jobs may hold, at most: a batch counts its files' sizes, a large file (streamed)
   * one read chunk. The job being written always goes, whatever its size. @default 32 MiB
   */
  readonly windowBytes?: number;
}

/**
 * Writes the files as a zip, in the order given, with their unix modes (exec bits), their
 * mtimes, and symlinks as entries holding their target. Deflate level 1 (a buildspec cannot set
 * CodeBuild's level either, so nothing depends on it); an entry is stored when deflate does not
 * make it smaller, and a large file whose start does not compress (an image, an archive, a
 * binary) is stored without deflating it at all, as deflating such data costs seconds per
 * hundred megabytes and saves nothing.
 *
 * Entries are prepared ahead in a bounded window, in parallel, and written strictly in order.
 * Small files go in batches to worker threads (one per core) that read them, take their CRC-32
 * natively (`zlib.crc32`) and deflate them: one message per batch costs far less than the
 * thread-pool round trips and the zlib stream object that `readFile` and `zlib.deflateRaw` cost
 * per file. A large file is streamed, never held in memory: stored, its CRC-32 is taken in one
 * read pass and the file streamed into the zip; deflated, it is stream-deflated on the thread
 * pool into a temporary file next to the zip (CRC-32 taken on the way), which is then streamed
 * into the zip and deleted.
 *
 * Written by hand on `RawZipWriter` rather than with a zip library: yazl takes 1.7-2x its CPU
 * time on the bench's sources (BENCHMARKS.md section 7, bench/zip-writer.ts), as yazl 3.3 and
 * archiver 8 (zip-stream) handle one entry at a time with a JavaScript CRC-32 and cannot take a
 * CRC-32 and compressed data computed elsewhere, so they cannot spread the work over the cores.
 *
 * A file that cannot be read (deleted since it was collected) fails with an `ArtifactsError`
 * naming it, and no zip is left behind.
 */
export async function writeZip(
  files: ReadonlyArray<ArtifactFile>,
  zipPath: string,
  options: WriteZipOptions = {},
): Promise<void> {
  const window = Math.max(1, options.window ?? 16);
  const temp = await mkdtemp(join(dirname(zipPath), '.zip-parts-'));
  // One worker per core, and no more than there can be batches waiting; none for a single batch.
  const pool = new DeflatePool(files.length <= BATCH_FILES ? 0 : Math.min(availableParallelism(), window));
  const abort = new AbortController();
  const zip = new RawZipWriter({ signal: abort.signal });
  const out = createWriteStream(zipPath, { highWaterMark: STREAM_CHUNK });
  let created = false;
  out.once('open', () => (created = true));
  let writeError: Error | undefined;
  // Never rejects: it is awaited only at the end, and a failed write must not go unhandled before then.
  const written = pipeline(zip.output, out).catch((error: Error) => {
    writeError ??= error;
    abort.abort(error);
  });
  try {
    await addEntries(zip, files, { temp, pool, window, windowBytes: options.windowBytes ?? 32 * 1024 * 1024 });
    await zip.end();
    await written;
    if (writeError) throw writeError;
  } catch (error) {
    // Taken before destroying the output, which fails the write too (premature close).
    const cause = writeError;
    zip.output.destroy();
    await written;
    // Only a zip this call created: a path that could not be opened may be someone else's (a folder).
    if (created) await rm(zipPath, { force: true });
    throw cause ? new ArtifactsError(`cannot write the artifact zip ${zipPath}: ${cause.message}`, { cause }) : error;
  } finally {
    await pool.close();
    await rm(temp, { recursive: true, force: true });
  }
}

/** Whether deflate saves at least 5% on the file's first 256 KiB (always true below SAMPLED_FILE_BYTES). */
export function compresses(path: string, size: number): boolean {
  if (size < SAMPLED_FILE_BYTES) return true;
  const sample = Buffer.alloc(SAMPLE_BYTES);
  const fd = openSync(path, 'r');
  let read: number;
  try {
    read = readSync(fd, sample, 0, SAMPLE_BYTES, 0);
  } finally {
    closeSync(fd);
  }
  return deflateRawSync(sample.subarray(0, read), { level: LEVEL }).length < 0.95 * read;
}

/** An entry ready to be written: its final header fields, and its data to stream. */
interface PreparedEntry {
  readonly file: ArtifactFile;
  readonly entry: RawEntry;
  readonly data: () => AsyncIterable<Buffer> | Iterable<Buffer>;
  /** Run once the entry is written (deletes a temporary file). */
  readonly written?: () => Promise<void>;
}

/** Consecutive files prepared together: a batch of small files, or one large file or symlink. */
interface Job {
  readonly prepared: Promise<ReadonlyArray<PreparedEntry>>;
  readonly bytes: number;
}

interface Context {
  readonly temp: string;
  readonly pool: DeflatePool;
  readonly window: number;
  readonly windowBytes: number;
}

async function addEntries(zip: RawZipWriter, files: ReadonlyArray<ArtifactFile>, context: Context): Promise<void> {
  const ahead: Job[] = [];
  let held = 0;
  let next = 0;
  // lstat of files[statIndex]: a file that did not fit in the window is not stat'ed twice.
  let statIndex = -1;
  let statOfIndex: Stats | undefined;
  const statOf = (i: number): Stats => {
    if (statIndex !== i) {
      const file = files[i] as ArtifactFile;
      statOfIndex = named(file, () => lstatSync(file.path));
      statIndex = i;
    }
    return statOfIndex as Stats;
  };
  // Whether `bytes` more fit in the window; something must always be in it.
  const fits = (bytes: number): boolean => held + bytes <= context.windowBytes || ahead.length === 0;

  const takeJob = (): Job | undefined => {
    const first = files[next] as ArtifactFile;
    const stats = statOf(next);
    if (first.symlinkTarget !== undefined || stats.size >= SAMPLED_FILE_BYTES) {
      const bytes = first.symlinkTarget === undefined ? STREAM_CHUNK : 0;
      if (!fits(bytes)) return undefined;
      next += 1;
      return { prepared: prepareOne(first, stats, join(context.temp, String(next))).then((p) => [p]), bytes };
    }
    const batch: Array<{ file: ArtifactFile; stats: Stats }> = [];
    let bytes = 0;
    while (next < files.length && batch.length < BATCH_FILES) {
      const file = files[next] as ArtifactFile;
      const s = statOf(next);
      if (file.symlinkTarget !== undefined || s.size >= SAMPLED_FILE_BYTES) break;
      if (batch.length > 0 && bytes + s.size > BATCH_BYTES) break;
      if (!fits(bytes + s.size)) break;
      batch.push({ file, stats: s });
      bytes += s.size;
      next += 1;
    }
    if (batch.length === 0) return undefined;
    return { prepared: prepareBatch(context.pool, batch), bytes };
  };

  try {
    while (next < files.length || ahead.length > 0) {
      while (next < files.length && ahead.length < context.window) {
        const job = takeJob();
        if (!job) break;
        // Awaited in order below; until then, a failure must not count as unhandled.
        job.prepared.catch(() => undefined);
        ahead.push(job);
        held += job.bytes;
      }
      const head = ahead[0] as Job;
      for (const { file, entry, data, written } of await head.prepared) {
        await namedAsync(file, zip.addRawEntry(entry, data()));
        await written?.();
      }
      ahead.shift();
      held -= head.bytes;
    }
  } catch (error) {
    // Nothing may still be writing temporary files when the caller deletes them.
    await Promise.allSettled(
      ahead.map((job) => job.prepared.then((entries) => Promise.all(entries.map((e) => e.written?.())))),
    );
    throw error;
  }
}

function fieldsOf(file: ArtifactFile, stats: Stats): Pick<RawEntry, 'name' | 'mode' | 'mtime'> {
  return {
    name: file.name,
    mode: file.symlinkTarget === undefined ? stats.mode : SYMLINK_MODE,
    mtime: toDosDateTime(stats.mtime),
  };
}

async function prepareBatch(
  pool: DeflatePool,
  batch: ReadonlyArray<{ file: ArtifactFile; stats: Stats }>,
): Promise<PreparedEntry[]> {
  const { results, data: batchData } = await pool.deflate(batch.map((b) => b.file.path)).catch((error: Error) => {
    const names = `${JSON.stringify(batch[0]?.file.name)} to ${JSON.stringify(batch[batch.length - 1]?.file.name)}`;
    throw new ArtifactsError(`cannot zip artifact files ${names}: ${error.message}`, { cause: error });
  });
  return batch.map(({ file, stats }, i) => {
    const result = results[i] as DeflateResult;
    if ('error' in result) throw namingFile(file, new Error(result.error));
    const data = Buffer.from(batchData.buffer, batchData.byteOffset + result.offset, result.length);
    const entry: RawEntry = {
      ...fieldsOf(file, stats),
      compressionMethod: result.deflated ? DEFLATED : STORED,
      crc32: result.crc32,
      compressedSize: data.length,
      uncompressedSize: result.size,
    };
    return { file, entry, data: () => [data] };
  });
}

async function prepareOne(file: ArtifactFile, stats: Stats, tempPath: string): Promise<PreparedEntry> {
  try {
    if (file.symlinkTarget !== undefined) {
      const target = Buffer.from(file.symlinkTarget);
      const sizes = { compressedSize: target.length, uncompressedSize: target.length };
      return {
        file,
        entry: { ...fieldsOf(file, stats), compressionMethod: STORED, crc32: crc32(target), ...sizes },
        data: () => [target],
      };
    }
    if (!compresses(file.path, stats.size)) return largeStored(file, stats, await streamCrc(file.path));
    return await largeDeflated(file, stats, tempPath);
  } catch (error) {
    throw namingFile(file, error);
  }
}

interface Checksummed {
  readonly crc32: number;
  readonly size: number;
}

async function streamCrc(path: string): Promise<Checksummed> {
  let crc = 0;
  let size = 0;
  for await (const chunk of createReadStream(path, { highWaterMark: STREAM_CHUNK }) as AsyncIterable<Buffer>) {
    crc = crc32(chunk, crc);
    size += chunk.length;
  }
  return { crc32: crc, size };
}

function largeStored(file: ArtifactFile, stats: Stats, sum: Checksummed): PreparedEntry {
  const entry = {
    ...fieldsOf(file, stats),
    compressionMethod: STORED,
    crc32: sum.crc32,
    compressedSize: sum.size,
    uncompressedSize: sum.size,
  };
  return { file, entry, data: () => createReadStream(file.path, { highWaterMark: STREAM_CHUNK }) };
}

async function largeDeflated(file: ArtifactFile, stats: Stats, tempPath: string): Promise<PreparedEntry> {
  let crc = 0;
  let size = 0;
  await pipeline(
    createReadStream(file.path, { highWaterMark: STREAM_CHUNK }),
    async function* (source: AsyncIterable<Buffer>) {
      for await (const chunk of source) {
        crc = crc32(chunk, crc);
        size += chunk.length;
        yield chunk;
      }
    },
    createDeflateRaw({ level: LEVEL }),
    createWriteStream(tempPath),
  );
  const compressedSize = (await stat(tempPath)).size;
  const written = (): Promise<void> => rm(tempPath, { force: true });
  if (compressedSize >= size) {
    await written();
    return largeStored(file, stats, { crc32: crc, size });
  }
  const entry = {
    ...fieldsOf(file, stats),
    compressionMethod: DEFLATED,
    crc32: crc,
    compressedSize,
    uncompressedSize: size,
  };
  return { file, entry, data: () => createReadStream(tempPath, { highWaterMark: STREAM_CHUNK }), written };
}

/**
 * What a worker answers for one file: where its data (as it goes in the zip) is in the batch's
 * buffer, or why it could not be read.
 */
type DeflateResult =
  | {
      readonly crc32: number;
      readonly size: number;
      readonly deflated: boolean;
      readonly offset: number;
      readonly length: number;
    }
  | { readonly error: string };

interface BatchReply {
  readonly results: DeflateResult[];
  /** The data of every file of the batch, one after the other. */
  readonly data: Uint8Array;
}

/**
 * Run by each worker (and in this thread for a single batch): reads, checksums and deflates a
 * batch of small files. JavaScript source rather than a module file, so that it runs the same
 * under tsx, jest and a bundle. Files are read into one buffer kept for the worker's life, and a
 * batch's data goes back as one transferred buffer: allocating per file (readFileSync, a copy per
 * message) left tens of MB of garbage for the workers' lazy GC on the bench's source.
 */
const BATCH_SOURCE = `
const { closeSync, openSync, readSync } = require('node:fs');
const { crc32, deflateRawSync } = require('node:zlib');
let input = Buffer.allocUnsafeSlow(${SAMPLED_FILE_BYTES});
function read(path) {
  const fd = openSync(path, 'r');
  try {
    let size = 0;
    for (;;) {
      // A file may have grown since it was stat'ed: then the buffer grows too.
      if (size === input.length) input = Buffer.concat([input, Buffer.allocUnsafeSlow(input.length)]);
      const n = readSync(fd, input, size, input.length - size, null);
      if (n === 0) return input.subarray(0, size);
      size += n;
    }
  } finally {
    closeSync(fd);
  }
}
function deflateBatch(paths, level) {
  const parts = [];
  let offset = 0;
  const results = paths.map((path) => {
    try {
      const content = read(path);
      // chunkSize: the whole output in one allocation for text-like data.
      const deflated = content.length > 0 ? deflateRawSync(content, { level, chunkSize: Math.max(1024, content.length) }) : content;
      const smaller = deflated.length < content.length;
      // content is the read buffer, which the next file overwrites.
      parts.push(smaller ? deflated : Buffer.from(content));
      const length = smaller ? deflated.length : content.length;
      offset += length;
      return { crc32: crc32(content), size: content.length, deflated: smaller, offset: offset - length, length };
    } catch (error) {
      return { error: error.message };
    }
  });
  const data = Buffer.allocUnsafeSlow(offset);
  let at = 0;
  for (const part of parts) at += part.copy(data, at);
  return { results, data };
}
`;

const WORKER_SOURCE = `${BATCH_SOURCE}
const { parentPort } = require('node:worker_threads');
parentPort.on('message', ({ paths, level }) => {
  const { results, data } = deflateBatch(paths, level);
  parentPort.postMessage({ results, data }, [data.buffer]);
});
`;

/**
 * The same batch function in this thread, for a zip whose small files fit in one batch: no
 * parallelism to gain there, and starting a worker costs more than that batch (and a deployment
 * runs three builds).
 */
let inlineBatch: ((paths: ReadonlyArray<string>, level: number) => BatchReply) | undefined;
function deflateInline(paths: ReadonlyArray<string>): BatchReply {
  inlineBatch ??= new Function('require', `${BATCH_SOURCE}\nreturn deflateBatch;`)(require) as typeof inlineBatch;
  return inlineBatch!(paths, LEVEL);
}

interface Task {
  readonly paths: ReadonlyArray<string>;
  readonly resolve: (reply: BatchReply) => void;
  readonly reject: (error: Error) => void;
}

/**
 * Worker threads that deflate batches of small files, started on first use, one batch per
 * worker at a time. A worker that dies (out of memory) fails every batch not yet answered:
 * the zip cannot be finished anyway, and no batch may wait forever for a worker.
 */
class DeflatePool {
  private readonly workers: Worker[] = [];
  private readonly idle: Worker[] = [];
  private readonly busy = new Map<Worker, Task>();
  private readonly queue: Task[] = [];
  private failure: Error | undefined;

  /** `maxWorkers` 0: every batch in this thread. */
  constructor(private readonly maxWorkers: number) {}

  deflate(paths: ReadonlyArray<string>): Promise<BatchReply> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.maxWorkers === 0) return Promise.resolve().then(() => deflateInline(paths));
    return new Promise((resolve, reject) => {
      this.queue.push({ paths, resolve, reject });
      if (this.idle.length === 0 && this.workers.length < this.maxWorkers) this.start();
      this.dispatch();
    });
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }

  private start(): void {
    const worker = new Worker(WORKER_SOURCE, { eval: true });
    worker.on('message', (reply: BatchReply) => {
      const task = this.busy.get(worker);
      this.busy.delete(worker);
      this.idle.push(worker);
      task?.resolve(reply);
      this.dispatch();
    });
    worker.on('error', (error: Error) => this.fail(error));
    this.workers.push(worker);
    this.idle.push(worker);
  }

  private fail(error: Error): void {
    this.failure ??= error;
    for (const task of [...this.busy.values(), ...this.queue.splice(0)]) task.reject(error);
    this.busy.clear();
  }

  private dispatch(): void {
    while (!this.failure && this.idle.length > 0 && this.queue.length > 0) {
      const worker = this.idle.pop() as Worker;
      const task = this.queue.shift() as Task;
      this.busy.set(worker, task);
      worker.postMessage({ paths: task.paths, level: LEVEL });
    }
  }
}

function namingFile(file: ArtifactFile, error: unknown): ArtifactsError {
  if (error instanceof ArtifactsError) return error;
  return new ArtifactsError(
    `cannot zip artifact file ${JSON.stringify(file.name)} (${file.path}): ${(error as Error).message}`,
    { cause: error },
  );
}

function named<T>(file: ArtifactFile, run: () => T): T {
  try {
    return run();
  } catch (error) {
    throw namingFile(file, error);
  }
}

async function namedAsync<T>(file: ArtifactFile, promise: Promise<T>): Promise<T> {
  try {
    return await promise;
  } catch (error) {
    throw namingFile(file, error);
  }
}
