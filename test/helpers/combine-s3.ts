import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buffer, text } from 'node:stream/consumers';
import { GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import * as yauzl from 'yauzl';
import type { ConditionalWrite } from '../../local/faults';
import { localS3Client, startLocalS3, type LocalS3 } from '../../local/s3';
import { combineSources } from '../../tasks/combine-sources/combine-sources';
import type { CombineSourcesEvent, FetchedSource } from '../../shared/contracts';
import { zipEntries } from '../../tasks/shared/zip';
import { makeZip, pythonZipTest, unzipTest } from './zip';

export const MiB = 1024 * 1024;
/** The combines here run at this instant, so that a test can build the manifest it expects. */
export const CREATED_AT = new Date('2025-01-01T12:00:05.000Z');

/** Answers the request with this S3 error status, or lets it through (undefined). */
export type Fault = (method: string, key: string, query: URLSearchParams) => number | undefined;

export interface Combined {
  readonly zip: Buffer;
  /** The S3 commands the combine sent, by name. */
  readonly commands: string[];
  readonly sent: unknown[];
  readonly lines: string[];
}

export interface Entry {
  readonly name: string;
  readonly mode: number;
  readonly method: number;
  readonly crc32: number;
  readonly size: number;
  readonly mtime: [number, number];
  /** sha256 of the bytes as stored (compressed): jest compares 12 MiB buffers byte by byte, far too slowly. */
  readonly raw: string;
  /** sha256 of the inflated bytes (yauzl checks the size). */
  readonly content: string;
}

export function eventFor(execution: string, sources: ReadonlyArray<FetchedSource>): CombineSourcesEvent {
  return {
    environment: 'acceptance',
    execution,
    requestedBy: 'jane',
    account: '111111111111',
    region: 'eu-west-1',
    deployRoleArn: 'arn:aws:iam::1:role/d',
    variables: {},
    sources,
  };
}

export function keyOf(execution: string): string {
  return `artifacts/acceptance/${execution}/source.zip`;
}

export function sha256(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Every entry as yauzl reads it, sizes validated, contents inflated. */
export async function entriesOf(zip: Buffer): Promise<Entry[]> {
  const zipfile = await yauzl.fromBufferPromise(zip, {
    lazyEntries: true,
    autoClose: false,
    validateEntrySizes: true,
    strictFileNames: true,
  });
  const entries: Entry[] = [];
  try {
    for await (const e of zipEntries(zipfile)) {
      const folder = e.fileName.endsWith('/');
      const raw = folder
        ? Buffer.alloc(0)
        : await buffer(await zipfile.openReadStreamPromise(e, { decodeFileData: false }));
      const content = folder ? Buffer.alloc(0) : await buffer(await zipfile.openReadStreamPromise(e));
      entries.push({
        name: e.fileName,
        mode: e.externalFileAttributes >>> 16,
        method: e.compressionMethod,
        crc32: e.crc32,
        size: e.uncompressedSize,
        mtime: [e.lastModFileDate, e.lastModFileTime],
        raw: sha256(raw),
        content: sha256(content),
      });
    }
  } finally {
    zipfile.close();
  }
  return entries;
}

/** The manifest, which must be the first entry. */
export async function manifestOf(zip: Buffer): Promise<unknown> {
  const zipfile = await yauzl.fromBufferPromise(zip, { lazyEntries: true, autoClose: false });
  try {
    const first = (await zipEntries(zipfile).next()).value as yauzl.Entry;
    expect(first.fileName).toBe('stepdeploy-manifest.json');
    return JSON.parse(await text(await zipfile.openReadStreamPromise(first)));
  } finally {
    zipfile.close();
  }
}

/**
 * A local S3 with one bucket and a temp folder, shared by the tests of a file: start it in
 * `beforeAll`, `reset()` it in `afterEach` and `stop()` it in `afterAll`.
 */
export class CombineS3 {
  /** Fails the S3 requests a test picks (fault injection of the local S3). */
  fault: Fault | undefined;
  /** Answers the conditional writes a test picks 409 ConditionalRequestConflict (see FaultPlan.conditionalWrite). */
  conflict: ((write: ConditionalWrite) => boolean) | undefined;

  private constructor(
    readonly s3: S3Client,
    readonly bucket: string,
    /** The local S3's data lives here too; tests may write their own temp files in it. */
    readonly dir: string,
    private readonly server: LocalS3,
    private readonly configSnapshot: Buffer,
  ) {}

  static async start(bucket: string): Promise<CombineS3> {
    const dir = mkdtempSync(join(tmpdir(), `${bucket}-`));
    // The server exists before the fixture does: the fault hook reads the fixture's field per request.
    let fixture: CombineS3 | undefined;
    const server = await startLocalS3({
      directory: dir,
      buckets: [bucket],
      fault: (method, _bucket, key, query) => fixture?.fault?.(method, key, query),
      conflict: (write) => fixture?.conflict?.(write) ?? false,
    });
    const configSnapshot = await makeZip([{ name: 'settings.yml', content: 'replicas: 2\n', mode: 0o100644 }]);
    fixture = new CombineS3(localS3Client(server.endpoint), bucket, dir, server, configSnapshot);
    return fixture;
  }

  reset(): void {
    this.fault = undefined;
    this.conflict = undefined;
    jest.restoreAllMocks();
  }

  async stop(): Promise<void> {
    this.s3.destroy();
    await this.server.close();
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** Snapshots of fresh commits, so that no test meets another's combine cache. */
  async snapshots(app: Buffer): Promise<FetchedSource[]> {
    const [appCommit, configCommit] = [randomBytes(20).toString('hex'), randomBytes(20).toString('hex')];
    const sources: FetchedSource[] = [
      {
        name: 'app',
        branch: 'main',
        path: '.',
        commit: appCommit,
        fetchBuildId: 'f:1',
        snapshotKey: `sources/app/${appCommit}.zip`,
      },
      {
        name: 'config',
        branch: 'develop',
        path: 'config/',
        commit: configCommit,
        fetchBuildId: 'f:2',
        snapshotKey: `sources/config/${configCommit}.zip`,
      },
    ];
    await this.s3.send(new PutObjectCommand({ Bucket: this.bucket, Key: sources[0]!.snapshotKey, Body: app }));
    await this.s3.send(
      new PutObjectCommand({ Bucket: this.bucket, Key: sources[1]!.snapshotKey, Body: this.configSnapshot }),
    );
    return sources;
  }

  /** Runs the combine, recording what it sent to S3 and logged, and downloads its artifact. */
  async combine(execution: string, sources: ReadonlyArray<FetchedSource>): Promise<Combined> {
    const lines: string[] = [];
    const send = jest.spyOn(this.s3, 'send');
    let sent: unknown[];
    try {
      await combineSources(eventFor(execution, sources), {
        s3: this.s3,
        bucket: this.bucket,
        now: () => CREATED_AT,
        log: (l) => lines.push(l),
      });
    } finally {
      sent = send.mock.calls.map(([command]) => command);
      send.mockRestore();
    }
    const commands = sent.map((command) => (command as object).constructor.name);
    return { zip: await this.download(keyOf(execution)), commands, sent, lines };
  }

  async download(key: string): Promise<Buffer> {
    const out = await this.s3.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }));
    return Buffer.from(await out.Body!.transformToByteArray());
  }

  /** Info-ZIP's check of every CRC-32, and Python's with `python` (they read from a file); answers unzip's report. */
  checkZip(zip: Buffer, { python = false } = {}): string {
    const file = join(this.dir, `test-${randomBytes(4).toString('hex')}.zip`);
    writeFileSync(file, zip);
    try {
      if (python) pythonZipTest(file);
      return unzipTest(file);
    } finally {
      rmSync(file);
    }
  }

  /** Multipart uploads s3rver still holds: a combine must complete or abort every one it starts. */
  leftoverUploads(): string[] {
    try {
      return readdirSync(join(this.dir, this.bucket, '._S3rver_uploads'));
    } catch {
      return [];
    }
  }
}
