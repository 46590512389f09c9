import { PathCollisionError } from './errors';

/**
 * Remembers who wrote each path of the combined artifact, so that no source silently replaces
 * another's file. A file also claims its parent folders: `config` as a file in one source and
 * `config/app.yml` in another cannot both be extracted either. Memory grows with the number of
 * entries, never with their size: ~40 bytes per path (its last segment's UTF-8 bytes, three
 * words and a hash slot, see PathTable), so a million paths fit a 512 MB Lambda.
 */
export class PathRegistry {
  private readonly paths = new PathTable();
  private readonly owners: string[] = [];
  private readonly ownerIds = new Map<string, number>();

  /**
   * Forgets every path, keeping the memory for the next ones: a full combine after a snapshot
   * copy that gave up reuses the copy's registry instead of growing a second one while the first
   * waits for a garbage collection (a million paths: ~40 MB each).
   */
  clear(): void {
    this.paths.clear();
    this.owners.length = 0;
    this.ownerIds.clear();
  }

  /** Claims a file path for `owner`; throws when any other entry already uses it. */
  claimFile(path: string, owner: string): void {
    const id = this.ownerId(owner);
    const { parent, name } = this.claimParents(path, id, owner);
    const existing = this.paths.find(parent, name);
    if (existing >= 0)
      throw collision(
        path,
        this.owners[this.paths.owner(existing)]!,
        owner,
        this.paths.isFolder(existing) ? 'a folder' : 'a file',
      );
    this.paths.add(parent, name, id, false);
  }

  /**
   * Claims a folder (without its trailing "/"). Answers false when the folder already exists:
   * folders merge, so a second source's `shared/` needs no second entry.
   */
  claimFolder(path: string, owner: string): boolean {
    const id = this.ownerId(owner);
    const { parent, name } = this.claimParents(path, id, owner);
    const existing = this.paths.find(parent, name);
    if (existing >= 0) {
      if (!this.paths.isFolder(existing))
        throw collision(path, this.owners[this.paths.owner(existing)]!, owner, 'a file');
      return false;
    }
    this.paths.add(parent, name, id, true);
    return true;
  }

  /**
   * Claims every folder above the path (a file there is a collision), and answers the path's own
   * folder and last segment. The path itself cannot exist before its parents do: checking them
   * first answers what checking it first would.
   */
  private claimParents(path: string, id: number, owner: string): { parent: number; name: string } {
    let parent = ROOT;
    let from = 0;
    for (let slash = path.indexOf('/'); slash !== -1; slash = path.indexOf('/', from)) {
      const segment = path.slice(from, slash);
      const existing = this.paths.find(parent, segment);
      if (existing < 0) parent = this.paths.add(parent, segment, id, true);
      else if (!this.paths.isFolder(existing))
        throw collision(path.slice(0, slash), this.owners[this.paths.owner(existing)]!, owner, 'a file');
      else parent = existing;
      from = slash + 1;
    }
    return { parent, name: path.slice(from) };
  }

