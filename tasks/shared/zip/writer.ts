import { once } from 'node:events';
import { PassThrough } from 'node:stream';
import { crc32, deflateRawSync } from 'node:zlib';
import { DirectoryRecords, SPILL_AFTER_BYTES } from './directory-records';

/**
 * A streaming zip writer that takes entry data as it already is in another zip: compressed
 * bytes plus the CRC-32 and sizes from that zip's central directory. Copying entries this way
 * costs a read and a write, where inflating and deflating them again costs most of a core.
 *
 * No npm library does this: yazl 3.3 computes each entry's CRC-32 from the uncompressed bytes
 * and always runs them through DeflateRaw or stores them (node_modules/yazl/index.js,
 * `Crc32Watcher` → `DeflateRaw`/`PassThrough`), with no way to pass a precomputed CRC and
 * compressed data.
 *
 * Layout: each entry is a local file header with the final CRC and sizes (no data descriptor),
 * then its data; `end()` writes the central directory and the end records. ZIP64 fields are
 * written when a size, an offset or the entry count needs them. Memory holds each entry's
 * central directory record as bytes (46 bytes, its name, a ZIP64 field when needed: ~100 bytes
 * for a typical path), not as objects, which cost ~1 KB each. Never entry data: `output` is a stream whose reader
 * sets the pace (every write waits for it to drain). Add entries one at a time, awaiting each.
 * Small writes reach `output` gathered in chunks of 64 KiB; all of them once `end()` resolves.
 *
 * A local header depends on its entry alone (the ZIP64 choice there depends on the sizes, not
 * the offset), so a run of entries is the same bytes wherever it sits in a zip. That is what
 * lets `addCopiedEntries` place a range of an earlier zip, copied by someone else, in a new one.
 */

/** A DOS date and time, as zips store modification times (local time, 2-second precision). */
export interface DosDateTime {
  readonly date: number;
  readonly time: number;
}

export interface RawEntry {
  /** Path inside the zip, "/"-separated; folders end with "/". Stored as UTF-8. */
  readonly name: string;
  /** Full unix mode, file type bits included (0o100644, 0o40755, 0o120777). */
  readonly mode: number;
  readonly mtime: DosDateTime;
  /** 0 (stored) or 8 (deflated). */
  readonly compressionMethod: number;
  readonly crc32: number;
  readonly compressedSize: number;
  readonly uncompressedSize: number;
  /**
   * Set only on an entry whose local header and data were copied byte for byte from another
   * zip (a snapshot, see copy-snapshot.ts): that header's general purpose flags. Its central
   * record carries the same data-descriptor (bit 3), UTF-8 (bit 11) and deflate option bits,
   * and its local header's length is that zip's, not this class's (extra fields, descriptor).
   */
  readonly foreignFlags?: number;
}

/** An entry of the zip and where its local header starts. */
export interface PlacedEntry {
  readonly entry: RawEntry;
  /** In the zip; for `addCopiedEntries`, from the start of the copied range. */
  readonly offset: number;
}

export interface RawZipWriterOptions {
  /** Write ZIP64 fields and end records even when nothing needs them (tests). @default false */
  readonly forceZip64?: boolean;
  /** Aborts waits for the reader of `output`, so a writer whose reader is gone gives up. */
  readonly signal?: AbortSignal;
  /** A folder for central directory records past the first 8 MiB (see DirectoryRecords); without it they stay in memory. */
  readonly spillDir?: string;
  /** Records kept in memory before they spill (tests). @default SPILL_AFTER_BYTES */
  readonly spillAfterBytes?: number;
}

