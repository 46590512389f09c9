import { constants, type Stats } from 'node:fs';
import { copyFile, type FileHandle, open, stat } from 'node:fs/promises';

/**
 * The read and write size when CompleteMultipartUpload copies parts: 4 MiB positional reads and
 * writes were the fastest of the sizes and ways measured (BENCHMARKS.md, "Local S3").
 */
const COPY_CHUNK = 4 * 1024 * 1024;

/** The bytes of a file that are a part. */
export interface PartRange {
  readonly start: number;
  readonly size: number;
}

/** A stored part: the bytes of `file` that it is, its number and its ETag (hex). */
export interface StoredPart extends PartRange {
  readonly number: number;
  readonly etag: string;
  readonly file: string;
}

/** Writes the parts one after the other into a new file (see writePart). */
export async function writeConcatenation(file: string, parts: ReadonlyArray<StoredPart>): Promise<void> {
  if (await copyAndOverwrite(file, parts)) return;
  const out = await open(file, 'wx');
  try {
    const buffers = copyBuffers();
    let position = 0;
    for (const part of parts) {
      await writePart(out, part, position, buffers);
      position += part.size;
    }
  } finally {
    await out.close();
  }
}

/**
 * When every part copied by reference sits at the same offset in the new object as in its
 * source, and they all come from one source object that they mostly cover, the new object is
 * that source with the uploaded parts written over it, cut to size: fs.copyFile copies it inside
 * the kernel (copy_file_range), several times faster than reading and writing it in chunks. That
 * is a re-run of combine-sources whose manifest entry is as long as the earlier artifact's (the
 * same commits, an execution name of the same length). Answers false when the parts are not like
 * that, having written nothing.
 */
async function copyAndOverwrite(file: string, parts: ReadonlyArray<StoredPart>): Promise<boolean> {
  const positions: number[] = [];
  let size = 0;
  for (const part of parts) {
    positions.push(size);
    size += part.size;
  }
  const copied = parts.filter(isCopiedPart);
  if (copied.length === 0 || parts.some((part, i) => isCopiedPart(part) && part.start !== positions[i])) return false;
  // A copied part's file is a hard link to its source's object file: one inode, one source.
  const sources = await Promise.all(copied.map((part) => stat(part.file)));
  const [source] = sources as [Stats, ...Stats[]];
  if (sources.some((st) => st.ino !== source.ino || st.dev !== source.dev)) return false;
  // A range past the source's end is refused by the part-by-part copy, never filled in here.
  if (copied.some((part) => part.start + part.size > source.size)) return false;
  if (2 * copied.reduce((sum, part) => sum + part.size, 0) < source.size) return false;
  await copyFile(copied[0]!.file, file, constants.COPYFILE_EXCL);
  const out = await open(file, 'r+');
  try {
    const buffers = copyBuffers();
    for (const [i, part] of parts.entries()) {
      if (!isCopiedPart(part)) await writePart(out, part, positions[i]!, buffers);
    }
    await out.truncate(size);
  } finally {
    await out.close();
  }
  return true;
}

function copyBuffers(): [Buffer, Buffer] {
  return [Buffer.allocUnsafe(COPY_CHUNK), Buffer.allocUnsafe(COPY_CHUNK)];
}

/** Copies a part's bytes into `out` at `position`: positional reads and writes of COPY_CHUNK, each read overlapping the write before it. */
async function writePart(
  out: FileHandle,
  part: StoredPart,
  position: number,
  buffers: [Buffer, Buffer],
): Promise<void> {
  const input = await open(part.file, 'r');
  try {
    let written: Promise<void> = Promise.resolve();
    for (let offset = 0, turn = 0; offset < part.size; turn++) {
      const buffer = buffers[turn % 2]!;
      const { bytesRead } = await input.read(buffer, 0, Math.min(COPY_CHUNK, part.size - offset), part.start + offset);
      if (bytesRead === 0) throw new Error(`part ${part.number} has fewer than its ${part.size} bytes`);
      await written;
      written = writeAll(out, buffer.subarray(0, bytesRead), position + offset);
      // Awaited at the next turn or after the loop; handled now so a failure is not reported as unhandled meanwhile.
      written.catch(() => undefined);
      offset += bytesRead;
    }
    await written;
  } finally {
    await input.close();
  }
}

/** UploadPartCopy stores a part as `<N>.source`, a link to its source (see copyPart). */
function isCopiedPart(part: StoredPart): boolean {
  return part.file.endsWith('.source');
}

async function writeAll(out: FileHandle, data: Buffer, position: number): Promise<void> {
  for (let done = 0; done < data.length; ) {
    done += (await out.write(data, done, data.length - done, position + done)).bytesWritten;
  }
}
