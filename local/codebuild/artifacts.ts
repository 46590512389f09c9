import { createReadStream, lstatSync, readdirSync, readlinkSync, statSync } from 'node:fs';
import { join, posix } from 'node:path';
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import picomatch from 'picomatch';
import type { ArtifactsSpec } from './buildspec';
import { ArtifactsError } from './errors';
import type { ArtifactsSettings } from './types';
import { isClientError, sendFileStream } from '../../tasks/shared/s3';
import { writeZip } from './zip-writer';

// The zip itself is written in zip-writer.ts; these stay importable from here, where callers look for artifacts.
export { compresses, SAMPLED_FILE_BYTES, writeZip, type WriteZipOptions } from './zip-writer';

export interface ArtifactFile {
  /** Where the file is on disk. */
  readonly path: string;
  /** Its name in the artifact (posix, relative). */
  readonly name: string;
  readonly symlinkTarget?: string;
}

/**
 * The files an `artifacts` section selects, as CodeBuild documents it: `files` globs relative to
 * the source directory or `base-directory` (itself a path or a glob of top-level directories,
 * whose own name is not kept), minus `exclude-paths`, flattened by `discard-paths`. Dotfiles
 * match `**` as in CodeBuild (hence `.git/**` in exclude-paths).
 */
export function collectArtifactFiles(srcDir: string, spec: ArtifactsSpec): ArtifactFile[] {
  const bases = resolveBaseDirectories(srcDir, spec.baseDirectory);
  const include = picomatch(spec.files as string[], { dot: true });
  const exclude = spec.excludePaths.length > 0 ? picomatch(spec.excludePaths as string[], { dot: true }) : () => false;
  const byName = new Map<string, ArtifactFile>();
  for (const base of bases) {
    for (const rel of walk(join(srcDir, base))) {
      if (!include(rel) || exclude(rel)) continue;
      const name = spec.discardPaths ? posix.basename(rel) : rel;
      const path = join(srcDir, base, rel);
      const existing = byName.get(name);
      if (existing) {
        throw new ArtifactsError(
          `two files would have the same name ${JSON.stringify(name)} in the artifact: ${existing.path} and ${path}` +
            (spec.discardPaths ? ' (discard-paths: yes flattens directories)' : ''),
        );
      }
      const stat = lstatSync(path);
      byName.set(name, stat.isSymbolicLink() ? { path, name, symlinkTarget: readlinkSync(path) } : { path, name });
    }
  }
  if (byName.size === 0) {
    throw new ArtifactsError(
      `no matching artifact paths found (files: ${spec.files.join(', ')}` +
        (spec.baseDirectory !== undefined ? `, base-directory: ${spec.baseDirectory}` : '') +
        (spec.excludePaths.length > 0 ? `, exclude-paths: ${spec.excludePaths.join(', ')}` : '') +
        ')',
    );
  }
  return [...byName.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

function resolveBaseDirectories(srcDir: string, base: string | undefined): string[] {
  if (base === undefined || base === '' || base === '.') return ['.'];
  const clean = base.replace(/^(\.\/)+/, '').replace(/\/+$/, '');
  if (clean.startsWith('/') || clean.split('/').includes('..')) {
    throw new ArtifactsError(
      `artifacts.base-directory must stay inside the source directory, got ${JSON.stringify(base)}`,
    );
  }
  if (!picomatch.scan(clean).isGlob) {
    const dir = join(srcDir, clean);
    if (!isDirectory(dir)) throw new ArtifactsError(`artifacts.base-directory ${JSON.stringify(base)} does not exist`);
    return [clean];
  }
  const match = picomatch(clean, { dot: true });
  const found = readdirSync(srcDir, { withFileTypes: true })
    .filter((d) => d.isDirectory() && match(d.name))
    .map((d) => d.name)
    .sort();
  if (found.length === 0)
    throw new ArtifactsError(`artifacts.base-directory ${JSON.stringify(base)} matches no directory`);
  return found;
}

/** Every file and symlink under `dir`, as posix paths relative to it; symlinked directories are not entered. */
function* walk(dir: string, prefix = ''): Generator<string> {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const rel = prefix === '' ? entry.name : `${prefix}/${entry.name}`;
    if (entry.isDirectory()) yield* walk(join(dir, entry.name), rel);
    else if (entry.isFile() || entry.isSymbolicLink()) yield rel;
  }
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/**
 * Expands `$VAR` and `${VAR}` in `artifacts.name` from the build's final environment. CodeBuild
 * evaluates the name with a shell; locally it is only expanded, never run (build input can
 * reach it), so `$(...)` and backquotes are refused.
 */
export function expandArtifactName(template: string, vars: Readonly<Record<string, string>>): string {
  if (template.includes('$(') || template.includes('`')) {
    throw new ArtifactsError(
      `artifacts.name ${JSON.stringify(template)}: command substitution is not run locally; use $VAR or \${VAR} only`,
    );
  }
  const name = template.replace(
    /\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)/g,
    (_m, a?: string, b?: string) => {
      return vars[(a ?? b) as string] ?? '';
    },
  );
  checkObjectName(name, `artifacts.name ${JSON.stringify(template)}`);
  return name;
}

/** Names of the variables `artifacts.name` refers to. */
export function referencedVariables(template: string): string[] {
  const names = new Set<string>();
  for (const m of template.matchAll(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)/g))
    names.add((m[1] ?? m[2]) as string);
  return [...names];
}

