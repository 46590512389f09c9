import { buffer as collect } from 'node:stream/consumers';
import type { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { openZipInS3, RawZipWriter, STORED, toDosDateTime } from '../../../../tasks/shared/zip';

const MTIME = toDosDateTime(new Date(2026, 0, 1, 12, 0, 0));

/** A zip of `count` one-byte stored entries with ~60-byte names. */
async function zipOf(count: number): Promise<{ bytes: Buffer; names: string[] }> {
  const zip = new RawZipWriter();
  const out = collect(zip.output);
  const names: string[] = [];
  for (let i = 0; i < count; i++) {
    const name = `services/payments/src/main/resources/d${i % 300}/entry-${String(i).padStart(6, '0')}.json`;
    names.push(name);
    await zip.addRawEntry(
      {
        name,
        mode: 0o100644,
        mtime: MTIME,
        compressionMethod: STORED,
        crc32: 0xe8b7be43,
        compressedSize: 1,
        uncompressedSize: 1,
      },
      [Buffer.from('a')],
    );
  }
  await zip.end();
  return { bytes: await out, names };
}

/** An S3 client that answers ranged GETs from `bytes`, checks the ETag pin, and records each range. */
function fakeS3(bytes: Buffer, ranges: Array<[number, number]>): S3Client {
  return {
    send: async (command: GetObjectCommand) => {
      expect(command.input.IfMatch).toBe('"etag"');
      const [, first, last] = /^bytes=(\d+)-(\d+)$/.exec(command.input.Range!)!.map(Number) as [number, number, number];
      ranges.push([first, last]);
      const slice = bytes.subarray(first, last + 1);
      return { Body: { transformToByteArray: async () => new Uint8Array(slice) } };
    },
  } as unknown as S3Client;
}

describe('openZipInS3', () => {
  it('streams a directory of 70,000 entries (ZIP64 count) through small windows, records straddling their edges, front to back', async () => {
    const { bytes, names } = await zipOf(70_000);
    const ranges: Array<[number, number]> = [];
    const window = 256 * 1024;

    const directory = await openZipInS3(
      fakeS3(bytes, ranges),
      { bucket: 'b', key: 'k.zip', size: bytes.length, etag: '"etag"' },
      { windowBytes: window },
    );
    const read: Array<{ name: string; offset: number }> = [];
    try {
      for await (const e of directory.entries())
        read.push({ name: e.fileNameRaw.toString('utf8'), offset: e.relativeOffsetOfLocalHeader });
    } finally {
      directory.close();
    }

    expect(read.map((e) => e.name)).toEqual(names);
    // Each entry: a 30-byte local header, its name and one byte of data. One comparison, not 70,000.
    const offsets: number[] = [];
    let offset = 0;
    for (const name of names) {
      offsets.push(offset);
      offset += 30 + Buffer.byteLength(name) + 1;
    }
    expect(read.map((e) => e.offset)).toEqual(offsets);
    expect(directory.offset).toBe(offset);
    const directoryBytes = bytes.length - offset;
    // Only the directory and the end records were read, never entry data, in few windows.
    expect(Math.min(...ranges.map(([first]) => first))).toBe(offset);
    expect(ranges.length).toBeLessThanOrEqual(Math.ceil(directoryBytes / (window - 200)) + 3);
    expect(ranges.length).toBeGreaterThan(directoryBytes / window);
    // Writing and reading 70,000 entries takes ~15 s alone and passed 60 s at load 17: this bounds a hang.
  }, 180_000);

  it('fails when a range comes back short, instead of reading garbage', async () => {
    const { bytes } = await zipOf(10);
    const short = {
      send: async (command: GetObjectCommand) => {
        const [, first, last] = /^bytes=(\d+)-(\d+)$/.exec(command.input.Range!)!.map(Number) as [
          number,
          number,
          number,
        ];
        return { Body: { transformToByteArray: async () => new Uint8Array(bytes.subarray(first, last)) } };
      },
    } as unknown as S3Client;

    await expect(openZipInS3(short, { bucket: 'b', key: 'k.zip', size: bytes.length, etag: '"etag"' })).rejects.toThrow(
      /asked for \d+ bytes at \d+ of s3:\/\/b\/k\.zip, got/,
    );
  });
});
