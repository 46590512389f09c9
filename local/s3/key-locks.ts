import { isWrite, type ObjectRequest } from './request';

interface KeyState {
  readers: number;
  writer: boolean;
  readonly queue: Array<{ readonly exclusive: boolean; readonly grant: () => void }>;
}

/**
 * A readers-writer lock per ID, first come first served. s3rver writes an object in place
 * (truncate, then stream), so without it a read during a write sees a partial object or fails,
 * and two writes interleave; S3 never shows either. A conditional write checks and writes with
 * no other write in between.
 */
export class KeyLocks {
  private readonly keys = new Map<string, KeyState>();

  acquire(id: string, exclusive: boolean): Promise<() => void> {
    let state = this.keys.get(id);
    if (state === undefined) {
      state = { readers: 0, writer: false, queue: [] };
      this.keys.set(id, state);
    }
    const held = state;
    return new Promise((resolve) => {
      held.queue.push({ exclusive, grant: () => resolve(this.releaser(id, held, exclusive)) });
      this.grant(id, held);
    });
  }

  /** IDs with a holder or a waiter (an ID's state is dropped once it has neither). */
  get size(): number {
    return this.keys.size;
  }

  private grant(id: string, state: KeyState): void {
    for (let next = state.queue[0]; next !== undefined; next = state.queue[0]) {
      if (state.writer || (next.exclusive && state.readers > 0)) break;
      state.queue.shift();
      if (next.exclusive) state.writer = true;
      else state.readers += 1;
      next.grant();
    }
    if (!state.writer && state.readers === 0 && state.queue.length === 0) this.keys.delete(id);
  }

  private releaser(id: string, state: KeyState, exclusive: boolean): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      if (exclusive) state.writer = false;
      else state.readers -= 1;
      this.grant(id, state);
    };
  }
}

/**
 * The locks, always taken in this order so that no two requests each hold a lock the other waits
 * for: keys' (in the order of their IDs, see acquireKeys), then an upload's, then a part's.
 */
export interface Locks {
  readonly keys: KeyLocks;
  /**
   * One per multipart upload: UploadPart and UploadPartCopy share it; Complete and Abort, which read
   * the parts and then remove the upload's folder, have it alone, so no part changes under them and
   * no part is written into a removed upload.
   */
  readonly uploads: KeyLocks;
  /** One per upload part, so two uploads of one part number never interleave. */
  readonly parts: KeyLocks;
}

export function newLocks(): Locks {
  return { keys: new KeyLocks(), uploads: new KeyLocks(), parts: new KeyLocks() };
}

export interface KeyLock {
  readonly id: string;
  readonly exclusive: boolean;
}

export function keyId(target: { readonly bucket: string; readonly key: string }): string {
  return `${target.bucket}/${target.key}`;
}

/**
 * The key locks an object request takes: its key's (shared by reads, alone for writes) and, for a
 * CopyObject, its source's read lock too, as s3rver copies the source's file, which a write in
 * progress would have half-written. Part uploads take none: they do not change what a reader of
 * the key sees (they take their upload's and part's). The bucket-level writes, POST Object and
 * DeleteObjects, name their keys in their bodies: they take the locks in s3rver's store
 * (lockStoreWrites).
 */
export function keysLocked(request: ObjectRequest): KeyLock[] {
  const target = { id: keyId(request), exclusive: isWrite(request) };
  const source = request.operation === 'CopyObject' ? request.copySource : undefined;
  if (source === undefined || keyId(source) === target.id) return [target];
  return [target, { id: keyId(source), exclusive: false }];
}

/**
 * Takes the locks one after the other in the order of their IDs, so that two requests that each
 * need two keys (CopyObjects from a to b and from b to a) never each hold one the other waits for.
 */
export async function acquireKeys(keys: KeyLocks, wanted: ReadonlyArray<KeyLock>): Promise<() => void> {
  const releases: Array<() => void> = [];
  for (const lock of [...wanted].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))) {
    releases.push(await keys.acquire(lock.id, lock.exclusive));
  }
  return () => {
    for (const release of [...releases].reverse()) release();
  };
}