function checkObjectName(name: string, what: string): void {
  if (
    name === '' ||
    name.startsWith('/') ||
    name.split('/').some((p) => p === '..' || p === '.') ||
    /[\x00-\x1f]/.test(name)
  ) {
    throw new ArtifactsError(`${what} expands to ${JSON.stringify(name)}, which is not a usable artifact name`);
  }
}

export interface UploadTarget {
  readonly bucket: string;
  /** The object key (ZIP) or key prefix (NONE). */
  readonly key: string;
  readonly packaging: 'ZIP' | 'NONE';
}

/** Where the artifact goes: `<Path>/[<build uuid>/]<Name>` in the bucket. */
export function artifactTarget(settings: ArtifactsSettings, name: string, buildUuid: string): UploadTarget {
  if (!settings.Location) throw new ArtifactsError('artifacts Type S3 needs a Location (the bucket name)');
  const parts = [settings.Path ?? '', settings.NamespaceType === 'BUILD_ID' ? buildUuid : '', name]
    .flatMap((p) => p.split('/'))
    .filter((p) => p !== '');
  checkObjectName(parts.join('/'), 'artifact path');
  return { bucket: settings.Location, key: parts.join('/'), packaging: settings.Packaging ?? 'NONE' };
}

export async function uploadArtifacts(
  s3: S3Client,
  target: UploadTarget,
  files: ReadonlyArray<ArtifactFile>,
  zipPath: string,
): Promise<void> {
  if (target.packaging === 'ZIP') {
    await writeZip(files, zipPath);
    await putFile(s3, target.bucket, target.key, zipPath, 'application/zip');
    return;
  }
  for (const f of files) {
    // Packaging NONE uploads each file's content; a symlink is uploaded as what it points to.
    await putFile(s3, target.bucket, `${target.key}/${f.name}`, f.path);
  }
}

/** Attempts at a PUT of a file, each with a stream of its own (sendFileStream); an S3 4xx is not retried. */
const FILE_PUT_ATTEMPTS = 3;

async function putFile(s3: S3Client, Bucket: string, Key: string, path: string, ContentType?: string): Promise<void> {
  const ContentLength = statSync(path).size;
  await sendFileStream(
    () => createReadStream(path),
    (Body) =>
      s3.send(new PutObjectCommand({ Bucket, Key, Body, ContentLength, ...(ContentType ? { ContentType } : {}) })),
    { attempts: FILE_PUT_ATTEMPTS, retry: (error) => !isClientError(error) },
  );
}
