import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { buffer as collect } from 'node:stream/consumers';
import * as yauzl from 'yauzl';
import {
  DEFLATED,
  fileWindowReader,
  RawZipWriter,
  STORED,
  toDosDateTime,
  WindowReader,
  type WindowSource,
  zipEntries,
} from '../../../../tasks/shared/zip';
import { crc32, deflateRawSync } from 'node:zlib';

const MTIME = toDosDateTime(new Date(2026, 0, 1, 12, 0, 0));

/** A source over `bytes` that records each read and stream it serves. */
function recorded(bytes: Buffer): WindowSource & { reads: Array<[number, number]>; streams: Array<[number, number]> } {
  const reads: Array<[number, number]> = [];
  const streams: Array<[number, number]> = [];
  return {
    name: 'test.zip',
    reads,
    streams,
    read: async (start, end) => {
      reads.push([start, end]);
      return Buffer.from(bytes.subarray(start, end));
    },
    stream: (start, end) => {
      streams.push([start, end]);
      return Readable.from([Buffer.from(bytes.subarray(start, end))]);
    },
  };
}

function readVia(reader: WindowReader, start: number, length: number): Promise<Buffer> {
  const out = Buffer.alloc(length);
  return new Promise((resolve, reject) =>
    reader.read(out, 0, length, start, (err) => (err ? reject(err) : resolve(out))),
  );
}

describe('WindowReader', () => {
  const bytes = randomBytes(1024 * 1024);

  it('serves reads from windows: one read of the source per window, the two places read in turn each keeping theirs', async () => {
    const source = recorded(bytes);
    const reader = new WindowReader(source, bytes.length, { windowBytes: 64 * 1024, windows: 2 });
    // Two places read in turn, as yauzl reads a directory record, then an entry's local header and data.
    for (let i = 0; i < 100; i++) {
      const directory = 900_000 + i * 50;
      const data = 1000 + i * 300;
      expect(await readVia(reader, directory, 46)).toEqual(bytes.subarray(directory, directory + 46));
      expect(await collect(reader.createReadStream({ start: data, end: data + 200 }) as Readable)).toEqual(
        bytes.subarray(data, data + 200),
      );
    }
    expect(source.reads).toEqual([
      [900_000, 900_000 + 64 * 1024],
      [1000, 1000 + 64 * 1024],
    ]);
  });

  it('reads again what a third place pushed out (least recently used first), and never past the end', async () => {
    const source = recorded(bytes);
    const reader = new WindowReader(source, bytes.length, { windowBytes: 64 * 1024, windows: 2 });
    await readVia(reader, 0, 10);
    await readVia(reader, 200_000, 10);
    await readVia(reader, 0, 10);
    await readVia(reader, 500_000, 10); // pushes out 200,000, used least recently
    await readVia(reader, 0, 10);
    await readVia(reader, 200_000, 10);
    expect(await readVia(reader, bytes.length - 5, 5)).toEqual(bytes.subarray(bytes.length - 5));
    expect(source.reads.map(([start]) => start)).toEqual([0, 200_000, 500_000, 200_000, bytes.length - 5]);
    expect(source.reads.at(-1)).toEqual([bytes.length - 5, bytes.length]);
  });

  it('streams a range larger than a window from the source, without filling a window', async () => {
    const source = recorded(bytes);
    const reader = new WindowReader(source, bytes.length, { windowBytes: 64 * 1024, windows: 2 });
    expect(await collect(reader.createReadStream({ start: 10, end: 300_010 }) as Readable)).toEqual(
      bytes.subarray(10, 300_010),
    );
    expect(source.streams).toEqual([[10, 300_010]]);
    expect(source.reads).toEqual([]);
  });

  it('fails a read the source answers short, naming what it read, and every read after it', async () => {
    const short: WindowSource = {
      name: 'the-snapshot.zip',
      read: async (start, end) => Buffer.from(bytes.subarray(start, end - 1)),
    };
    const reader = new WindowReader(short, bytes.length, { windowBytes: 1024, windows: 2 });
    await expect(readVia(reader, 0, 10)).rejects.toThrow('asked for 1024 bytes at 0 of the-snapshot.zip, got 1023');
    await expect(readVia(reader, 5000, 10)).rejects.toThrow('asked for 1024 bytes at 0');
  });
});

describe('fileWindowReader', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'window-reader-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('reads a zip of 3,000 small entries and a large one exactly, through yauzl, and closes the file with it', async () => {
    const zip = new RawZipWriter();
    const out = collect(zip.output);
    const contents = new Map<string, Buffer>();
    for (let i = 0; i < 3000; i++) {
      const content = Buffer.from(`entry ${i} `.repeat(i % 7));
      const name = `d${i % 40}/f${i}.txt`;
      contents.set(name, content);
      const deflate = i % 2 === 0 && content.length > 0;
      const data = deflate ? deflateRawSync(content) : content;
      await zip.addRawEntry(
        {
          name,
          mode: 0o100644,
          mtime: MTIME,
          compressionMethod: deflate ? DEFLATED : STORED,
          crc32: crc32(content),
          compressedSize: data.length,
          uncompressedSize: content.length,
        },
        [data],
      );
    }
    const big = randomBytes(3 * 1024 * 1024);
    contents.set('big.bin', big);
    await zip.addRawEntry(
      {
        name: 'big.bin',
        mode: 0o100644,
        mtime: MTIME,
        compressionMethod: STORED,
        crc32: crc32(big),
        compressedSize: big.length,
        uncompressedSize: big.length,
      },
      [big],
    );
    await zip.end();
    const file = join(dir, 'snapshot.zip');
    const zipBytes = await out;
    writeFileSync(file, zipBytes);

    const handle = await open(file, 'r');
    const zipfile = await yauzl.fromRandomAccessReaderPromise(
      fileWindowReader(handle, file, zipBytes.length, { windowBytes: 256 * 1024, windows: 2 }),
      zipBytes.length,
      { lazyEntries: true, autoClose: false },
    );
    const seen = new Map<string, Buffer>();
    for await (const entry of zipEntries(zipfile))
      seen.set(entry.fileName, await collect(await zipfile.openReadStreamPromise(entry)));
    const closed = new Promise((resolve) => zipfile.once('close', resolve));
    zipfile.close();
    await closed;
    expect(seen).toEqual(contents);
    // The handle is closed: reading it fails.
    await expect(handle.read(Buffer.alloc(1), 0, 1, 0)).rejects.toThrow();
  });
});
