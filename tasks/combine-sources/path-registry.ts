import { PathCollisionError } from './errors';

/**
 * Remembers who wrote each path of the combined artifact, so that no source silently replaces
 * another's file. A file also claims its parent folders: `config` as a file in one source and
 * `config/app.yml` in another cannot both be extracted either. Memory grows with the number of
 * entries, never with their size: ~50 bytes per path (its UTF-8 bytes in an arena, a few typed
 * array slots), where a Map of strings took ~320 bytes, 64 MB of a combine's heap at 200,000
 * entries.
 */
export class PathRegistry {
  private readonly paths = new PathTable();
  private readonly owners: string[] = [];
  private readonly ownerIds = new Map<string, number>();

  /** Claims a file path for `owner`; throws when any other entry already uses it. */
  claimFile(path: string, owner: string): void {
    const id = this.ownerId(owner);
    const existing = this.paths.get(path);
    if (existing !== undefined) throw collision(path, this.owners[existing.owner]!, owner, existing.folder ? 'a folder' : 'a file');
    this.claimParents(path, id, owner);
    this.paths.add(path, id, false);
  }

  /**
   * Claims a folder (without its trailing "/"). Answers false when the folder already exists:
   * folders merge, so a second source's `shared/` needs no second entry.
   */
  claimFolder(path: string, owner: string): boolean {
    const id = this.ownerId(owner);
    const existing = this.paths.get(path);
    if (existing !== undefined && !existing.folder) throw collision(path, this.owners[existing.owner]!, owner, 'a file');
    this.claimParents(path, id, owner);
    if (existing !== undefined) return false;
    this.paths.add(path, id, true);
    return true;
  }

  private claimParents(path: string, id: number, owner: string): void {
    for (let slash = path.indexOf('/'); slash !== -1; slash = path.indexOf('/', slash + 1)) {
      const parent = path.slice(0, slash);
      const existing = this.paths.get(parent);
      if (existing === undefined) this.paths.add(parent, id, true);
      else if (!existing.folder) throw collision(parent, this.owners[existing.owner]!, owner, 'a file');
    }
  }

  private ownerId(owner: string): number {
    let id = this.ownerIds.get(owner);
    if (id === undefined) {
      id = this.owners.push(owner) - 1;
      this.ownerIds.set(owner, id);
    }
    return id;
  }
}

function collision(path: string, first: string, second: string, what: string): PathCollisionError {
  const who = first === second ? `${first} twice` : `both ${first} and ${second}`;
  return new PathCollisionError(
    `"${path}" in the combined artifact is written by ${who} (already ${what}); ` +
      'give the sources distinct paths in stepdeploy.config.yml or remove the file from one of them',
  );
}

/**
 * A set of paths with an owner and a kind each, compact: the UTF-8 bytes of every path in one
 * growing buffer, and an open-addressing hash table (linear probing) of record numbers. Lookups
 * compare bytes, so the answers are exact; only the hash is approximate.
 */
class PathTable {
  private arena = Buffer.allocUnsafe(64 * 1024);
  private arenaUsed = 0;
  private starts = new Float64Array(1024);
  private lengths = new Uint32Array(1024);
  private ownerOf = new Uint32Array(1024);
  private folderFlags = new Uint8Array(1024);
  private count = 0;
  /** Record number + 1 per slot, 0 for an empty slot; its size is a power of two, at most half full. */
  private slots = new Uint32Array(2048);

  get(path: string): { readonly owner: number; readonly folder: boolean } | undefined {
    const bytes = Buffer.from(path, 'utf8');
    const record = this.find(bytes, hash(bytes));
    if (record < 0) return undefined;
    return { owner: this.ownerOf[record]!, folder: this.folderFlags[record] === 1 };
  }

  /** Adds a path that get() answered undefined for. */
  add(path: string, owner: number, folder: boolean): void {
    const bytes = Buffer.from(path, 'utf8');
    if (2 * (this.count + 1) > this.slots.length) this.rehash(this.slots.length * 2);
    if (this.count === this.starts.length) this.growRecords();
    if (this.arenaUsed + bytes.length > this.arena.length) {
      const bigger = Buffer.allocUnsafe(Math.max(2 * this.arena.length, this.arenaUsed + bytes.length));
      this.arena.copy(bigger, 0, 0, this.arenaUsed);
      this.arena = bigger;
    }
    const record = this.count++;
    bytes.copy(this.arena, this.arenaUsed);
    this.starts[record] = this.arenaUsed;
    this.lengths[record] = bytes.length;
    this.ownerOf[record] = owner;
    this.folderFlags[record] = folder ? 1 : 0;
    this.arenaUsed += bytes.length;
    this.place(record, hash(bytes));
  }

  private find(bytes: Buffer, h: number): number {
    const mask = this.slots.length - 1;
    for (let i = h & mask; ; i = (i + 1) & mask) {
      const slot = this.slots[i]!;
      if (slot === 0) return -1;
      const record = slot - 1;
      const start = this.starts[record]!;
      if (this.lengths[record] === bytes.length && this.arena.compare(bytes, 0, bytes.length, start, start + bytes.length) === 0) return record;
    }
  }

  private place(record: number, h: number): void {
    const mask = this.slots.length - 1;
    let i = h & mask;
    while (this.slots[i] !== 0) i = (i + 1) & mask;
    this.slots[i] = record + 1;
  }

  private rehash(size: number): void {
    this.slots = new Uint32Array(size);
    for (let record = 0; record < this.count; record++) {
      const start = this.starts[record]!;
      this.place(record, hash(this.arena.subarray(start, start + this.lengths[record]!)));
    }
  }

  private growRecords(): void {
    const size = this.starts.length * 2;
    const grow = <T extends Float64Array | Uint32Array | Uint8Array>(old: T, make: (n: number) => T): T => {
      const bigger = make(size);
      bigger.set(old);
      return bigger;
    };
    this.starts = grow(this.starts, (n) => new Float64Array(n));
    this.lengths = grow(this.lengths, (n) => new Uint32Array(n));
    this.ownerOf = grow(this.ownerOf, (n) => new Uint32Array(n));
    this.folderFlags = grow(this.folderFlags, (n) => new Uint8Array(n));
  }
}

/** FNV-1a, 32 bits. */
function hash(bytes: Uint8Array): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < bytes.length; i++) h = Math.imul(h ^ bytes[i]!, 0x01000193);
  return h >>> 0;
}
