import { createWriteStream } from 'node:fs';
import { open, rm } from 'node:fs/promises';
import { join, posix } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import * as yauzl from 'yauzl';
import type { FetchedSource } from '../../shared/contracts';
import { isNotFound } from '../shared/s3';
import {
  DEFLATED,
  type DosDateTime,
  escapingEntryName,
  fileWindowReader,
  type RawEntry,
  type RawZipWriter,
  STORED,
  storedEntryName,
  type WindowReader,
  zipEntries,
} from '../shared/zip';
import { SnapshotError, UnsafeEntryError } from './errors';
import type { PathRegistry } from './path-registry';
import type { SymlinkTable } from './symlinks';

const S_IFMT = 0o170000;
const S_IFLNK = 0o120000;
/** A symlink entry's data is its target path; anything longer is not a real link. */
export const MAX_LINK_TARGET = 4096;
/** What a zip without unix modes is extracted with: yazl's defaults, so such entries keep the modes they always had. */
const DEFAULT_FILE_MODE = 0o100664;
const DEFAULT_FOLDER_MODE = 0o40775;

export type SnapshotSource = Pick<FetchedSource, 'name' | 'commit' | 'path' | 'snapshotKey'>;

export interface AppendSnapshotOptions {
  readonly s3: S3Client;
  readonly bucket: string;
  readonly source: SnapshotSource;
  readonly zip: RawZipWriter;
  readonly registry: PathRegistry;
  /** Every symlink written, for the check over all of them once every source is in (checkSymlinks). */
  readonly links: SymlinkTable;
  /** A folder of its own for this invocation; the snapshot file is deleted before returning. */
  readonly tmpDir: string;
  /** Aborted when the upload fails, so a stalled copy gives up instead of waiting forever. */
  readonly signal: AbortSignal;
}

/**
 * Copies every entry of one snapshot into the combined zip under the source's path. The
 * snapshot goes to a temp file first (a zip's directory sits at its end, so reading it needs
 * random access); entries are then copied one at a time, their compressed bytes as they are
 * (no inflate and deflate again), so memory holds one entry's buffers, whatever the
 * snapshot's size. /tmp holds one snapshot at a time. Answers the snapshot's ETag.
 */
export async function appendSnapshot(options: AppendSnapshotOptions): Promise<string | undefined> {
  const { source, tmpDir } = options;
  const file = join(tmpDir, `${source.name}-${source.commit}.zip`);
  try {
    const etag = await download(options, file);
    const { zipfile, reader } = await openSnapshot(file, source);
    try {
      await appendSnapshotEntries(options, zipfile, (start, end) => reader.bytes(start, end));
    } finally {
      zipfile.close();
    }
    return etag;
  } finally {
    await rm(file, { force: true });
  }
}

export type AppendEntriesOptions = Pick<AppendSnapshotOptions, 'source' | 'zip' | 'registry' | 'links'>;

/** The bytes [start, end) of the zip a yauzl ZipFile reads, a buffer of their own (held no longer than the caller holds it). */
export type ReadBytes = (start: number, end: number) => Promise<Buffer>;

/**
 * Copies every entry of a snapshot opened with yauzl (lazyEntries, decodeStrings: false) into
 * the combined zip, as appendSnapshot does; copy-snapshot.ts gives it snapshots held in memory.
 * `readBytes` reads the same zip: small entries' data, without a stream (SMALL_ENTRY_BYTES).
 */
export async function appendSnapshotEntries(
  options: AppendEntriesOptions,
  zipfile: yauzl.ZipFile,
  readBytes: ReadBytes,
): Promise<void> {
  try {
    for await (const entry of zipEntries(zipfile)) await appendEntry(options, zipfile, readBytes, entry);
  } catch (err) {
    throw wrapReadError(err, options.source);
  }
}

