import { execFileSync } from 'node:child_process';
import { text } from 'node:stream/consumers';
import * as yauzl from 'yauzl';
import * as yazl from 'yazl';
import { storedEntryName } from '../../tasks/shared/zip';

/** One entry of a test zip: a folder when the name ends with "/". */
export interface ZipEntrySpec {
  readonly name: string;
  readonly content?: string | Buffer;
  /** Full unix mode, file type bits included (0o100755, 0o120777 for a symlink). */
  readonly mode?: number;
  /** @default true (deflated) */
  readonly compress?: boolean;
}

/** Builds a zip in memory, the way a snapshot or an artifact looks. */
export function makeZip(entries: ReadonlyArray<ZipEntrySpec>): Promise<Buffer> {
  const zip = new yazl.ZipFile();
  for (const entry of entries) {
    const options = {
      ...(entry.mode === undefined ? {} : { mode: entry.mode }),
      ...(entry.compress === undefined ? {} : { compress: entry.compress }),
    };
    if (entry.name.endsWith('/')) zip.addEmptyDirectory(entry.name, options);
    else zip.addBuffer(Buffer.from(entry.content ?? ''), entry.name, options);
  }
  zip.end();
  return collect(zip.outputStream);
}

async function collect(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.from(chunk));
  return Buffer.concat(chunks);
}

/** What a test reads back from a zip, in the order the entries appear. */
export interface ZipEntryRead {
  readonly name: string;
  readonly mode: number;
  /** Empty for folders. */
  readonly content: string;
}

/** Names as stored: yauzl's default would refuse `c:foo.txt` and turn a backslash into a folder. */
export async function readZip(buffer: Buffer): Promise<ZipEntryRead[]> {
  const zipfile = await yauzl.fromBufferPromise(buffer, { lazyEntries: true, decodeStrings: false });
  const entries: ZipEntryRead[] = [];
  await new Promise<void>((resolve, reject) => {
    zipfile.on('error', reject).on('end', resolve);
    zipfile.on('entry', (entry: yauzl.Entry) => {
      const mode = entry.externalFileAttributes >>> 16;
      const name = storedEntryName(entry);
      if (name.endsWith('/')) {
        entries.push({ name, mode, content: '' });
        zipfile.readEntry();
        return;
      }
      zipfile
        .openReadStreamPromise(entry)
        .then(text)
        .then((content) => {
          entries.push({ name, mode, content });
          zipfile.readEntry();
        }, reject);
    });
    zipfile.readEntry();
  });
  return entries;
}

/**
 * Renames an entry by patching its bytes, to build archives yazl refuses to write (zip-slip
 * names such as "../evil"). Both names must have the same length.
 */
export function renameEntry(zip: Buffer, from: string, to: string): Buffer {
  if (from.length !== to.length) throw new Error('renameEntry needs names of the same length');
  const patched = Buffer.from(zip);
  const needle = Buffer.from(from);
  for (let i = patched.indexOf(needle); i !== -1; i = patched.indexOf(needle, i + 1)) patched.write(to, i);
  return patched;
}

/** The Debian package of each tool the zip checks run. */
const PACKAGES: Readonly<Record<string, string>> = { unzip: 'unzip', zipinfo: 'unzip', zip: 'zip', python3: 'python3' };

/**
 * Runs a zip tool and answers its stdout. A missing tool is an error naming the install command
 * (a check that quietly skips itself passes on a broken zip); a non-zero exit is an error with
 * the tool's output, which says which entry is bad.
 */
export function zipTool(
  tool: string,
  args: ReadonlyArray<string>,
  options: { readonly env?: NodeJS.ProcessEnv; readonly cwd?: string } = {},
): string {
  try {
    return execFileSync(tool, args, { ...options, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    const failed = err as NodeJS.ErrnoException & { status?: number; stdout?: string; stderr?: string };
    if (failed.code === 'ENOENT') {
      throw new Error(
        `${tool} is not installed and the zip tests need it: install it (apt-get install -y ${PACKAGES[tool] ?? tool})`,
      );
    }
    throw new Error(
      `${tool} ${args.join(' ')} failed (exit ${failed.status}):\n${failed.stdout ?? ''}${failed.stderr ?? ''}`,
    );
  }
}

/**
 * Info-ZIP's test of a zip file: every entry decompressed and its CRC-32 checked, the central
 * directory against the local headers. Exit 0 only when no error was found.
 */
export function unzipTest(path: string, env?: NodeJS.ProcessEnv): string {
  return zipTool('unzip', ['-t', path], { env });
}

/**
 * Python's zipfile reading every entry with its CRC-32 checked. Not `python3 -m zipfile -t`:
 * that prints "corrupted" and still exits 0.
 */
export function pythonZipTest(path: string, env?: NodeJS.ProcessEnv): void {
  const script = [
    'import sys, zipfile',
    'with zipfile.ZipFile(sys.argv[1]) as z: bad = z.testzip()',
    'sys.exit(f"bad CRC-32 or header: {bad}" if bad else 0)',
  ].join('\n');
  zipTool('python3', ['-c', script, path], { env });
}
