import { execFile } from 'node:child_process';
import {
  chmodSync,
  createWriteStream,
  existsSync,
  mkdirSync,
  realpathSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { type FileHandle, open } from 'node:fs/promises';
import { dirname, isAbsolute, join, normalize, resolve, sep } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { inflateRawSync } from 'node:zlib';
import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import * as yauzl from 'yauzl';
import { SOURCE_TYPES } from '../../shared/config';
import {
  escapingEntryName,
  fileWindowReader,
  storedEntryName,
  type WindowReader,
  zipEntries,
} from '../../tasks/shared/zip';
import { SourceError } from './errors';
import type { SourceType } from './types';

/** The git-backed source types: the ones a stepdeploy source may have (shared/config.ts). */
export const GIT_SOURCE_TYPES: ReadonlyArray<SourceType> = SOURCE_TYPES;

export interface FetchedSource {
  /** The commit (git) or object version (S3, when versioned) that was fetched. */
  readonly resolvedSourceVersion?: string;
}

const SHA = /^[0-9a-f]{40}$/;

/**
 * A source version as git will see it. Execution input reaches this value, so it must be a
 * plain ref name or commit id (the DESIGN.md branch rule) before it gets near git's arguments.
 */
export function checkSourceVersion(version: string): void {
  const rule =
    'a branch name ([A-Za-z0-9._/-], no leading "-", no "..", no "@{", no "//", no trailing "/", "." or ".lock", at most 200 characters) or a full commit id';
  const ok =
    version.length > 0 &&
    version.length <= 200 &&
    /^[A-Za-z0-9._/-]+$/.test(version) &&
    !version.startsWith('-') &&
    !version.startsWith('/') &&
    !version.includes('..') &&
    !version.includes('//') &&
    !version.endsWith('/') &&
    !version.endsWith('.') &&
    !version.endsWith('.lock') &&
    !version.split('/').some((part) => part.startsWith('.'));
  if (!ok) throw new SourceError(`SourceVersion ${JSON.stringify(version)} is not ${rule}`);
}

/** A local repository path or file:// URL as a file:// URL; anything else is refused. */
export function localRepositoryUrl(location: string, type: SourceType): string {
  let path: string;
  if (location.startsWith('file://')) {
    try {
      path = fileURLToPath(location);
    } catch (error) {
      throw new SourceError(`SourceLocation ${JSON.stringify(location)} is not a valid file:// URL`, { cause: error });
    }
  } else if (/^[A-Za-z][A-Za-z0-9+.-]*:/.test(location) || /^[^/]+@[^/]+:/.test(location)) {
    throw new SourceError(
      `${type} source ${JSON.stringify(location)}: the local runner clones only local repositories (a path or file:// URL); ` +
        'set the source repository to a local clone in stepdeploy.config.yml',
    );
  } else {
    path = resolve(location);
  }
  if (!existsSync(path) || !statSync(path).isDirectory()) {
    throw new SourceError(`${type} source ${JSON.stringify(location)}: no repository directory at ${path}`);
  }
  return pathToFileURL(path).href;
}

export interface GitFetchOptions {
  readonly type: SourceType;
  readonly location: string;
  readonly version?: string;
  readonly srcDir: string;
  readonly env: Readonly<Record<string, string>>;
  readonly log: (line: string) => void;
}

/**
 * Real git: a shallow fetch of exactly the requested ref into an empty repository, then a
 * checkout of it, as CodeBuild clones a source at a SourceVersion. The version never reaches git
 * in a position where it could be read as an option (`refs/heads/<branch>`, after `--`), and git
 * runs without a shell.
 */
export async function fetchGitSource(options: GitFetchOptions): Promise<FetchedSource> {
  const url = localRepositoryUrl(options.location, options.type);
  const version = options.version;
  if (version !== undefined) checkSourceVersion(version);
  const git = (args: string[], cwd?: string): Promise<string> => runGit(args, options.env, cwd);

  mkdirSync(options.srcDir, { recursive: true });
  await git(['-c', 'init.defaultBranch=main', 'init', '-q', '--', options.srcDir]);
  const borrowed = borrowObjects(fileURLToPath(url), options.srcDir);
  if (
    borrowed &&
    version !== undefined &&
    SHA.test(version) &&
    (await checkoutBorrowed(version, options.srcDir, git))
  ) {
    options.log(`Checked out commit ${version} from ${url} (its objects read in place)`);
    return { resolvedSourceVersion: version };
  }
  let refspec: string;
  let branch: string | undefined;
  if (version === undefined) refspec = 'HEAD';
  else if (SHA.test(version)) refspec = version;
  else if (version.startsWith('refs/')) refspec = version;
  else {
    branch = version;
    refspec = `refs/heads/${version}`;
  }
  options.log(`Fetching ${refspec} from ${url}`);
  try {
    await git(['fetch', '-q', '--depth=1', '--no-tags', '--', url, refspec], options.srcDir);
  } catch (error) {
    const what = branch !== undefined ? `branch ${JSON.stringify(branch)}` : JSON.stringify(refspec);
    throw new SourceError(`could not fetch ${what} from ${options.location}: ${(error as Error).message}`, {
      cause: error,
    });
  }
  if (branch !== undefined) await git(['checkout', '-q', '-B', branch, 'FETCH_HEAD', '--'], options.srcDir);
  else await git(['-c', 'advice.detachedHead=false', 'checkout', '-q', '--detach', 'FETCH_HEAD', '--'], options.srcDir);
  const commit = (await git(['rev-parse', '--verify', 'HEAD^{commit}'], options.srcDir)).trim();
  options.log(`Resolved ${version ?? 'HEAD'} to commit ${commit}`);
  return { resolvedSourceVersion: commit };
}

/**
 * A commit pinned by its full SHA, whose objects the build's repository already reads in place
 * (borrowObjects), needs no fetch (one git process and its upload-pack, ~70 ms of every fetch
 * build): it is checked out directly, and recorded as the shallow boundary, as \`git fetch
 * --depth=1\` would leave it (a build's \`git log\` shows that one commit). Answers false, having
 * changed nothing that a fetch would not set again, when the commit is not there.
 */
async function checkoutBorrowed(
  commit: string,
  srcDir: string,
  git: (args: string[], cwd?: string) => Promise<string>,
): Promise<boolean> {
  try {
    await git(['-c', 'advice.detachedHead=false', 'checkout', '-q', '--detach', commit, '--'], srcDir);
  } catch {
    return false;
  }
  writeFileSync(join(srcDir, '.git', 'shallow'), `${commit}\n`);
  return true;
}

/**
 * Lets the build's repository read the source repository's objects in place (git's alternates,
 * as `git clone --shared` does), so that the fetch finds them there and copies none: a clone
 * from another folder of the same disk would otherwise send every object through a pack (~20 s
 * for 700 MB of sources). git never writes into a borrowed object store, and the checkout is
 * the same files. Only for a repository whose object store is found without running anything
 * in it (a work tree's `.git/objects`, a bare repository's `objects`); any other is fetched.
 */
function borrowObjects(repository: string, srcDir: string): boolean {
  const candidates = [join(repository, '.git', 'objects'), join(repository, 'objects')];
  const objects = candidates.find(
    (dir) => existsSync(dir) && statSync(dir).isDirectory() && existsSync(join(dir, 'pack')),
  );
  // One path per line, unquoted: a path git would read otherwise is fetched instead.
  if (objects === undefined || /[\r\n]/.test(objects) || objects.startsWith('"')) return false;
  mkdirSync(join(srcDir, '.git', 'objects', 'info'), { recursive: true });
  writeFileSync(join(srcDir, '.git', 'objects', 'info', 'alternates'), `${objects}\n`);
  return true;
}

function runGit(args: string[], env: Readonly<Record<string, string>>, cwd?: string): Promise<string> {
  return new Promise((resolvePromise, reject) => {
    execFile(
      'git',
      args,
      { cwd, env: { ...env }, maxBuffer: 16 * 1024 * 1024, windowsHide: true },
      (error, stdout, stderr) => {
        if (error) reject(new Error(stderr.trim() || error.message));
        else resolvePromise(stdout);
      },
    );
  });
}

export interface S3FetchOptions {
  readonly s3: S3Client;
  /** `<bucket>/<key>`, as CodeBuild's S3 source location. */
  readonly location: string;
  readonly srcDir: string;
  /** Where the downloaded zip is kept. */
  readonly downloadPath: string;
  readonly log: (line: string) => void;
}

export async function fetchS3Source(options: S3FetchOptions): Promise<FetchedSource> {
  const slash = options.location.indexOf('/');
  if (slash <= 0 || slash === options.location.length - 1) {
    throw new SourceError(`S3 source location must be <bucket>/<key>, got ${JSON.stringify(options.location)}`);
  }
  const Bucket = options.location.slice(0, slash);
  const Key = options.location.slice(slash + 1);
  options.log(`Downloading s3://${Bucket}/${Key}`);
  let versionId: string | undefined;
  try {
    const object = await options.s3.send(new GetObjectCommand({ Bucket, Key }));
    versionId = object.VersionId;
    mkdirSync(dirname(options.downloadPath), { recursive: true });
    await pipeline(object.Body as NodeJS.ReadableStream, createWriteStream(options.downloadPath));
  } catch (error) {
    throw new SourceError(`could not download s3://${Bucket}/${Key}: ${(error as Error).message}`, { cause: error });
  }
  mkdirSync(options.srcDir, { recursive: true });
  await extractZip(options.downloadPath, options.srcDir);
  return versionId !== undefined && versionId !== 'null' ? { resolvedSourceVersion: versionId } : {};
}

const S_IFMT = 0o170000;
const S_IFLNK = 0o120000;
const S_IFDIR = 0o040000;

/** Reads of the downloaded zip: one window for its directory, one for its entries' data (WindowReader). */
const ZIP_WINDOWS = { windowBytes: 1024 * 1024, windows: 2 } as const;
/**
 * Entries up to these sizes are read, inflated and written whole, with no stream: a read stream
 * (three streams piped together) and a write stream (open, write, close on the thread pool) per
 * file cost far more than a small file's bytes, most of the time the extraction took
 * (BENCHMARKS.md §7, "S3 source extraction").
 */
const SMALL_ENTRY_BYTES = 64 * 1024;
const SMALL_FILE_BYTES = 1024 * 1024;

/**
 * Extracts a zip keeping unix modes (exec bits) and symlinks. Every entry must land inside
 * `dest`: absolute names, `..` segments, symlinks that point outside and writes through
 * symlinks are refused (zip-slip). The zip is read through windows (fileWindowReader), not in
 * the dozens-of-bytes pieces yauzl asks for, each of which would be a read on the thread pool.
 */
export async function extractZip(zipPath: string, dest: string): Promise<void> {
  const root = realpathSync(dest);
  let zip: yauzl.ZipFile;
  let reader: WindowReader;
  let handle: FileHandle;
  try {
    handle = await open(zipPath, 'r');
  } catch (error) {
    throw new SourceError(`source zip is not readable: ${(error as Error).message}`, { cause: error });
  }
  try {
    const { size } = await handle.stat();
    reader = fileWindowReader(handle, zipPath, size, ZIP_WINDOWS);
    // decodeStrings: false: yauzl would refuse `c:foo.txt` (a valid name on Linux) and turn `a\b` into `a/b`.
    zip = await yauzl.fromRandomAccessReaderPromise(reader, size, {
      lazyEntries: true,
      autoClose: false,
      decodeStrings: false,
      validateEntrySizes: true,
    });
  } catch (error) {
    await handle.close();
    throw new SourceError(`source zip is not readable: ${(error as Error).message}`, { cause: error });
  }
  try {
    for await (const entry of zipEntries(zip)) await extractEntry(zip, reader, entry, root);
  } catch (error) {
    if (error instanceof SourceError) throw error;
    throw new SourceError(`source zip is not readable: ${(error as Error).message}`, { cause: error });
  } finally {
    zip.close();
  }
}

async function extractEntry(zip: yauzl.ZipFile, reader: WindowReader, entry: yauzl.Entry, root: string): Promise<void> {
  const name = storedEntryName(entry);
  const fail = (message: string, cause?: unknown): SourceError =>
    new SourceError(`source zip entry ${JSON.stringify(name)}: ${message}`, { cause });
  const normalized = normalize(name);
  if (escapingEntryName(name) !== undefined || isAbsolute(name) || normalized.split(sep).includes('..')) {
    throw new SourceError(`source zip entry ${JSON.stringify(name)} would be written outside the source directory`);
  }
  if (name.includes('\\')) {
    throw new SourceError(
      `source zip entry ${JSON.stringify(name)} has a backslash in its name, which this runner does not extract (zip tools read it as a folder separator)`,
    );
  }
  const inside = (p: string): boolean => p === root || p.startsWith(root + sep);
  const target = join(root, normalized);
  const unix = entry.versionMadeBy >> 8 === 3;
  const mode = unix ? (entry.externalFileAttributes >>> 16) & 0xffff : 0;
  const type = mode & S_IFMT;
  try {
    mkdirSync(dirname(target), { recursive: true });
  } catch (error) {
    throw fail((error as Error).message, error);
  }
  if (!inside(realpathSync(dirname(target)))) {
    throw new SourceError(
      `source zip entry ${JSON.stringify(name)} would be written through a symlink outside the source directory`,
    );
  }
  if (name.endsWith('/') || type === S_IFDIR) {
    mkdirSync(target, { recursive: true });
    return;
  }
  if (type === S_IFLNK) {
    if (entry.compressedSize > SMALL_ENTRY_BYTES) throw fail('a symlink whose target is longer than any path');
    const link = (await smallEntryData(zip, reader, entry, fail)).toString('utf8');
    if (isAbsolute(link) || !inside(resolve(dirname(target), link))) {
      throw new SourceError(
        `source zip symlink ${JSON.stringify(name)} -> ${JSON.stringify(link)} points outside the source directory`,
      );
    }
    try {
      symlinkSync(link, target);
    } catch (error) {
      throw fail((error as Error).message, error);
    }
    return;
  }
  try {
    if (entry.compressedSize <= SMALL_ENTRY_BYTES && entry.uncompressedSize <= SMALL_FILE_BYTES) {
      // wx (O_EXCL): never follows an existing file or symlink at that name.
      writeFileSync(target, await smallEntryData(zip, reader, entry, fail), { flag: 'wx', mode: 0o600 });
    } else {
      const stream = await zip.openReadStreamPromise(entry);
      await pipeline(stream, createWriteStream(target, { flags: 'wx', mode: 0o600 }));
    }
    chmodSync(target, mode & 0o777 || 0o644);
  } catch (error) {
    if (error instanceof SourceError) throw error;
    throw fail((error as Error).message, error);
  }
}

/**
 * A small entry's data, inflated, with the checks yauzl's read stream makes: not encrypted, a
 * method it reads (stored, deflated), the local header's signature, the declared size.
 */
async function smallEntryData(
  zip: yauzl.ZipFile,
  reader: WindowReader,
  entry: yauzl.Entry,
  fail: (message: string, cause?: unknown) => SourceError,
): Promise<Buffer> {
  if (entry.isEncrypted()) throw fail('is encrypted, which this runner does not extract');
  if (entry.compressionMethod !== 0 && entry.compressionMethod !== 8) {
    throw fail(`uses compression method ${entry.compressionMethod}; only stored (0) and deflated (8) are read`);
  }
  const { fileDataStart } = await zip.readLocalFileHeaderPromise(entry, { minimal: true });
  const raw = await reader.bytes(fileDataStart, fileDataStart + entry.compressedSize);
  let data: Buffer;
  try {
    // At most one byte more than declared: enough to tell a wrong size, not a zip bomb's worth.
    data = entry.compressionMethod === 8 ? inflateRawSync(raw, { maxOutputLength: entry.uncompressedSize + 1 }) : raw;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') {
      throw fail(`inflates to more than its declared ${entry.uncompressedSize} bytes`, error);
    }
    throw fail(`cannot be inflated: ${(error as Error).message}`, error);
  }
  if (data.length !== entry.uncompressedSize) {
    throw fail(`holds ${data.length} bytes, not its declared ${entry.uncompressedSize}`);
  }
  return data;
}