/** Answers the ETag of the snapshot downloaded: the combine cache names exactly what was combined. */
async function download(
  { s3, bucket, source, signal }: AppendSnapshotOptions,
  file: string,
): Promise<string | undefined> {
  try {
    const response = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: source.snapshotKey }), {
      abortSignal: signal,
    });
    await pipeline(response.Body as Readable, createWriteStream(file), { signal });
    return response.ETag;
  } catch (err) {
    if (!isNotFound(err)) throw err;
    throw new SnapshotError(
      `the snapshot of source "${source.name}" at commit ${source.commit} is missing: s3://${bucket}/${source.snapshotKey}`,
      { cause: err },
    );
  }
}

/** Reads of a snapshot file: one window for its directory, one for its entries' data (WindowReader). */
const SNAPSHOT_WINDOWS = { windowBytes: 1024 * 1024, windows: 2 } as const;

async function openSnapshot(
  file: string,
  source: SnapshotSource,
): Promise<{ zipfile: yauzl.ZipFile; reader: WindowReader }> {
  const handle = await open(file, 'r');
  try {
    const { size } = await handle.stat();
    const reader = fileWindowReader(handle, file, size, SNAPSHOT_WINDOWS);
    // decodeStrings: false so that unsafe names reach our own check, which names the source.
    const zipfile = await yauzl.fromRandomAccessReaderPromise(reader, size, {
      lazyEntries: true,
      autoClose: false,
      decodeStrings: false,
    });
    return { zipfile, reader };
  } catch (err) {
    await handle.close();
    throw new SnapshotError(`${source.snapshotKey} (source "${source.name}") is not a readable zip: ${String(err)}`, {
      cause: err,
    });
  }
}

/** yauzl and zlib report a corrupt zip with plain Errors; ours and the SDK's have names of their own. */
function wrapReadError(err: unknown, source: SnapshotSource): unknown {
  if (err instanceof Error && err.name !== 'Error') return err;
  return new SnapshotError(`cannot read ${source.snapshotKey} (source "${source.name}"): ${String(err)}`, {
    cause: err,
  });
}

async function appendEntry(
  options: AppendEntriesOptions,
  zipfile: yauzl.ZipFile,
  readBytes: ReadBytes,
  entry: yauzl.Entry,
): Promise<void> {
  const { source, zip, registry, links } = options;
  const owner = `source "${source.name}"`;
  const name = entryName(entry, source);
  if (name === undefined) return;
  const target = prefixOf(source.path) + name;
  const mode = unixMode(entry);
  // The DOS fields as they are: no round trip through a Date and the time zone.
  const mtime: DosDateTime = { date: entry.lastModFileDate, time: entry.lastModFileTime };
  if (target.endsWith('/')) {
    if (registry.claimFolder(target.slice(0, -1), owner))
      await zip.addDirectory(target, { mode: mode ?? DEFAULT_FOLDER_MODE, mtime });
    return;
  }
  registry.claimFile(target, owner);
  refuseUncopyable(entry, target, source);
  // A symlink is checked, then copied as any entry is (the copy path does the same, copy-snapshot.ts).
  if (isSymlink(entry)) links.add(target, await checkLinkTarget(zipfile, entry, target, source), owner);
  // Raw bytes: the copy keeps the snapshot's compression, CRC-32 and sizes (its central
  // directory's). No CRC is checked here (yauzl checks none); the build's unzip does.
  const data = await rawData(zipfile, readBytes, entry);
  await zip.addRawEntry(
    {
      name: target,
      mode: mode ?? DEFAULT_FILE_MODE,
      mtime,
      compressionMethod: entry.compressionMethod,
      crc32: entry.crc32,
      compressedSize: entry.compressedSize,
      uncompressedSize: entry.uncompressedSize,
    },
    data,
  );
}

/**
 * Entries up to this size are read into one buffer instead of a stream: yauzl's raw stream is
 * three streams piped together, garbage that grows the heap when entries are many and small.
 */
export const SMALL_ENTRY_BYTES = 64 * 1024;