export const LOCAL_HEADER_SIGNATURE = 0x04034b50;
/** A local header's fixed fields, before its name and extra fields. */
export const LOCAL_HEADER_BYTES = 30;
const CENTRAL_HEADER_SIGNATURE = 0x02014b50;
const ZIP64_END_SIGNATURE = 0x06064b50;
const ZIP64_LOCATOR_SIGNATURE = 0x07064b50;
const END_SIGNATURE = 0x06054b50;
const UTF8_NAMES = 1 << 11;
/** Unix (3), spec version 2.0: readers take the high 16 bits of the external attributes as st_mode. */
const VERSION_MADE_BY = (3 << 8) | 20;
const VERSION_NEEDED = 20;
const VERSION_NEEDED_ZIP64 = 45;
const MAX_16 = 0xffff;
const MAX_32 = 0xffffffff;
const ZIP64_EXTRA_ID = 0x0001;
const MSDOS_DIRECTORY = 0x10;
const S_IFMT = 0o170000;
const S_IFDIR = 0o040000;
/** Where a finished zip's central directory is, and how large the zip is. */
export interface ZipLayout {
  readonly directoryOffset: number;
  readonly directorySize: number;
  readonly entryCount: number;
  readonly size: number;
}

/** Small writes are sent to `output` in chunks of this size. */
const COALESCE_BYTES = 64 * 1024;

export const STORED = 0;
export const DEFLATED = 8;

export class RawZipWriter {
  /** The zip's bytes; give it to the consumer (an S3 upload) before adding entries. */
  readonly output = new PassThrough();
  private readonly directory: DirectoryRecords;
  private offset = 0;
  /** Bytes written but not yet sent to `output` (see write). */
  private gathering = Buffer.allocUnsafe(COALESCE_BYTES);
  private gathered = 0;
  private ended = false;

  constructor(private readonly options: RawZipWriterOptions = {}) {
    this.directory = new DirectoryRecords(options.spillDir, options.spillAfterBytes ?? SPILL_AFTER_BYTES);
    // Ended or destroyed, the zip needs its spilled records no more.
    this.output.once('close', () => this.directory.dispose());
  }

  /** Bytes of the zip so far: written to `output`, or accounted for by `addCopiedEntries`. */
  get position(): number {
    return this.offset;
  }

  /** Entries so far. */
  get entryCount(): number {
    return this.directory.count;
  }

  /**
   * Adds an entry whose `data` yields exactly `entry.compressedSize` bytes, already encoded
   * with `entry.compressionMethod`. Resolves once all of it has been written (small writes
   * reach `output` gathered, later: see write). When it fails, part of the entry may be
   * written already: the zip is unusable, destroy `output`.
   */
  async addRawEntry(entry: RawEntry, data: AsyncIterable<Buffer> | Iterable<Buffer>): Promise<void> {
    this.refuseAfterEnd();
    refuseMethod(entry);
    const start = this.offset;
    await this.write(localHeader(entry, this.zip64Sizes(entry)));
    let copied = 0;
    // Leaving the loop early (a throw, a break) destroys a Readable `data`.
    for await (const chunk of data) {
      copied += chunk.length;
      if (copied > entry.compressedSize) break;
      await this.write(chunk);
    }
    if (copied !== entry.compressedSize) {
      throw new Error(
        copied > entry.compressedSize
          ? `"${entry.name}": its data is longer than the ${entry.compressedSize} bytes the zip's directory says`
          : `"${entry.name}": its data ends after ${copied} bytes, the zip's directory says ${entry.compressedSize}`,
      );
    }
    this.directory.add(centralHeader(entry, start, this.zip64Entry(entry, start)));
  }

