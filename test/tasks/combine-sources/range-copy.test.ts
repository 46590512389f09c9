import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import * as yauzl from 'yauzl';
import { MIN_PART_SIZE, planParts, writeZipEnds } from '../../../tasks/combine-sources/range-copy';
import { STORED, zipEntries } from '../../../tasks/shared/zip';
import { emptyManifest } from '../../helpers/manifest';
import { unzipTest } from '../../helpers/zip';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

/** Every part but the last (the directory, not planned here) at least 5 MiB, none above 5 GiB, the range covered once. */
function expectValid(length: number, partSize: number): void {
  const plan = planParts(length, partSize)!;
  const problems: string[] = [];
  let next = plan.first;
  for (const [i, copy] of plan.copies.entries()) {
    if (copy.start !== next) problems.push(`copy ${i} starts at ${copy.start}, not ${next}`);
    if (copy.length < MIN_PART_SIZE || copy.length > 5 * GiB) problems.push(`copy ${i} has ${copy.length} bytes`);
    next += copy.length;
  }
  expect(problems).toEqual([]);
  expect(next).toBe(length);
  expect(plan.first).toBeGreaterThanOrEqual(MIN_PART_SIZE);
  expect(plan.copies.length + 2).toBeLessThanOrEqual(10_000);
}

describe('planParts', () => {
  it('answers undefined for a range smaller than a part: it cannot be copied', () => {
    expect(planParts(MIN_PART_SIZE - 1, 64 * MiB)).toBeUndefined();
  });

  it('puts a range of less than two parts in part 1 alone', () => {
    expect(planParts(10 * MiB - 1, 64 * MiB)).toEqual({ first: 10 * MiB - 1, copies: [] });
  });

  it('copies the rest after 5 MiB, in even parts no larger than the part size', () => {
    const plan = planParts(650 * MiB, 64 * MiB)!;

    expect(plan.first).toBe(5 * MiB);
    expect(plan.copies).toHaveLength(11);
    expect(
      Math.max(...plan.copies.map((c) => c.length)) - Math.min(...plan.copies.map((c) => c.length)),
    ).toBeLessThanOrEqual(1);
  });

  it.each([
    [10 * MiB, 10 * MiB],
    [15 * MiB + 1, 10 * MiB],
    [650 * MiB + 12_345, 64 * MiB],
    [5 * 1024 * GiB, 64 * MiB],
  ])('plans parts S3 accepts for %i bytes in parts of %i', (length, partSize) => {
    expectValid(length, partSize);
  });
});

describe('writeZipEnds', () => {
  const manifest = emptyManifest();
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'zip-ends-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('writes the tail to a file under tmpDir (head in memory), which together with the range make a zip; dispose deletes it', async () => {
    const data = Buffer.from('copied by S3');
    const { ends, layout } = await writeZipEnds(
      manifest,
      async (zip) => {
        const start = zip.position;
        // The range: one stored entry that S3 would copy, then one entry written after it.
        await zip.addCopiedEntries(
          [
            {
              entry: {
                name: 'a.txt',
                mode: 0o100644,
                mtime: { date: 0x21, time: 0 },
                compressionMethod: STORED,
                crc32: crc32(data),
                compressedSize: data.length,
                uncompressedSize: data.length,
              },
              offset: 0,
            },
          ],
          30 + 5 + data.length,
        );
        await zip.addBuffer('b.txt', Buffer.from('after'), {
          mode: 0o100644,
          mtime: { date: 0x21, time: 0 },
          compress: false,
        });
        return start;
      },
      dir,
    );
    const [folder] = readdirSync(dir);
    expect(ends.tail.path).toBe(join(dir, folder!, 'ends.zip'));
    const file = readFileSync(ends.tail.path);
    expect(ends.tail).toEqual({
      path: ends.tail.path,
      start: ends.head.length,
      length: file.length - ends.head.length,
    });
    expect(file.subarray(0, ends.head.length).equals(ends.head)).toBe(true);
    // The range's bytes, as S3 would copy them: a local header RawZipWriter would write, then the data.
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt16LE(1 << 11, 6); // UTF-8 names, as RawZipWriter marks every entry
    local.writeUInt16LE(0x21, 12);
    local.writeUInt32LE(crc32(data), 14);
    local.writeUInt32LE(data.length, 18);
    local.writeUInt32LE(data.length, 22);
    local.writeUInt16LE(5, 26);
    const zip = Buffer.concat([ends.head, local, Buffer.from('a.txt'), data, file.subarray(ends.tail.start)]);
    expect(zip.length).toBe(layout.size);
    const zipfile = await yauzl.fromBufferPromise(zip, { lazyEntries: true, autoClose: false });
    const names: string[] = [];
    for await (const entry of zipEntries(zipfile)) names.push(entry.fileName);
    zipfile.close();
    expect(names).toEqual(['stepdeploy-manifest.json', 'a.txt', 'b.txt']);
    // yauzl does not check CRC-32s: Info-ZIP does, the copied entry's included.
    writeFileSync(join(dir, 'assembled.zip'), zip);
    expect(unzipTest(join(dir, 'assembled.zip'))).toContain('No errors detected');
    rmSync(join(dir, 'assembled.zip'));

    await ends.dispose();
    expect(readdirSync(dir)).toEqual([]);
  });

  it('deletes its folder and throws when placing fails', async () => {
    await expect(
      writeZipEnds(manifest, async () => Promise.reject(new Error('the range does not tile')), dir),
    ).rejects.toThrow('the range does not tile');
    expect(readdirSync(dir)).toEqual([]);
  });
});
