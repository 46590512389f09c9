import * as yauzl from 'yauzl';

/**
 * The entries of a zip opened with `lazyEntries: true`, one at a time: the next entry is read
 * only when the caller asks for it, so a caller that finishes each entry's data first holds one
 * entry in memory at most.
 */
export async function* zipEntries(zipfile: yauzl.ZipFile): AsyncGenerator<yauzl.Entry> {
  for (;;) {
    const entry = await new Promise<yauzl.Entry | undefined>((resolve, reject) => {
      const onEntry = (e: yauzl.Entry): void => settle(() => resolve(e));
      const onEnd = (): void => settle(() => resolve(undefined));
      const onError = (err: Error): void => settle(() => reject(err));
      const settle = (done: () => void): void => {
        zipfile.off('entry', onEntry).off('end', onEnd).off('error', onError);
        done();
      };
      zipfile.on('entry', onEntry).on('end', onEnd).on('error', onError);
      zipfile.readEntry();
    });
    if (entry === undefined) return;
    yield entry;
  }
}

/**
 * An entry's name as it is stored (UTF-8, CP437, or Info-ZIP's Unicode path field), backslashes
 * kept: yauzl's default turns each into a "/", which would ship a repository's `a\b.txt` as
 * `a/b.txt`, a folder the repository does not have.
 */
export function storedEntryName(entry: yauzl.Entry): string {
  return yauzl.getFileNameLowLevel(entry.generalPurposeBitFlag, entry.fileNameRaw, entry.extraFields, true);
}

/**
 * Why an entry named `name` would be written outside the folder it is extracted into (an
 * absolute path, a `..` segment), or undefined. Not yauzl.validateFileName: that also refuses
 * `c:foo.txt`, a valid POSIX name, as a Windows drive path, and the builds run on Linux.
 */
export function escapingEntryName(name: string): string | undefined {
  if (name.startsWith('/')) return `absolute path: ${name}`;
  if (name.split('/').includes('..')) return `invalid relative path: ${name}`;
  return undefined;
}
