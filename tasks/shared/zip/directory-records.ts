import { randomUUID } from 'node:crypto';
import { closeSync, openSync, read, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';

const readAt = promisify(read);
/** Central directory records kept in memory before the rest spill to `spillDir` (~80,000 typical entries). */
export const SPILL_AFTER_BYTES = 8 * 1024 * 1024;

const SLAB_BYTES = 1024 * 1024;

/**
 * Central directory records, packed into 1 MiB slabs as they are added. With a `spillDir`,
 * slabs past the first SPILL_AFTER_BYTES go to a file there (unlinked as soon as it is
 * opened, so nothing is left behind whatever happens) and are read back by `slabs()`: a zip
 * of a million entries would otherwise hold ~100 MB of records until its end.
 */
export class DirectoryRecords {
  private readonly full: Buffer[] = [];
  private inMemory = 0;
  private spill: { readonly fd: number; bytes: number } | undefined;
  private disposed = false;
  private slab = Buffer.allocUnsafe(SLAB_BYTES);
  private used = 0;
  count = 0;
  bytes = 0;

  constructor(
    private readonly spillDir: string | undefined,
    private readonly spillAfter: number,
  ) {}

  add(record: Buffer): void {
    if (this.used + record.length > this.slab.length) {
      this.retire(this.slab.subarray(0, this.used));
      this.slab = Buffer.allocUnsafe(Math.max(SLAB_BYTES, record.length));
      this.used = 0;
    }
    record.copy(this.slab, this.used);
    this.used += record.length;
    this.count += 1;
    this.bytes += record.length;
  }

  /** The records in the order they were added. */
  async *slabs(): AsyncGenerator<Buffer> {
    if (this.disposed) throw new Error('the zip is closed: its central directory is gone');
    yield* this.full;
    if (this.spill !== undefined) {
      for (let at = 0; at < this.spill.bytes; ) {
        const chunk = Buffer.allocUnsafe(Math.min(SLAB_BYTES, this.spill.bytes - at));
        const { bytesRead } = await readAt(this.spill.fd, chunk, 0, chunk.length, at);
        if (bytesRead === 0)
          throw new Error(`the spilled central directory ends at ${at} of ${this.spill.bytes} bytes`);
        at += bytesRead;
        yield chunk.subarray(0, bytesRead);
      }
    }
    yield this.slab.subarray(0, this.used);
  }

  /** Closes the spill file, if any: its space is freed then. */
  dispose(): void {
    this.disposed = true;
    if (this.spill === undefined) return;
    closeSync(this.spill.fd);
    this.spill = undefined;
  }

  private retire(slab: Buffer): void {
    if (this.spillDir === undefined || (this.spill === undefined && this.inMemory + slab.length <= this.spillAfter)) {
      this.full.push(slab);
      this.inMemory += slab.length;
      return;
    }
    if (this.spill === undefined) {
      const path = join(this.spillDir, `.zip-directory-${randomUUID()}`);
      this.spill = { fd: openSync(path, 'w+', 0o600), bytes: 0 };
      unlinkSync(path);
    }
    // Synchronous: one write of 1 MiB per ~10,000 entries, and `add` stays synchronous.
    for (let at = 0; at < slab.length; )
      at += writeSync(this.spill.fd, slab, at, slab.length - at, this.spill.bytes + at);
    this.spill.bytes += slab.length;
  }
}
