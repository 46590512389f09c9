import { S3Client } from '@aws-sdk/client-s3';
import { copyCombined, MIN_PART_SIZE, planParts } from '../../tasks/combine-sources/copy-combined';
import { createManifest } from '../../tasks/combine-sources/manifest';

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
    expect(Math.max(...plan.copies.map((c) => c.length)) - Math.min(...plan.copies.map((c) => c.length))).toBeLessThanOrEqual(1);
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

describe('copyCombined', () => {
  it('fails on a part size S3 would refuse, naming the value', async () => {
    const manifest = createManifest(
      { environment: 'a', execution: 'e', requestedBy: null, deployRoleArn: 'r', variables: {}, sources: [] },
      new Date(0),
    );
    const index = { formatVersion: 3, sources: [], artifactKey: 'k', etag: '"e"', rangeStart: 0, rangeLength: 20 * MiB, foreignLength: 0, size: 21 * MiB, entryCount: 1 };

    await expect(copyCombined({ s3: new S3Client({}), bucket: 'b', key: 'k2', manifest, index, copyPartSize: 6 * MiB })).rejects.toThrow(
      `copyPartSize must be a whole number of bytes between 10 MiB and 5 GiB, got ${6 * MiB}`,
    );
  });
});