/** An entry's data as stored (compressed or not), after the checks openReadStream makes: the local header's signature, the data within the zip. */
async function rawData(zipfile: yauzl.ZipFile, readBytes: ReadBytes, entry: yauzl.Entry): Promise<Readable | Buffer[]> {
  if (entry.compressedSize > SMALL_ENTRY_BYTES) return zipfile.openReadStreamPromise(entry, { decodeFileData: false });
  const { fileDataStart } = await zipfile.readLocalFileHeaderPromise(entry, { minimal: true });
  return entry.compressedSize === 0 ? [] : [await readBytes(fileDataStart, fileDataStart + entry.compressedSize)];
}

const UTF8_NAME_FLAG = 0x0800;

/**
 * For copy-snapshot.ts: an entry of a "." snapshot as appendEntry would write it, when its
 * local header and data can be copied byte for byte instead: its name stays the same (safe,
 * normalized, not "./", the same UTF-8 bytes the local header should hold, flagged UTF-8 unless
 * ASCII), it is not encrypted, it is stored or deflated, and a folder holds no data. A symlink's
 * target is not checked here: the caller reads it (isSymlink, linkTargetOutside). Otherwise why
 * not: the full combine then decides, refusing what it refuses. `foreignFlags` is the entry's
 * general purpose flags.
 */
export function copyableEntry(entry: yauzl.Entry): RawEntry | { readonly why: string } {
  const raw = storedEntryName(entry);
  const quoted = JSON.stringify(raw.slice(0, 200));
  if (escapingEntryName(raw) !== undefined || raw.includes('\\')) return { why: `entry ${quoted} has an unsafe name` };
  if (posix.normalize(raw) !== raw || raw === './' || raw === '.')
    return { why: `entry ${quoted} is not a normalized path` };
  const encoded = Buffer.from(raw, 'utf8');
  const ascii = encoded.length === raw.length;
  if (!encoded.equals(entry.fileNameRaw) || (!ascii && (entry.generalPurposeBitFlag & UTF8_NAME_FLAG) === 0)) {
    return { why: `entry ${quoted} does not store its name as UTF-8` };
  }
  if (entry.isEncrypted()) return { why: `entry ${quoted} is encrypted` };
  if (entry.compressionMethod !== STORED && entry.compressionMethod !== DEFLATED) {
    return { why: `entry ${quoted} uses compression method ${entry.compressionMethod}` };
  }
  const folder = raw.endsWith('/');
  if (
    folder &&
    (entry.compressionMethod !== STORED ||
      entry.compressedSize !== 0 ||
      entry.uncompressedSize !== 0 ||
      entry.crc32 !== 0)
  ) {
    return { why: `folder ${quoted} has data` };
  }
  return directoryEntry(entry, raw);
}

/**
 * An entry of a zip's central directory as RawZipWriter places it again, its local header
 * copied as it is (`foreignFlags`). No check: copyableEntry checks a snapshot's entries; an
 * artifact that combine-sources wrote (combined-index.ts) was checked when it was combined.
 */
export function directoryEntry(entry: yauzl.Entry, name = storedEntryName(entry)): RawEntry {
  const folder = name.endsWith('/');
  return {
    name,
    mode: unixMode(entry) ?? (folder ? DEFAULT_FOLDER_MODE : DEFAULT_FILE_MODE),
    mtime: { date: entry.lastModFileDate, time: entry.lastModFileTime },
    compressionMethod: entry.compressionMethod,
    crc32: entry.crc32,
    compressedSize: entry.compressedSize,
    uncompressedSize: entry.uncompressedSize,
    foreignFlags: entry.generalPurposeBitFlag,
  };
}

/**
 * Copied raw, an encrypted entry would lose its encryption flag, and any method but stored and
 * deflated might not extract in the build: both are refused.
 */
function refuseUncopyable(entry: yauzl.Entry, path: string, source: SnapshotSource): void {
  const why = entry.isEncrypted()
    ? 'is encrypted'
    : entry.compressionMethod !== STORED && entry.compressionMethod !== DEFLATED
      ? `uses compression method ${entry.compressionMethod} (only stored and deflated are supported)`
      : undefined;
  if (why !== undefined) {
    throw new SnapshotError(`"${path}" in snapshot ${source.snapshotKey} (source "${source.name}") ${why}`);
  }
}