  private ownerId(owner: string): number {
    let id = this.ownerIds.get(owner);
    if (id === undefined) {
      if (this.owners.length > MAX_OWNER) throw new Error(`more than ${MAX_OWNER + 1} sources write the artifact`);
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

/** The parent of a top-level path. */
const ROOT = 0xffffffff;
const MAX_OWNER = 0x7fff;
/** Arena chunk: a segment never straddles two (a zip name is at most 65,535 bytes). */
const CHUNK_BITS = 20;
const CHUNK_BYTES = 1 << CHUNK_BITS;
/** Records per chunk of the records array (3 words each). */
const RECORD_CHUNK_BITS = 16;
const RECORD_CHUNK = 1 << RECORD_CHUNK_BITS;

/**
 * A tree of paths, one record per segment: its folder's record number, where its UTF-8 bytes
 * are, their length, its owner and kind, in three 32-bit words; the bytes in 1 MiB chunks, and
 * an open-addressing hash table (linear probing) of record numbers keyed on (folder, segment).
 * `src/d42/file.txt` is three records, shared with every path under `src/d42/`, so a path costs
 * its last segment, not its whole length. The arena and the records
 * grow a chunk at a time, never by copying. Lookups compare bytes, so answers are exact; only
 * the hash is approximate.
 */
class PathTable {
  private readonly chunks: Buffer[] = [];
  /** The chunk being filled (chunks after it are kept from before a clear()). */
  private chunk = -1;
  private chunkUsed = CHUNK_BYTES;
  private readonly records: Uint32Array[] = [];
  private count = 0;
  /** Record number + 1 per slot, 0 for an empty slot; its size is a power of two, at most half full. */
  private slots = new Uint32Array(2048);
  private scratch = Buffer.allocUnsafe(4096);

  /** The record of `name` in folder `parent`, or -1. */
  find(parent: number, name: string): number {
    const length = this.encode(name);
    const mask = this.slots.length - 1;
    for (let i = hash(parent, this.scratch, length) & mask; ; i = (i + 1) & mask) {
      const slot = this.slots[i]!;
      if (slot === 0) return -1;
      const record = slot - 1;
      if (this.word(record, 0) === parent && this.lengthOf(record) === length && this.sameBytes(record, length))
        return record;
    }
  }

  /** Adds `name` in folder `parent` (find answered -1); answers its record number. */
  add(parent: number, name: string, owner: number, folder: boolean): number {
    const length = this.encode(name);
    if (2 * (this.count + 1) > this.slots.length) this.rehash(this.slots.length * 2);
    if (this.chunkUsed + length > CHUNK_BYTES) {
      this.chunk += 1;
      if (this.chunk === this.chunks.length) this.chunks.push(Buffer.allocUnsafe(CHUNK_BYTES));
      this.chunkUsed = 0;
    }
    const address = this.chunk * CHUNK_BYTES + this.chunkUsed;
    this.scratch.copy(this.chunks[this.chunk]!, this.chunkUsed, 0, length);
    this.chunkUsed += length;
    const record = this.count++;
    if (record >>> RECORD_CHUNK_BITS === this.records.length) this.records.push(new Uint32Array(3 * RECORD_CHUNK));
    const words = this.records[record >>> RECORD_CHUNK_BITS]!;
    const at = 3 * (record & (RECORD_CHUNK - 1));
    words[at] = parent;
    words[at + 1] = address;
    words[at + 2] = (length << 16) | (owner << 1) | (folder ? 1 : 0);
    this.place(record, hash(parent, this.scratch, length));
    return record;
  }

  /** Empty again; the chunks, records and slots allocated so far are reused. */
  clear(): void {
    this.count = 0;
    this.chunk = -1;
    this.chunkUsed = CHUNK_BYTES;
    this.slots.fill(0);
  }

  owner(record: number): number {
    return (this.word(record, 2) >>> 1) & MAX_OWNER;
  }

  isFolder(record: number): boolean {
    return (this.word(record, 2) & 1) === 1;
  }

  private lengthOf(record: number): number {
    return this.word(record, 2) >>> 16;
  }

  private word(record: number, index: number): number {
    return this.records[record >>> RECORD_CHUNK_BITS]![3 * (record & (RECORD_CHUNK - 1)) + index]!;
  }

  /** `name`'s UTF-8 bytes into the scratch buffer; answers how many. */
  private encode(name: string): number {
    const length = Buffer.byteLength(name, 'utf8');
    if (length > 0xffff) throw new Error(`a path segment of ${length} bytes is longer than a zip name can be`);
    if (length > this.scratch.length) this.scratch = Buffer.allocUnsafe(Math.max(length, 2 * this.scratch.length));
    this.scratch.write(name, 0, length, 'utf8');
    return length;
  }

  private sameBytes(record: number, length: number): boolean {
    const address = this.word(record, 1);
    const chunk = this.chunks[Math.floor(address / CHUNK_BYTES)]!;
    const start = address % CHUNK_BYTES;
    return chunk.compare(this.scratch, 0, length, start, start + length) === 0;
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
      const address = this.word(record, 1);
      const chunk = this.chunks[Math.floor(address / CHUNK_BYTES)]!;
      const start = address % CHUNK_BYTES;
      this.place(record, hash(this.word(record, 0), chunk, this.lengthOf(record), start));
    }
  }
}

/** FNV-1a, 32 bits, of the folder's record number then the segment's bytes. */
function hash(parent: number, bytes: Uint8Array, length: number, start = 0): number {
  let h = 0x811c9dc5;
  h = Math.imul(h ^ (parent & 0xff), 0x01000193);
  h = Math.imul(h ^ ((parent >>> 8) & 0xff), 0x01000193);
  h = Math.imul(h ^ ((parent >>> 16) & 0xff), 0x01000193);
  h = Math.imul(h ^ (parent >>> 24), 0x01000193);
  for (let i = start; i < start + length; i++) h = Math.imul(h ^ bytes[i]!, 0x01000193);
  return h >>> 0;
}
