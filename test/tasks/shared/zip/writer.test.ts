import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  symlinkSync,
  writeFileSync,
  chmodSync,
  readFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { buffer as collect } from 'node:stream/consumers';
import { crc32, deflateRawSync } from 'node:zlib';
import * as yauzl from 'yauzl';
import {
  DEFLATED,
  type PlacedEntry,
  type RawEntry,
  RawZipWriter,
  STORED,
  toDosDateTime,
  zipEntries,
} from '../../../../tasks/shared/zip';
import { directoryEntry } from '../../../../tasks/combine-sources/snapshot';
import { makeZip, unzipTest, zipTool } from '../../../helpers/zip';

const MTIME = toDosDateTime(new Date(2025, 0, 1, 12, 0, 4));
const UTF8_ENV = { ...process.env, LANG: 'C.UTF-8', LC_ALL: 'C.UTF-8' };

interface ReadBack {
  readonly name: string;
  readonly mode: number;
  readonly compressionMethod: number;
  readonly crc32: number;
  readonly lastModFileDate: number;
  readonly lastModFileTime: number;
  /** Decompressed by yauzl, which checks the size but not the CRC-32: the tests compare it. */
  readonly content: Buffer;
}

async function readBack(zip: Buffer): Promise<ReadBack[]> {
  const zipfile = await yauzl.fromBufferPromise(zip, { lazyEntries: true, autoClose: false });
  const entries: ReadBack[] = [];
  try {
    for await (const entry of zipEntries(zipfile)) {
      const content = entry.fileName.endsWith('/')
        ? Buffer.alloc(0)
        : await collect(await zipfile.openReadStreamPromise(entry));
      entries.push({
        name: entry.fileName,
        mode: entry.externalFileAttributes >>> 16,
        compressionMethod: entry.compressionMethod,
        crc32: entry.crc32,
        lastModFileDate: entry.lastModFileDate,
        lastModFileTime: entry.lastModFileTime,
        content,
      });
    }
  } finally {
    zipfile.close();
  }
  return entries;
}

/** Runs `fill` against a writer whose output is read concurrently, as the upload reads it. */
async function writeZip(fill: (zip: RawZipWriter) => Promise<void>, forceZip64 = false): Promise<Buffer> {
  const zip = new RawZipWriter({ forceZip64 });
  const bytes = collect(zip.output);
  await fill(zip);
  await zip.end();
  return bytes;
}

/** Copies every entry of `source` raw, the way combine-sources does. */
async function copyAll(source: Buffer, zip: RawZipWriter, prefix = ''): Promise<void> {
  const zipfile = await yauzl.fromBufferPromise(source, { lazyEntries: true, autoClose: false });
  try {
    for await (const entry of zipEntries(zipfile)) {
      const raw: RawEntry = {
        name: prefix + entry.fileName,
        mode: entry.externalFileAttributes >>> 16,
        mtime: { date: entry.lastModFileDate, time: entry.lastModFileTime },
        compressionMethod: entry.compressionMethod,
        crc32: entry.crc32,
        compressedSize: entry.compressedSize,
        uncompressedSize: entry.uncompressedSize,
      };
      if (entry.fileName.endsWith('/')) await zip.addDirectory(raw.name, raw);
      else await zip.addRawEntry(raw, await zipfile.openReadStreamPromise(entry, { decodeFileData: false }));
    }
  } finally {
    zipfile.close();
  }
}

