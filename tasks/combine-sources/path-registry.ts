import { PathCollisionError } from './errors';

/**
 * Remembers who wrote each path of the combined artifact, so that no source silently replaces
 * another's file. A file also claims its parent folders: `config` as a file in one source and
 * `config/app.yml` in another cannot both be extracted either. Memory grows with the number of
 * entries, never with their size.
 */
export class PathRegistry {
  private readonly files = new Map<string, string>();
  private readonly folders = new Map<string, string>();

  /** Claims a file path for `owner`; throws when any other entry already uses it. */
  claimFile(path: string, owner: string): void {
    this.refuseIfTaken(path, owner);
    this.claimParents(path, owner);
    this.files.set(path, owner);
  }

  /**
   * Claims a folder (without its trailing "/"). Answers false when the folder already exists:
   * folders merge, so a second source's `shared/` needs no second entry.
   */
  claimFolder(path: string, owner: string): boolean {
    this.refuseFile(path, owner);
    this.claimParents(path, owner);
    if (this.folders.has(path)) return false;
    this.folders.set(path, owner);
    return true;
  }

  private claimParents(path: string, owner: string): void {
    const parts = path.split('/');
    for (let i = 1; i < parts.length; i++) {
      const parent = parts.slice(0, i).join('/');
      this.refuseFile(parent, owner);
      if (!this.folders.has(parent)) this.folders.set(parent, owner);
    }
  }

  private refuseIfTaken(path: string, owner: string): void {
    this.refuseFile(path, owner);
    const folderOwner = this.folders.get(path);
    if (folderOwner !== undefined) throw collision(path, folderOwner, owner, 'a folder');
  }

  private refuseFile(path: string, owner: string): void {
    const fileOwner = this.files.get(path);
    if (fileOwner !== undefined) throw collision(path, fileOwner, owner, 'a file');
  }
}

function collision(path: string, first: string, second: string, what: string): PathCollisionError {
  const who = first === second ? `${first} twice` : `both ${first} and ${second}`;
  return new PathCollisionError(
    `"${path}" in the combined artifact is written by ${who} (already ${what}); ` +
      'give the sources distinct paths in stepdeploy.config.yml or remove the file from one of them',
  );
}