  /**
   * Accounts for entries whose local headers and data, `length` bytes from the current
   * position, reach the consumer of `output` another way (a server-side copy of a range of an
   * earlier zip): nothing goes to `output` here, only their central directory records will, at
   * `end()`. Their offsets are relative to the start of that range, in ascending order; they
   * are taken one at a time (a directory read as it streams in), so memory holds their records,
   * never a list of them. Throws when they do not tile the range, local header after local
   * header: then they do not describe it, and a zip built on them would be corrupt; the writer
   * is then unusable. An entry with `foreignFlags` (its local header copied from another zip,
   * of a length only that zip knew) must take at least its fixed header, name, data and
   * descriptor: the next entry may start further on.
   */
  async addCopiedEntries(entries: AsyncIterable<PlacedEntry> | Iterable<PlacedEntry>, length: number): Promise<void> {
    this.refuseAfterEnd();
    // What came before the range reaches `output` before it.
    await this.flush();
    const start = this.offset;
    let expected = 0;
    // After an entry with a foreign local header, only a lower bound of its end is known.
    let atLeast = false;
    for await (const { entry, offset } of entries) {
      refuseMethod(entry);
      if (offset !== expected && !(atLeast && offset > expected)) {
        throw new Error(
          `copied entry "${entry.name}" is at offset ${offset} of the range; the entries before it end at ${expected}`,
        );
      }
      atLeast = entry.foreignFlags !== undefined;
      expected =
        offset +
        (atLeast ? minForeignLength(entry) : localHeaderLength(entry, this.zip64Sizes(entry)) + entry.compressedSize);
      if (expected > length) throw new Error(`copied entry "${entry.name}" ends after the range's ${length} bytes`);
      this.directory.add(centralHeader(entry, start + offset, this.zip64Entry(entry, start + offset)));
    }
    if (expected !== length && !(atLeast && length > expected)) {
      throw new Error(`the copied entries take ${expected} bytes; the range is ${length} bytes`);
    }
    this.offset += length;
  }

  /** Adds a file held in memory (small ones: the manifest), deflated when `compress`. */
  async addBuffer(
    name: string,
    content: Buffer,
    options: { mode: number; mtime: DosDateTime; compress: boolean },
  ): Promise<void> {
    const deflate = options.compress && content.length > 0;
    const data = deflate ? deflateRawSync(content) : content;
    const entry: RawEntry = {
      name,
      mode: options.mode,
      mtime: options.mtime,
      compressionMethod: deflate ? DEFLATED : STORED,
      crc32: crc32(content),
      compressedSize: data.length,
      uncompressedSize: content.length,
    };
    await this.addRawEntry(entry, [data]);
  }

  /** Adds a folder; `name` ends with "/". */
  async addDirectory(name: string, options: { mode: number; mtime: DosDateTime }): Promise<void> {
    if (!name.endsWith('/')) throw new Error(`folder name "${name}" must end with "/"`);
    const entry = { name, ...options, compressionMethod: STORED, crc32: 0, compressedSize: 0, uncompressedSize: 0 };
    await this.addRawEntry(entry, []);
  }

  /** Writes the central directory and the end records, then ends `output`; answers where the directory is. */
  async end(): Promise<ZipLayout> {
    this.refuseAfterEnd();
    this.ended = true;
    const start = this.offset;
    for await (const slab of this.directory.slabs()) await this.write(slab);
    await this.write(endRecords(this.directory.count, start, this.offset - start, this.options.forceZip64 === true));
    await this.flush();
    this.output.end();
    return {
      directoryOffset: start,
      directorySize: this.directory.bytes,
      entryCount: this.directory.count,
      size: this.offset,
    };
  }

  private zip64Sizes(entry: RawEntry): boolean {
    return this.options.forceZip64 === true || entry.compressedSize >= MAX_32 || entry.uncompressedSize >= MAX_32;
  }

  private zip64Entry(entry: RawEntry, offset: number): boolean {
    return this.zip64Sizes(entry) || offset >= MAX_32;
  }

  private refuseAfterEnd(): void {
    if (this.ended) throw new Error('the zip has already been ended');
  }

  /**
   * Small chunks (headers, small entries' data) are gathered into one of COALESCE_BYTES before
   * they go to `output`: a chunk per header costs the stream and its reader an object each, tens
   * of thousands per upload part of small entries (BENCHMARKS.md §3).
   */
  private async write(chunk: Buffer): Promise<void> {
    this.offset += chunk.length;
    if (chunk.length >= COALESCE_BYTES / 4) {
      await this.flush();
      await this.send(chunk);
      return;
    }
    if (this.gathered + chunk.length > this.gathering.length) await this.flush();
    chunk.copy(this.gathering, this.gathered);
    this.gathered += chunk.length;
  }

  /** Hands what is gathered to `output`. */
  private async flush(): Promise<void> {
    if (this.gathered === 0) return;
    const chunk = this.gathering.subarray(0, this.gathered);
    // A new buffer: `output`'s reader may hold the one just sent.
    this.gathering = Buffer.allocUnsafe(COALESCE_BYTES);
    this.gathered = 0;
    await this.send(chunk);
  }

