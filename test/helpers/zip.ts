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
}

/** Builds a zip in memory, the way a snapshot or an artifact looks. */
export function makeZip(entries: ReadonlyArray<ZipEntrySpec>): Promise<Buffer> {
  const zip = new yazl.ZipFile();
  for (const entry of entries) {
    const options = entry.mode === undefined ? {} : { mode: entry.mode };
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