/** A zip with one of each kind of entry, written through every method of the writer. */
async function everyKind(forceZip64 = false): Promise<Buffer> {
  const text = Buffer.from('replicas: 2\n'.repeat(200));
  const random = randomBytes(300 * 1024);
  const deflated = deflateRawSync(text);
  return writeZip(async (zip) => {
    await zip.addBuffer('stepdeploy-manifest.json', Buffer.from('{"environment":"acceptance"}\n'), {
      mode: 0o100644,
      mtime: MTIME,
      compress: true,
    });
    await zip.addDirectory('config/', { mode: 0o40755, mtime: MTIME });
    await zip.addRawEntry(
      {
        name: 'config/settings.yml',
        mode: 0o100644,
        mtime: MTIME,
        compressionMethod: DEFLATED,
        crc32: crc32(text),
        compressedSize: deflated.length,
        uncompressedSize: text.length,
      },
      Readable.from([deflated.subarray(0, 10), deflated.subarray(10)]),
    );
    await zip.addRawEntry(
      {
        name: 'assets/blob.bin',
        mode: 0o100644,
        mtime: MTIME,
        compressionMethod: STORED,
        crc32: crc32(random),
        compressedSize: random.length,
        uncompressedSize: random.length,
      },
      Readable.from([random]),
    );
    await zip.addBuffer('stepdeploy/build', Buffer.from('#!/bin/sh\nrake run\n'), {
      mode: 0o100755,
      mtime: MTIME,
      compress: false,
    });
    await zip.addBuffer('empty.txt', Buffer.alloc(0), { mode: 0o100644, mtime: MTIME, compress: true });
    await zip.addBuffer('lib/settings.yml', Buffer.from('../config/settings.yml'), {
      mode: 0o120777,
      mtime: MTIME,
      compress: false,
    });
    await zip.addBuffer('docs/résumé-日本語.md', Buffer.from('# ünïcödé\n'), {
      mode: 0o100644,
      mtime: MTIME,
      compress: true,
    });
  }, forceZip64);
}