  /** Writes and, when the reader is behind, waits until it has caught up: backpressure. */
  private async send(chunk: Buffer): Promise<void> {
    if (!this.output.write(chunk)) await once(this.output, 'drain', { signal: this.options.signal });
  }
}

/** A JavaScript Date as a DOS date and time in local time, as yazl and yauzl read and write them. */
export function toDosDateTime(date: Date): DosDateTime {
  const min = new Date(1980, 0, 1);
  const max = new Date(2107, 11, 31, 23, 59, 58);
  const d = date < min ? min : date > max ? max : date;
  return {
    date: d.getDate() | ((d.getMonth() + 1) << 5) | ((d.getFullYear() - 1980) << 9),
    time: Math.floor(d.getSeconds() / 2) | (d.getMinutes() << 5) | (d.getHours() << 11),
  };
}

function refuseMethod(entry: RawEntry): void {
  if (entry.compressionMethod !== STORED && entry.compressionMethod !== DEFLATED) {
    throw new Error(
      `"${entry.name}": compression method ${entry.compressionMethod} is not supported (only stored and deflated)`,
    );
  }
}

/** Bit 3 (data descriptor), bits 1-2 (deflate options), bit 11 (UTF-8): what a central record repeats of a copied local header. */
const FOREIGN_FLAG_BITS = 0x080e;
const DATA_DESCRIPTOR = 0x0008;

/** The fewest bytes a copied local header, its data and its data descriptor can take. */
function minForeignLength(entry: RawEntry): number {
  const descriptor = ((entry.foreignFlags ?? 0) & DATA_DESCRIPTOR) !== 0 ? 12 : 0;
  return 30 + Buffer.byteLength(entry.name, 'utf8') + entry.compressedSize + descriptor;
}

/** The length of `localHeader(entry, zip64)`, without building it: 30 bytes, the name, the ZIP64 extra field. */
function localHeaderLength(entry: RawEntry, zip64: boolean): number {
  return 30 + Buffer.byteLength(entry.name, 'utf8') + (zip64 ? 4 + 2 * 8 : 0);
}

function localHeader(entry: RawEntry, zip64: boolean): Buffer {
  const nameLength = checkedNameLength(entry.name);
  // In a local header, the ZIP64 extra field holds both sizes, and only them.
  const extraLength = zip64 ? 4 + 2 * 8 : 0;
  // One allocation per header, from Node's pool (allocUnsafe): every byte is written below.
  const header = Buffer.allocUnsafe(30 + nameLength + extraLength);
  header.writeUInt32LE(LOCAL_HEADER_SIGNATURE, 0);
  header.writeUInt16LE(zip64 ? VERSION_NEEDED_ZIP64 : VERSION_NEEDED, 4);
  header.writeUInt16LE(UTF8_NAMES, 6);
  header.writeUInt16LE(entry.compressionMethod, 8);
  header.writeUInt16LE(entry.mtime.time, 10);
  header.writeUInt16LE(entry.mtime.date, 12);
  header.writeUInt32LE(entry.crc32 >>> 0, 14);
  header.writeUInt32LE(zip64 ? MAX_32 : entry.compressedSize, 18);
  header.writeUInt32LE(zip64 ? MAX_32 : entry.uncompressedSize, 22);
  header.writeUInt16LE(nameLength, 26);
  header.writeUInt16LE(extraLength, 28);
  header.write(entry.name, 30, 'utf8');
  if (zip64) writeZip64Extra(header, 30 + nameLength, [entry.uncompressedSize, entry.compressedSize]);
  return header;
}