/** "." puts a source at the artifact's root; "config/" under config/. */
function prefixOf(path: string): string {
  return path === '.' ? '' : path;
}

/**
 * The entry's path inside its source, or undefined for the source's own root folder ("./"),
 * which holds no content. Absolute paths and `..` are zip-slip: refused, naming the source. So
 * is a backslash: kept, the build's unzip (and CodeBuild's, on Windows images) may take it for a
 * folder separator; turned into one, it would restructure the tree.
 */
function entryName(entry: yauzl.Entry, source: SnapshotSource): string | undefined {
  const raw = storedEntryName(entry);
  const problem = escapingEntryName(raw);
  if (problem !== undefined) {
    throw new UnsafeEntryError(
      `snapshot ${source.snapshotKey} (source "${source.name}") has an entry that would be extracted outside ` +
        `the artifact (${problem}); the combined artifact is refused`,
    );
  }
  if (raw.includes('\\')) {
    throw new UnsafeEntryError(
      `snapshot ${source.snapshotKey} (source "${source.name}") has a file named ${JSON.stringify(raw)}: a backslash in a name, ` +
        'which zip tools read as a folder separator, so it would not ship as git has it; rename the file in the repository',
    );
  }
  const name = posix.normalize(raw);
  return name === './' || name === '.' ? undefined : name;
}

/** The entry's unix mode when the zip recorded one (file type bits set), so executables stay executable. */
function unixMode(entry: yauzl.Entry): number | undefined {
  const mode = entry.externalFileAttributes >>> 16;
  return (mode & S_IFMT) === 0 ? undefined : mode;
}

export function isSymlink(entry: yauzl.Entry): boolean {
  const mode = unixMode(entry);
  return mode !== undefined && (mode & S_IFMT) === S_IFLNK;
}

/**
 * Refuses a symlink whose own target leads outside the artifact, or is no real link; answers its
 * target. Whether it leads outside through other links is known once all are in (checkSymlinks).
 */
async function checkLinkTarget(
  zipfile: yauzl.ZipFile,
  entry: yauzl.Entry,
  path: string,
  source: SnapshotSource,
): Promise<string> {
  const refuse = (why: string): UnsafeEntryError =>
    new UnsafeEntryError(`symlink "${path}" in snapshot ${source.snapshotKey} (source "${source.name}") ${why}`);
  const tooLong = linkTargetTooLong(entry);
  if (tooLong !== undefined) throw refuse(tooLong);
  const chunks: Buffer[] = [];
  for await (const chunk of await zipfile.openReadStreamPromise(entry)) chunks.push(chunk as Buffer);
  const target = Buffer.concat(chunks);
  const outside = linkTargetOutside(path, target);
  if (outside !== undefined) throw refuse(outside);
  return target.toString('utf8');
}

/**
 * Refuses the artifact when one of its symlinks, followed through the others (symlinks.ts),
 * leads outside it or cannot be followed: run once every source's entries are in, before the
 * artifact is completed.
 */
export function checkSymlinks(links: SymlinkTable): void {
  const escaping = links.escaping();
  if (escaping !== undefined) {
    throw new UnsafeEntryError(
      `symlink "${escaping.path}" (${escaping.owner}) ${escaping.why}; the combined artifact is refused: make the link lead to a path inside the repository, or remove it`,
    );
  }
}

/** Why a symlink entry cannot be a real link (its target is longer than a path can be), or undefined. */
export function linkTargetTooLong(entry: yauzl.Entry): string | undefined {
  return entry.uncompressedSize > MAX_LINK_TARGET ? `has a ${entry.uncompressedSize}-byte target` : undefined;
}

/** Why the link at `path` (in the artifact) leads outside the artifact, or undefined. */
export function linkTargetOutside(path: string, target: Buffer): string | undefined {
  const text = target.toString('utf8');
  const resolved = posix.normalize(posix.join(posix.dirname(path), text));
  return posix.isAbsolute(text) || resolved === '..' || resolved.startsWith('../')
    ? `points outside the artifact (${text})`
    : undefined;
}
