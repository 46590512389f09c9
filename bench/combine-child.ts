import '../local/quiet-sdk';
import { readFileSync } from 'node:fs';
import { HeadBucketCommand } from '@aws-sdk/client-s3';
import { combineSources } from '../tasks/combine-sources/combine-sources';
// Loaded for its code alone: this process then holds what the Lambda's bundle holds (the handler's
// event schema: zod and yaml), though the combine below is called directly, on a warm client.
import '../tasks/combine-sources/handler';
import type { CombineSourcesEvent } from '../shared/contracts';
import { localS3Client } from '../local/s3-client';

/**
 * Runs CombineConfigAndCode alone in this process, so that its peak RSS is its own:
 * `node combine-child.js <request.json>` (bundled by bench/fetch-combine.ts) → one JSON line
 * `{ ms, maxRssBytes, key }`. The local S3's client comes from local/s3-client.ts, not
 * local/s3/: through the server's module, s3rver and its dependencies were 1.1 MB of this
 * bundle's 1.7 MB, code the Lambda never loads.
 */
interface ChildRequest {
  readonly endpoint: string;
  readonly bucket: string;
  readonly event: CombineSourcesEvent;
}

async function main(): Promise<void> {
  const request = JSON.parse(readFileSync(process.argv[2]!, 'utf8')) as ChildRequest;
  const s3 = localS3Client(request.endpoint);
  // A warm Lambda has its SDK client set up (credentials, endpoint, first connection): so does this one.
  await s3.send(new HeadBucketCommand({ Bucket: request.bucket }));
  const start = performance.now();
  const result = await combineSources(request.event, { s3, bucket: request.bucket });
  const ms = performance.now() - start;
  s3.destroy();
  process.stdout.write(`${JSON.stringify({ ms, maxRssBytes: peakRssBytes(), key: result.key })}\n`);
}

/**
 * This process's peak RSS: VmHWM, the high-water mark of its own memory map, on Linux. Not
 * process.resourceUsage().maxRSS: Linux carries the peak of the process that forked it over the
 * exec into it, so a child spawned by a bench holding 160 MB reported 160 MB whatever it used.
 */
function peakRssBytes(): number {
  const status = readStatus();
  const match = status === undefined ? null : /^VmHWM:\s+(\d+) kB$/m.exec(status);
  // resourceUsage().maxRSS is in kilobytes.
  return match === null ? process.resourceUsage().maxRSS * 1024 : Number(match[1]) * 1024;
}

function readStatus(): string | undefined {
  try {
    return readFileSync('/proc/self/status', 'utf8');
  } catch {
    return undefined;
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