function centralHeader(entry: RawEntry, offset: number, zip64: boolean): Buffer {
  const nameLength = checkedNameLength(entry.name);
  // Every field marked 0xFFFFFFFF is in the extra field, in this order: so all three or none.
  const extraLength = zip64 ? 4 + 3 * 8 : 0;
  const isDirectory = (entry.mode & S_IFMT) === S_IFDIR;
  const header = Buffer.allocUnsafe(46 + nameLength + extraLength);
  header.writeUInt32LE(CENTRAL_HEADER_SIGNATURE, 0);
  header.writeUInt16LE(VERSION_MADE_BY, 4);
  header.writeUInt16LE(zip64 ? VERSION_NEEDED_ZIP64 : VERSION_NEEDED, 6);
  header.writeUInt16LE(entry.foreignFlags === undefined ? UTF8_NAMES : entry.foreignFlags & FOREIGN_FLAG_BITS, 8);
  header.writeUInt16LE(entry.compressionMethod, 10);
  header.writeUInt16LE(entry.mtime.time, 12);
  header.writeUInt16LE(entry.mtime.date, 14);
  header.writeUInt32LE(entry.crc32 >>> 0, 16);
  header.writeUInt32LE(zip64 ? MAX_32 : entry.compressedSize, 20);
  header.writeUInt32LE(zip64 ? MAX_32 : entry.uncompressedSize, 24);
  header.writeUInt16LE(nameLength, 28);
  header.writeUInt16LE(extraLength, 30);
  // comment length, disk number start, internal attributes: 0
  header.fill(0, 32, 38);
  header.writeUInt32LE((((entry.mode & 0xffff) << 16) | (isDirectory ? MSDOS_DIRECTORY : 0)) >>> 0, 38);
  header.writeUInt32LE(zip64 ? MAX_32 : offset, 42);
  header.write(entry.name, 46, 'utf8');
  if (zip64) writeZip64Extra(header, 46 + nameLength, [entry.uncompressedSize, entry.compressedSize, offset]);
  return header;
}

function writeZip64Extra(target: Buffer, at: number, values: ReadonlyArray<number>): void {
  target.writeUInt16LE(ZIP64_EXTRA_ID, at);
  target.writeUInt16LE(8 * values.length, at + 2);
  values.forEach((value, i) => {
    target.writeBigUInt64LE(BigInt(value), at + 4 + 8 * i);
  });
}

function checkedNameLength(name: string): number {
  const length = Buffer.byteLength(name, 'utf8');
  if (length > MAX_16)
    throw new Error(`entry name is ${length} bytes in UTF-8, more than a zip allows (65535): ${name.slice(0, 80)}...`);
  return length;
}

/** The ZIP64 end record and locator when a count, size or offset overflows, then the classic end record. */
function endRecords(entries: number, cdOffset: number, cdSize: number, force: boolean): Buffer {
  const zip64 = force || entries >= MAX_16 || cdOffset >= MAX_32 || cdSize >= MAX_32;
  const parts: Buffer[] = [];
  if (zip64) {
    const record = Buffer.alloc(56);
    record.writeUInt32LE(ZIP64_END_SIGNATURE, 0);
    // Size of the record after this field.
    record.writeBigUInt64LE(44n, 4);
    record.writeUInt16LE(VERSION_MADE_BY, 12);
    record.writeUInt16LE(VERSION_NEEDED_ZIP64, 14);
    // this disk, disk with the central directory: 0
    record.writeBigUInt64LE(BigInt(entries), 24);
    record.writeBigUInt64LE(BigInt(entries), 32);
    record.writeBigUInt64LE(BigInt(cdSize), 40);
    record.writeBigUInt64LE(BigInt(cdOffset), 48);
    const locator = Buffer.alloc(20);
    locator.writeUInt32LE(ZIP64_LOCATOR_SIGNATURE, 0);
    // The ZIP64 end record starts where the central directory ends.
    locator.writeBigUInt64LE(BigInt(cdOffset + cdSize), 8);
    locator.writeUInt32LE(1, 16);
    parts.push(record, locator);
  }
  const end = Buffer.alloc(22);
  end.writeUInt32LE(END_SIGNATURE, 0);
  end.writeUInt16LE(zip64 ? MAX_16 : entries, 8);
  end.writeUInt16LE(zip64 ? MAX_16 : entries, 10);
  end.writeUInt32LE(zip64 ? MAX_32 : cdSize, 12);
  end.writeUInt32LE(zip64 ? MAX_32 : cdOffset, 16);
  parts.push(end);
  return Buffer.concat(parts);
}
