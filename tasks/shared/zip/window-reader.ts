import { PassThrough, type Readable } from 'node:stream';
import type { FileHandle } from 'node:fs/promises';
import { createReadStream } from 'node:fs';
import * as yauzl from 'yauzl';

/** Where a WindowReader gets its bytes: an object in S3 (ranged GETs), a file. */
export interface WindowSource {
  /** What is read, for errors: s3://bucket/key, a path. */
  readonly name: string;
  /** Exactly the bytes [start, end). */
  read(start: number, end: number): Promise<Buffer>;
  /** The bytes [start, end) as a stream, for a range larger than a window; without it such a range is read whole. */
  stream?(start: number, end: number): Readable;
}

export interface WindowOptions {
  /** Bytes read at once: a read that misses every window reads this much from where it starts. */
  readonly windowBytes: number;
  /** Windows kept, the least recently used replaced first: one per place read in turn (the directory, the entries' data). */
  readonly windows: number;
}

interface Window {
  readonly start: number;
  readonly bytes: Buffer;
}

/**
 * A yauzl reader that serves reads from a few windows of its source, each filled by one read
 * of `windowBytes` when a read falls outside them all. yauzl reads a zip in small pieces: a
 * directory record, a name, a local header, a small entry's data. Read one by one, each is a
 * round trip (a GET, a read on the thread pool); a window serves thousands of them. yauzl reads the directory front to back, and entries in
 * offset order when they are read in the directory's order, so one window per place it reads
 * in turn is enough. A range larger than a window streams from the source when it can.
 */
export class WindowReader extends yauzl.RandomAccessReader {
  /** Most recently used first. */
  private windows: Window[] = [];
  private pending: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly source: WindowSource,
    private readonly size: number,
    private readonly options: WindowOptions,
  ) {
    super();
  }

  override read(
    buffer: Buffer,
    offset: number,
    length: number,
    position: number,
    callback: (err: Error | null, bytesRead?: number) => void,
  ): void {
    this.served(position, position + length).then(
      (bytes) => {
        bytes.copy(buffer, offset);
        callback(null, bytes.length);
      },
      (err: unknown) => callback(err as Error),
    );
  }

  /** The bytes [start, end), a copy (a view would keep the whole window alive as long as it is held). */
  async bytes(start: number, end: number): Promise<Buffer> {
    return Buffer.from(await this.served(start, end));
  }

  override _readStreamForRange(start: number, end: number): Readable {
    if (this.source.stream !== undefined && end - start > this.options.windowBytes)
      return this.source.stream(start, end);
    const out = new PassThrough();
    this.served(start, end).then(
      // A copy: a view would keep the whole window alive for as long as its consumer holds the chunk.
      (bytes) => out.end(Buffer.from(bytes)),
      (err: unknown) => out.destroy(err as Error),
    );
    return out;
  }

  /** One read at a time, so that two reads of one window read it once. A failed read fails every read after it. */
  private served(start: number, end: number): Promise<Buffer> {
    const next = this.pending.then(() => this.cover(start, end));
    this.pending = next;
    return next;
  }

  private async cover(start: number, end: number): Promise<Buffer> {
    const at = this.windows.findIndex((w) => start >= w.start && end <= w.start + w.bytes.length);
    if (at >= 0) {
      const window = this.windows[at]!;
      if (at > 0) this.windows = [window, ...this.windows.slice(0, at), ...this.windows.slice(at + 1)];
      return window.bytes.subarray(start - window.start, end - window.start);
    }
    const to = Math.min(this.size, Math.max(end, start + this.options.windowBytes));
    const bytes = await this.source.read(start, to);
    if (bytes.length !== to - start)
      throw new Error(`asked for ${to - start} bytes at ${start} of ${this.source.name}, got ${bytes.length}`);
    // A new buffer per window, never one reused: a view handed out earlier keeps its bytes.
    this.windows = [{ start, bytes }, ...this.windows].slice(0, this.options.windows);
    return bytes.subarray(0, end - start);
  }
}

/** A file read through windows (the handle is closed with the reader); ranges larger than a window stream from the file. */
export function fileWindowReader(handle: FileHandle, path: string, size: number, options: WindowOptions): WindowReader {
  const reader = new WindowReader(
    {
      name: path,
      read: async (start, end) => {
        const bytes = Buffer.allocUnsafe(end - start);
        let filled = 0;
        while (filled < bytes.length) {
          const { bytesRead } = await handle.read(bytes, filled, bytes.length - filled, start + filled);
          if (bytesRead === 0) break;
          filled += bytesRead;
        }
        return bytes.subarray(0, filled);
      },
      stream: (start, end) => createReadStream(path, { start, end: end - 1 }),
    },
    size,
    options,
  );
  reader.close = (callback: (err: Error | null) => void): void => {
    handle.close().then(() => callback(null), callback);
  };
  return reader;
}