function onDisk(zip: Buffer): { file: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'raw-zip-writer-'));
  const file = join(dir, 'out.zip');
  writeFileSync(file, zip);
  return { file, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

describe('RawZipWriter', () => {
  it('writes names, modes, times, methods and contents that yauzl reads back with matching CRC-32s', async () => {
    const entries = await readBack(await everyKind());

    expect(entries.map((e) => [e.name, e.mode.toString(8), e.compressionMethod])).toEqual([
      ['stepdeploy-manifest.json', '100644', DEFLATED],
      ['config/', '40755', STORED],
      ['config/settings.yml', '100644', DEFLATED],
      ['assets/blob.bin', '100644', STORED],
      ['stepdeploy/build', '100755', STORED],
      ['empty.txt', '100644', STORED],
      ['lib/settings.yml', '120777', STORED],
      ['docs/résumé-日本語.md', '100644', DEFLATED],
    ]);
    for (const entry of entries) {
      expect({ name: entry.name, crc32: crc32(entry.content) }).toEqual({ name: entry.name, crc32: entry.crc32 });
      expect([entry.lastModFileDate, entry.lastModFileTime]).toEqual([MTIME.date, MTIME.time]);
    }
    const byName = new Map(entries.map((e) => [e.name, e.content.toString('utf8')]));
    expect(byName.get('config/settings.yml')).toBe('replicas: 2\n'.repeat(200));
    expect(byName.get('lib/settings.yml')).toBe('../config/settings.yml');
    expect(byName.get('empty.txt')).toBe('');
    expect(byName.get('docs/résumé-日本語.md')).toBe('# ünïcödé\n');
  });

  it('writes a zip that Info-ZIP tests clean (CRC-32s included) and lists with the unix modes', async () => {
    const { file, cleanup } = onDisk(await everyKind());
    try {
      const test = unzipTest(file, UTF8_ENV);
      const listing = zipTool('zipinfo', [file], { env: UTF8_ENV });

      expect(test).toContain('No errors detected');
      expect(listing).toMatch(/^-rwxr-xr-x .* stepdeploy\/build$/m);
      expect(listing).toMatch(/^drwxr-xr-x .* config\/$/m);
      expect(listing).toMatch(/^lrwxrwxrwx .* lib\/settings\.yml$/m);
      expect(listing).toMatch(/^-rw-r--r-- .* docs\/résumé-日本語\.md$/m);
      expect(listing).toContain('8 files');
    } finally {
      cleanup();
    }
  });

  it('copies the entries of a zip made by Info-ZIP raw, and Info-ZIP extracts the copy as the original', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'raw-zip-writer-src-'));
    try {
      mkdirSync(join(dir, 'src', 'bin'), { recursive: true });
      writeFileSync(join(dir, 'src', 'bin', 'run'), '#!/bin/sh\necho ok\n');
      chmodSync(join(dir, 'src', 'bin', 'run'), 0o755);
      writeFileSync(join(dir, 'src', 'notes.txt'), 'notes\n'.repeat(1000));
      writeFileSync(join(dir, 'src', 'empty'), '');
      symlinkSync('bin/run', join(dir, 'src', 'link'));
      zipTool('zip', ['-q', '-r', '-y', join(dir, 'source.zip'), '.'], { cwd: join(dir, 'src') });
      const combined = await writeZip((zip) => copyAll(readFileSync(join(dir, 'source.zip')), zip, 'app/'));
      writeFileSync(join(dir, 'combined.zip'), combined);

      zipTool('unzip', ['-q', join(dir, 'combined.zip'), '-d', join(dir, 'out')]);

      expect(unzipTest(join(dir, 'combined.zip'))).toContain('No errors detected');
      expect(readFileSync(join(dir, 'out', 'app', 'notes.txt'), 'utf8')).toBe('notes\n'.repeat(1000));
      expect(
        execFileSync('stat', ['-c', '%A', join(dir, 'out', 'app', 'bin', 'run')], { encoding: 'utf8' }).trim(),
      ).toBe('-rwxr-xr-x');
      expect(execFileSync('readlink', [join(dir, 'out', 'app', 'link')], { encoding: 'utf8' }).trim()).toBe('bin/run');
      expect(readFileSync(join(dir, 'out', 'app', 'empty'), 'utf8')).toBe('');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('copies a yazl zip entry for entry: same bytes of data, CRC-32 and sizes', async () => {
    const source = await makeZip([
      { name: 'a/', mode: 0o40755 },
      { name: 'a/big.txt', content: 'x'.repeat(100_000), mode: 0o100644 },
      { name: 'a/run.sh', content: '#!/bin/sh\n', mode: 0o100755 },
    ]);

    const copy = await writeZip((zip) => copyAll(source, zip));

    const [original, copied] = [await readBack(source), await readBack(copy)];
    expect(copied.map(({ name, mode, crc32: crc, content }) => ({ name, mode, crc, content }))).toEqual(
      original.map(({ name, mode, crc32: crc, content }) => ({ name, mode, crc, content })),
    );
  });

  it('writes ZIP64 extra fields and end records when forced, which yauzl and Info-ZIP read', async () => {
    const zip = await everyKind(true);
    const { file, cleanup } = onDisk(zip);
    try {
      const entries = await readBack(zip);
      const test = unzipTest(file, UTF8_ENV);

      expect(zip.includes(Buffer.from([0x50, 0x4b, 0x06, 0x06]))).toBe(true);
      expect(zip.includes(Buffer.from([0x50, 0x4b, 0x06, 0x07]))).toBe(true);
      expect(entries).toHaveLength(8);
      for (const entry of entries) expect(crc32(entry.content)).toBe(entry.crc32);
      expect(entries.find((e) => e.name === 'config/settings.yml')!.content.toString()).toBe(
        'replicas: 2\n'.repeat(200),
      );
      expect(test).toContain('No errors detected');
    } finally {
      cleanup();
    }
  });

  it('switches to the ZIP64 end records at 65535 entries', async () => {
    const count = 0xffff;

    const zip = await writeZip(async (z) => {
      for (let i = 0; i < count; i++) await z.addDirectory(`d${i}/`, { mode: 0o40755, mtime: MTIME });
    });

    const zipfile = await yauzl.fromBufferPromise(zip, { lazyEntries: true });
    zipfile.close();
    expect(zipfile.entryCount).toBe(count);
    expect(zip.includes(Buffer.from([0x50, 0x4b, 0x06, 0x06]))).toBe(true);
  });

  it('waits for the reader: an unread output holds back the entry instead of buffering it', async () => {
    const data = randomBytes(4 * 1024 * 1024);
    const zip = new RawZipWriter();
    let done = false;
    const adding = zip
      .addRawEntry(
        {
          name: 'big.bin',
          mode: 0o100644,
          mtime: MTIME,
          compressionMethod: STORED,
          crc32: crc32(data),
          compressedSize: data.length,
          uncompressedSize: data.length,
        },
        Readable.from([data.subarray(0, 2 ** 21), data.subarray(2 ** 21)]),
      )
      .then(() => {
        done = true;
      });
    await new Promise((resolve) => setTimeout(resolve, 50));

    expect(done).toBe(false);
    // The header and the first chunk; the second waits for the reader.
    expect(zip.output.readableLength).toBeLessThanOrEqual(2 ** 21 + 1024);
    const bytes = collect(zip.output);
    await adding;
    await zip.end();
    expect((await readBack(await bytes))[0]!.content.equals(data)).toBe(true);
  });

  it('stops waiting for a reader that is gone when its signal is aborted', async () => {
    const stop = new AbortController();
    const zip = new RawZipWriter({ signal: stop.signal });
    const data = randomBytes(1024 * 1024);
    const adding = zip.addRawEntry(
      {
        name: 'big.bin',
        mode: 0o100644,
        mtime: MTIME,
        compressionMethod: STORED,
        crc32: crc32(data),
        compressedSize: data.length,
        uncompressedSize: data.length,
      },
      Readable.from([data]),
    );

    stop.abort();

    await expect(adding).rejects.toMatchObject({ name: 'AbortError' });
  });

  it('fails when the data is shorter or longer than the directory says', async () => {
    const entry = {
      name: 'x.bin',
      mode: 0o100644,
      mtime: MTIME,
      compressionMethod: STORED,
      crc32: 0,
      compressedSize: 10,
      uncompressedSize: 10,
    };
    const zip = new RawZipWriter();
    zip.output.resume();

    await expect(zip.addRawEntry(entry, Readable.from([Buffer.alloc(4)]))).rejects.toThrow(
      '"x.bin": its data ends after 4 bytes, the zip\'s directory says 10',
    );
    await expect(zip.addRawEntry(entry, Readable.from([Buffer.alloc(8), Buffer.alloc(8)]))).rejects.toThrow(
      'longer than the 10 bytes',
    );
  });

  it('fails on a compression method other than stored or deflated', async () => {
    const zip = new RawZipWriter();

    await expect(
      zip.addRawEntry(
        {
          name: 'x.bz2',
          mode: 0o100644,
          mtime: MTIME,
          compressionMethod: 12,
          crc32: 0,
          compressedSize: 0,
          uncompressedSize: 0,
        },
        Readable.from([]),
      ),
    ).rejects.toThrow('compression method 12 is not supported');
  });
});

describe('RawZipWriter.addCopiedEntries (a range of an earlier zip, copied by someone else)', () => {
  const first = (name: string) => async (zip: RawZipWriter) =>
    zip.addBuffer(name, Buffer.from(`{"execution": "${name}"}\n`.repeat(3)), {
      mode: 0o100644,
      mtime: MTIME,
      compress: true,
    });

  /** An earlier zip: one first entry, then the range; and the range's entries, offsets from its start. */
  async function earlier(forceZip64: boolean) {
    const zip = new RawZipWriter({ forceZip64 });
    const bytes = collect(zip.output);
    await first('a-much-longer-first-entry.json')(zip);
    const rangeStart = zip.position;
    await copyAll(await everyKind(), zip, 'app/');
    const rangeLength = zip.position - rangeStart;
    await zip.end();
    const all = await bytes;
    return {
      zip: all,
      range: all.subarray(rangeStart, rangeStart + rangeLength),
      entries: await directoryOf(all, rangeStart),
    };
  }

  /** The entries after the first as the zip's directory lists them, offsets from `rangeStart`, without their flags: their local headers are this writer's. */
  async function directoryOf(zip: Buffer, rangeStart: number): Promise<PlacedEntry[]> {
    const zipfile = await yauzl.fromBufferPromise(zip, { lazyEntries: true, autoClose: false, decodeStrings: false });
    const entries: PlacedEntry[] = [];
    try {
      for await (const e of zipEntries(zipfile)) {
        const { foreignFlags: _flags, ...entry } = directoryEntry(e);
        entries.push({ entry, offset: e.relativeOffsetOfLocalHeader - rangeStart });
      }
    } finally {
      zipfile.close();
    }
    return entries.slice(1);
  }

  /** A new zip: its own first entry, the earlier range as it is, and a directory for both. */
  async function assemble(forceZip64: boolean): Promise<{ original: Buffer; assembled: Buffer }> {
    const { zip: original, range, entries } = await earlier(forceZip64);
    const zip = new RawZipWriter({ forceZip64 });
    const bytes = collect(zip.output);
    await first('b.json')(zip);
    const headLength = zip.position;
    // As a directory streams in: one entry at a time.
    await zip.addCopiedEntries(
      (async function* () {
        yield* entries;
      })(),
      range.length,
    );
    await zip.end();
    const written = await bytes;
    return {
      original,
      assembled: Buffer.concat([written.subarray(0, headLength), range, written.subarray(headLength)]),
    };
  }

  it.each([false, true])(
    'makes a zip (forceZip64 %s) that yauzl reads as the earlier one, but its first entry, and Info-ZIP tests clean',
    async (forceZip64) => {
      const { original, assembled } = await assemble(forceZip64);

      const [before, after] = [await readBack(original), await readBack(assembled)];
      expect(after.map((e) => e.name)).toEqual(['b.json', ...before.slice(1).map((e) => e.name)]);
      expect(after.slice(1)).toEqual(before.slice(1));
      const { file, cleanup } = onDisk(assembled);
      try {
        expect(unzipTest(file, UTF8_ENV)).toContain('No errors detected');
      } finally {
        cleanup();
      }
    },
  );

  it('writes ZIP64 directory records for copied entries that land beyond 4 GiB', async () => {
    const huge = {
      name: 'huge.bin',
      mode: 0o100644,
      mtime: MTIME,
      compressionMethod: STORED,
      crc32: 1,
      compressedSize: 5 * 2 ** 30,
      uncompressedSize: 5 * 2 ** 30,
    };
    const small = { ...huge, name: 'small.txt', compressedSize: 10, uncompressedSize: 10 };
    // 30-byte header + the name + a 20-byte ZIP64 extra field (the sizes), then the data.
    const smallOffset = 30 + 'huge.bin'.length + 20 + huge.compressedSize;
    const zip = new RawZipWriter();
    const bytes = collect(zip.output);
    await first('m.json')(zip);
    const headLength = zip.position;

    await zip.addCopiedEntries(
      [
        { entry: huge, offset: 0 },
        { entry: small, offset: smallOffset },
      ],
      smallOffset + 30 + 'small.txt'.length + 10,
    );
    await zip.end();

    const tail = (await bytes).subarray(headLength);
    const records = [...tail.toString('latin1').matchAll(/PK\x01\x02/g)].map((m) => m.index!);
    const smallRecord = tail.subarray(records[2]!);
    expect(smallRecord.readUInt32LE(42)).toBe(0xffffffff);
    // Its ZIP64 extra field: uncompressed size, compressed size, then the offset.
    const extra = smallRecord.subarray(46 + 'small.txt'.length);
    expect(extra.readUInt16LE(0)).toBe(0x0001);
    expect(Number(extra.readBigUInt64LE(20))).toBe(headLength + smallOffset);
    expect(tail.includes(Buffer.from([0x50, 0x4b, 0x06, 0x06]))).toBe(true);
  });

  it('fails when the entries do not tile the range exactly', async () => {
    const { range, entries } = await earlier(false);
    const shifted = entries.map((e, i) => (i === 2 ? { ...e, offset: e.offset + 1 } : e));

    await expect(new RawZipWriter().addCopiedEntries(shifted, range.length)).rejects.toThrow(
      `copied entry "${entries[2]!.entry.name}" is at offset`,
    );
    await expect(new RawZipWriter().addCopiedEntries(entries, range.length + 1)).rejects.toThrow(
      `the range is ${range.length + 1} bytes`,
    );
    await expect(new RawZipWriter().addCopiedEntries(entries, range.length - 1)).rejects.toThrow(
      `ends after the range's ${range.length - 1} bytes`,
    );
  });

  it('takes entries with copied local headers (foreignFlags) as at least their header, name and data long', async () => {
    const { range, entries } = await earlier(false);
    // A copied local header may carry extra fields: the next entry may start further on, never sooner.
    const foreign = entries.map(({ entry, offset }) => ({ entry: { ...entry, foreignFlags: 0x0800 }, offset }));
    const sooner = foreign.map((e, i) => (i === 2 ? { ...e, offset: e.offset - 1 } : e));

    // The last local header may hold 7 more bytes (an extra field) than its own header would.
    await expect(new RawZipWriter().addCopiedEntries(foreign, range.length + 7)).resolves.toBeUndefined();
    await expect(new RawZipWriter().addCopiedEntries(entries, range.length + 7)).rejects.toThrow(
      `the range is ${range.length + 7} bytes`,
    );
    await expect(new RawZipWriter().addCopiedEntries(sooner, range.length)).rejects.toThrow(
      `copied entry "${entries[2]!.entry.name}" is at offset`,
    );
  });
});

describe('RawZipWriter directory', () => {
  it('keeps 60,000 records (several 1 MiB slabs) in order, and says where the directory is', async () => {
    const zip = new RawZipWriter();
    const bytes = collect(zip.output);
    const names: string[] = [];
    for (let i = 0; i < 60_000; i++) {
      const name = `src/${String(i % 97).padStart(3, '0')}/a-fairly-long-file-name-${i}.txt`;
      names.push(name);
      await zip.addBuffer(name, Buffer.from(String(i)), { mode: 0o100644, mtime: MTIME, compress: false });
    }
    const layout = await zip.end();
    const written = await bytes;

    expect(layout.entryCount).toBe(60_000);
    expect(layout.size).toBe(written.length);
    expect(written.readUInt32LE(layout.directoryOffset)).toBe(0x02014b50);
    // Over 1 MiB of records: more than one slab.
    expect(layout.directorySize).toBeGreaterThan(2 * 1024 * 1024);
    const zipfile = await yauzl.fromBufferPromise(written, { lazyEntries: true, autoClose: false });
    const read: string[] = [];
    try {
      for await (const e of zipEntries(zipfile)) {
        read.push(e.fileName);
        if (read.length % 20_000 === 1)
          expect((await collect(await zipfile.openReadStreamPromise(e))).toString()).toBe(String(read.length - 1));
      }
    } finally {
      zipfile.close();
    }
    expect(read).toEqual(names);
  });

  it('spills records past spillAfterBytes to an unlinked file and writes the same zip, closing the file when the output closes', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'raw-zip-spill-'));
    const openFiles = (): number => readdirSync('/proc/self/fd').length;
    try {
      const write = async (options: ConstructorParameters<typeof RawZipWriter>[0]): Promise<Buffer> => {
        const zip = new RawZipWriter(options);
        const bytes = collect(zip.output);
        for (let i = 0; i < 40_000; i++) {
          await zip.addBuffer(`src/${i % 50}/a-fairly-long-file-name-${i}.txt`, Buffer.from(String(i)), {
            mode: 0o100644,
            mtime: MTIME,
            compress: false,
          });
        }
        // Nothing is ever visible in the folder: the spill file is unlinked once opened.
        expect(readdirSync(dir)).toEqual([]);
        await zip.end();
        return bytes;
      };
      const before = openFiles();
      const inMemory = await write({});
      const spilled = await write({ spillDir: dir, spillAfterBytes: 1024 * 1024 });
      // ~4 MB of records: the first slab stays in memory, the next ones spill, the last is current.
      expect(spilled.equals(inMemory)).toBe(true);
      await new Promise((resolve) => setImmediate(resolve));
      expect(openFiles()).toBe(before);
      expect(readdirSync(dir)).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('closes a spill file when the output is destroyed before the end, and refuses to end then', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'raw-zip-spill-'));
    const openFiles = (): number => readdirSync('/proc/self/fd').length;
    try {
      const before = openFiles();
      const zip = new RawZipWriter({ spillDir: dir, spillAfterBytes: 0 });
      zip.output.resume();
      for (let i = 0; i < 30_000; i++)
        await zip.addBuffer(`a-fairly-long-file-name-${i}.txt`, Buffer.from('x'), {
          mode: 0o100644,
          mtime: MTIME,
          compress: false,
        });
      expect(openFiles()).toBe(before + 1);
      zip.output.destroy();
      await new Promise((resolve) => setImmediate(resolve));
      expect(openFiles()).toBe(before);
      await expect(zip.end()).rejects.toThrow('the zip is closed: its central directory is gone');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
