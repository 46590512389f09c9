import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  HeadObjectCommand,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { mockClient } from 'aws-sdk-client-mock';
import 'aws-sdk-client-mock-jest';
import * as yauzl from 'yauzl';
import type { CombineSourcesEvent } from '../../../shared/contracts';
import { ARTIFACT_CONFLICT_ATTEMPTS, combineSources } from '../../../tasks/combine-sources/combine-sources';
import { createHandler } from '../../../tasks/combine-sources/handler';
import { ConditionalWriteConflictError } from '../../../tasks/shared/errors';
import { buildEnvironment, deployEnvironment } from '../../../tasks/combine-sources/environment';
import { createManifest } from '../../../tasks/combine-sources/manifest';
import { SMALL_ENTRY_BYTES } from '../../../tasks/combine-sources/snapshot';
import { zipEntries } from '../../../tasks/shared/zip';
import { startS3rver, type LocalS3 } from '../../helpers/s3rver';
import { makeZip, readZip, renameEntry, unzipTest, type ZipEntrySpec } from '../../helpers/zip';

const BUCKET = 'stepdeploy-artifacts';
const KEY = 'artifacts/acceptance/acceptance-20250101T120000-abc123/source.zip';
const APP_COMMIT = 'a1b2c3d4e5f60718293a4b5c6d7e8f9012345678';
const CONFIG_COMMIT = '0f1e2d3c4b5a69788796a5b4c3d2e1f001234567';
const CREATED_AT = new Date('2025-01-01T12:00:05.000Z');

function event(overrides: Partial<CombineSourcesEvent> = {}): CombineSourcesEvent {
  return {
    environment: 'acceptance',
    execution: 'acceptance-20250101T120000-abc123',
    requestedBy: 'jane',
    account: '222222222222',
    region: 'ap-southeast-2',
    deployRoleArn: 'arn:aws:iam::222222222222:role/deploy',
    variables: { TEMPLATE_BUCKET: 'templates-acc' },
    sources: [
      {
        name: 'app',
        branch: 'feature/cloudformationchange',
        path: '.',
        commit: APP_COMMIT,
        fetchBuildId: 'fetch:1',
        snapshotKey: `sources/app/${APP_COMMIT}.zip`,
      },
      {
        name: 'config',
        branch: 'develop',
        path: 'config/',
        commit: CONFIG_COMMIT,
        fetchBuildId: 'fetch:2',
        snapshotKey: `sources/config/${CONFIG_COMMIT}.zip`,
      },
    ],
    ...overrides,
  };
}

const APP_SNAPSHOT: ZipEntrySpec[] = [
  { name: 'stepdeploy/', mode: 0o40755 },
  { name: 'stepdeploy/build', content: '#!/bin/sh\nrake run\n', mode: 0o100755 },
  { name: 'lib/generator/templates.rb', content: 'module Templates; end\n', mode: 0o100644 },
  { name: 'README.md', content: '# app\n' },
];
const CONFIG_SNAPSHOT: ZipEntrySpec[] = [
  { name: 'acceptance/', mode: 0o40755 },
  { name: 'acceptance/settings.yml', content: 'replicas: 2\n', mode: 0o100644 },
];

describe('buildEnvironment / deployEnvironment', () => {
  it('lists the environment, execution, account, region, requester, each source commit and branch, then the variables', () => {
    const e = event({ sources: [{ ...event().sources[0]!, name: 'feature-flags' }] });
    const variables = buildEnvironment(createManifest(e, CREATED_AT), e.variables, e);
    expect(variables).toEqual([
      { Name: 'ENVIRONMENT', Type: 'PLAINTEXT', Value: 'acceptance' },
      { Name: 'STEPDEPLOY_EXECUTION', Type: 'PLAINTEXT', Value: 'acceptance-20250101T120000-abc123' },
      { Name: 'STEPDEPLOY_ACCOUNT', Type: 'PLAINTEXT', Value: '222222222222' },
      { Name: 'STEPDEPLOY_REGION', Type: 'PLAINTEXT', Value: 'ap-southeast-2' },
      { Name: 'STEPDEPLOY_REQUESTED_BY', Type: 'PLAINTEXT', Value: 'jane' },
      { Name: 'STEPDEPLOY_COMMIT_FEATURE_FLAGS', Type: 'PLAINTEXT', Value: APP_COMMIT },
      { Name: 'STEPDEPLOY_BRANCH_FEATURE_FLAGS', Type: 'PLAINTEXT', Value: 'feature/cloudformationchange' },
      { Name: 'TEMPLATE_BUCKET', Type: 'PLAINTEXT', Value: 'templates-acc' },
    ]);
    expect(deployEnvironment(variables, e.deployRoleArn).at(-1)).toEqual({
      Name: 'STEPDEPLOY_DEPLOY_ROLE_ARN',
      Type: 'PLAINTEXT',
      Value: 'arn:aws:iam::222222222222:role/deploy',
    });
  });

  it('leaves STEPDEPLOY_REQUESTED_BY out when nobody is named', () => {
    const e = event({ requestedBy: null });
    const names = buildEnvironment(createManifest(e, CREATED_AT), e.variables, e).map((v) => v.Name);
    expect(names).not.toContain('STEPDEPLOY_REQUESTED_BY');
  });

  it('fails when an environment variable would replace one stepdeploy, CodeBuild or the AWS SDKs rely on', () => {
    const e = event({
      variables: { ENVIRONMENT: 'prod', STEPDEPLOY_X: '1', AWS_REGION: 'us-east-1', TEMPLATE_BUCKET: 'b' },
    });
    expect(() => buildEnvironment(createManifest(e, CREATED_AT), e.variables, e)).toThrow(
      expect.objectContaining({
        name: 'VariableConflictError',
        message: expect.stringMatching(
          /reserved variable\(s\) ENVIRONMENT \(.*\), STEPDEPLOY_X \(.*\), AWS_REGION \(stepdeploy sets it to the environment's region/,
        ),
      }),
    );
  });
});

/** A GetObject mock that serves ranges of a buffer, as S3 does for yauzl's reads: a stream with the SDK's transform methods. */
function serve(buffer: Buffer) {
  return async (input: { Range?: string }) => {
    const match = /^bytes=(\d+)-(\d+)$/.exec(input.Range ?? '');
    const slice = match ? buffer.subarray(Number(match[1]), Number(match[2]) + 1) : buffer;
    const body = Object.assign(Readable.from([slice]), { transformToByteArray: async () => new Uint8Array(slice) });
    return { Body: body as never, ContentLength: slice.length };
  };
}

/** Each entry's stored form: what a raw copy must keep byte for byte. */
async function rawEntries(
  zip: Buffer,
): Promise<Map<string, { method: number; crc32: number; compressedSize: number; data: Buffer }>> {
  const zipfile = await yauzl.fromBufferPromise(zip, { lazyEntries: true, autoClose: false });
  const entries = new Map<string, { method: number; crc32: number; compressedSize: number; data: Buffer }>();
  try {
    for await (const entry of zipEntries(zipfile)) {
      const data = await buffer(await zipfile.openReadStreamPromise(entry, { decodeFileData: false }));
      entries.set(entry.fileName, {
        method: entry.compressionMethod,
        crc32: entry.crc32,
        compressedSize: entry.compressedSize,
        data,
      });
    }
  } finally {
    zipfile.close();
  }
  return entries;
}

/** Sets the "encrypted" flag of every central directory record, which is where yauzl reads it. */
function markEncrypted(zip: Buffer): Buffer {
  const patched = Buffer.from(zip);
  const signature = Buffer.from([0x50, 0x4b, 0x01, 0x02]);
  for (let i = patched.indexOf(signature); i !== -1; i = patched.indexOf(signature, i + 1)) {
    patched.writeUInt16LE(patched.readUInt16LE(i + 8) | 1, i + 8);
  }
  return patched;
}

const notFound = Object.assign(new Error('NotFound'), { name: 'NotFound', $metadata: { httpStatusCode: 404 } });
const noSuchKey = Object.assign(new Error('NoSuchKey'), { name: 'NoSuchKey', $metadata: { httpStatusCode: 404 } });

describe('combineSources (S3 call shapes)', () => {
  const s3 = new S3Client({ region: 'eu-west-1' });
  const s3Mock = mockClient(s3);
  let snapshots: Record<string, Buffer>;

  beforeAll(async () => {
    snapshots = {
      [`sources/app/${APP_COMMIT}.zip`]: await makeZip(APP_SNAPSHOT),
      [`sources/config/${CONFIG_COMMIT}.zip`]: await makeZip(CONFIG_SNAPSHOT),
    };
  });

  beforeEach(() => {
    s3Mock.reset();
    // Any other key is missing, as the combine cache's index (combined/…) is on a first combine.
    s3Mock
      .on(GetObjectCommand)
      .callsFake((input: { Key: string; Range?: string }) =>
        input.Key in snapshots ? serve(snapshots[input.Key]!)(input) : Promise.reject(noSuchKey),
      );
  });

  it('writes a small artifact with one conditional PutObject', async () => {
    s3Mock.on(HeadObjectCommand).rejects(notFound);
    s3Mock.on(PutObjectCommand).resolves({ ETag: '"e1"' });

    const result = await combineSources(event(), { s3, bucket: BUCKET, now: () => CREATED_AT });

    expect(s3Mock).toHaveReceivedCommandWith(HeadObjectCommand, { Bucket: BUCKET, Key: KEY });
    expect(s3Mock).toHaveReceivedCommandWith(GetObjectCommand, {
      Bucket: BUCKET,
      Key: `sources/app/${APP_COMMIT}.zip`,
    });
    expect(s3Mock).toHaveReceivedCommandWith(PutObjectCommand, {
      Bucket: BUCKET,
      Key: KEY,
      IfNoneMatch: '*',
      ContentType: 'application/zip',
    });
    expect(result).toMatchObject({
      key: KEY,
      location: `${BUCKET}/${KEY}`,
      buildPath: 'artifacts/acceptance/acceptance-20250101T120000-abc123',
      manifest: { createdAt: CREATED_AT.toISOString() },
    });
  });

  it('makes the completion of a multipart upload conditional too', async () => {
    const big = randomBytes(6 * 1024 * 1024);
    snapshots['sources/app/big.zip'] = await makeZip([{ name: 'assets/blob.bin', content: big }]);
    s3Mock.on(HeadObjectCommand).rejects(notFound);
    s3Mock.on(CreateMultipartUploadCommand).resolves({ UploadId: 'u1' });
    s3Mock.on(UploadPartCommand).resolves({ ETag: '"p"' });
    s3Mock.on(CompleteMultipartUploadCommand).resolves({ ETag: '"e1"' });
    const e = event({ sources: [{ ...event().sources[0]!, snapshotKey: 'sources/app/big.zip' }] });

    await combineSources(e, { s3, bucket: BUCKET, partSize: 5 * 1024 * 1024 });

    expect(s3Mock).toHaveReceivedCommandTimes(UploadPartCommand, 2);
    expect(s3Mock).toHaveReceivedCommandWith(CompleteMultipartUploadCommand, {
      Bucket: BUCKET,
      Key: KEY,
      UploadId: 'u1',
      IfNoneMatch: '*',
    });
    expect(s3Mock).not.toHaveReceivedCommand(PutObjectCommand);
  });

  it('answers from the existing artifact when another invocation won the conditional write', async () => {
    const existing = await makeZip([
      {
        name: 'stepdeploy-manifest.json',
        content: JSON.stringify(createManifest(event(), new Date('2025-01-01T11:00:00Z'))),
      },
    ]);
    s3Mock.on(HeadObjectCommand).rejectsOnce(notFound).resolves({ ContentLength: existing.length, ETag: '"e0"' });
    s3Mock.on(PutObjectCommand).rejects(
      Object.assign(new Error('At least one of the pre-conditions you specified did not hold'), {
        name: 'PreconditionFailed',
        $metadata: { httpStatusCode: 412 },
      }),
    );
    s3Mock.on(GetObjectCommand, { Key: KEY }).callsFake(serve(existing));

    const result = await combineSources(event(), { s3, bucket: BUCKET });

    expect(result.manifest.createdAt).toBe('2025-01-01T11:00:00.000Z');
    expect(s3Mock).toHaveReceivedCommandWith(GetObjectCommand, { Key: KEY, IfMatch: '"e0"' });
  });

  it('fails with SnapshotError when a snapshot is missing, and uploads nothing', async () => {
    s3Mock.on(HeadObjectCommand).rejects(notFound);
    s3Mock
      .on(GetObjectCommand, { Key: `sources/config/${CONFIG_COMMIT}.zip` })
      .rejects(Object.assign(new Error('NoSuchKey'), { name: 'NoSuchKey', $metadata: { httpStatusCode: 404 } }));

    await expect(combineSources(event(), { s3, bucket: BUCKET })).rejects.toMatchObject({
      name: 'SnapshotError',
      message: expect.stringContaining(`sources/config/${CONFIG_COMMIT}.zip`),
    });
    expect(s3Mock).not.toHaveReceivedCommand(PutObjectCommand);
    expect(s3Mock).not.toHaveReceivedCommand(CompleteMultipartUploadCommand);
  });

  it('leaves no staging files behind', async () => {
    const tmp = await mkdtemp(join(tmpdir(), 'combine-test-'));
    s3Mock.on(HeadObjectCommand).rejects(notFound);
    s3Mock.on(PutObjectCommand).resolves({});

    try {
      await combineSources(event(), { s3, bucket: BUCKET, tmpDir: tmp });

      expect(await readdir(tmp)).toEqual([]);
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  });
  it('first removes the staging folders a stopped combine left behind, and only those', async () => {
    const tmp = await mkdtemp(join(tmpdir(), 'combine-test-'));
    const gone = execFileSync('sh', ['-c', 'echo $$'], { encoding: 'utf8' }).trim();
    const stale = [`stepdeploy-combine-${process.pid}-timedout`, `stepdeploy-combine-${gone}-crashed`];
    // Another live process's combine (a local runtime, a test worker), other tools' folders, files.
    const kept = [
      `stepdeploy-combine-${process.ppid}-running`,
      'stepdeploy-ends-abc',
      'other-tool-xyz',
      'stepdeploy-combine-7-note.txt',
    ];
    for (const name of [...stale, ...kept.slice(0, 3)]) {
      await mkdir(join(tmp, name));
      await writeFile(join(tmp, name, 'snapshot.zip'), randomBytes(1024));
    }
    await writeFile(join(tmp, kept[3]!), 'a file, not a staging folder');
    s3Mock.on(HeadObjectCommand).rejects(notFound);
    s3Mock.on(PutObjectCommand).resolves({});

    try {
      // Two at once in one process: neither removes the other's folder while it stages.
      await Promise.all([
        combineSources(event(), { s3, bucket: BUCKET, tmpDir: tmp }),
        combineSources(event({ execution: 'acceptance-20250101T120000-other1' }), { s3, bucket: BUCKET, tmpDir: tmp }),
      ]);

      expect((await readdir(tmp)).sort()).toEqual([...kept].sort());
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  });
});

describe('combineSources when S3 answers the artifact write 409 ConditionalRequestConflict', () => {
  const s3 = new S3Client({ region: 'eu-west-1' });
  const s3Mock = mockClient(s3);
  let snapshots: Record<string, Buffer>;
  const waits: number[] = [];
  const deps = {
    s3,
    bucket: BUCKET,
    now: () => CREATED_AT,
    log: () => undefined,
    sleep: async (ms: number) => void waits.push(ms),
  };
  const conflict = () =>
    new S3ServiceException({
      name: 'ConditionalRequestConflict',
      $fault: 'client',
      $metadata: { httpStatusCode: 409 },
      message: 'A conflicting operation occurred',
    });
  const artifactPuts = () => s3Mock.commandCalls(PutObjectCommand, { Key: KEY });

  beforeAll(async () => {
    snapshots = {
      [`sources/app/${APP_COMMIT}.zip`]: await makeZip(APP_SNAPSHOT),
      [`sources/config/${CONFIG_COMMIT}.zip`]: await makeZip(CONFIG_SNAPSHOT),
    };
  });

  beforeEach(() => {
    waits.length = 0;
    s3Mock.reset();
    s3Mock
      .on(GetObjectCommand)
      .callsFake((input: { Key: string; Range?: string }) =>
        input.Key in snapshots ? serve(snapshots[input.Key]!)(input) : Promise.reject(noSuchKey),
      );
    s3Mock.on(PutObjectCommand).resolves({ ETag: '"index"' });
  });

  it('PutObject: a 409 wrote nothing, so the artifact is written again, whole and still If-None-Match', async () => {
    s3Mock.on(HeadObjectCommand).rejects(notFound);
    s3Mock.on(PutObjectCommand, { Key: KEY }).rejectsOnce(conflict()).resolves({ ETag: '"e1"' });

    const result = await combineSources(event(), deps);

    expect(result.manifest.createdAt).toBe(CREATED_AT.toISOString());
    expect(artifactPuts()).toHaveLength(2);
    // lib-storage hands a single-part body over as bytes.
    const [first, second] = artifactPuts().map((call) => Buffer.from(call.args[0].input.Body as Uint8Array));
    expect(second!.equals(first!)).toBe(true);
    expect((await readZip(second!)).map((e) => e.name)).toContain('stepdeploy-manifest.json');
    for (const call of artifactPuts()) expect(call.args[0].input.IfNoneMatch).toBe('*');
    expect(waits).toHaveLength(1);
  });

  it('CompleteMultipartUpload: a 409 starts a new multipart upload and uploads every part again (as S3 says), the first one aborted', async () => {
    snapshots['sources/app/big.zip'] = await makeZip([
      { name: 'assets/blob.bin', content: randomBytes(6 * 1024 * 1024) },
    ]);
    s3Mock.on(HeadObjectCommand).rejects(notFound);
    s3Mock.on(CreateMultipartUploadCommand).resolvesOnce({ UploadId: 'u1' }).resolves({ UploadId: 'u2' });
    s3Mock.on(UploadPartCommand).resolves({ ETag: '"p"' });
    s3Mock.on(CompleteMultipartUploadCommand).rejectsOnce(conflict()).resolves({ ETag: '"e2"' });
    const e = event({ sources: [{ ...event().sources[0]!, snapshotKey: 'sources/app/big.zip' }] });

    await combineSources(e, { ...deps, partSize: 5 * 1024 * 1024 });

    expect(s3Mock).toHaveReceivedCommandTimes(CreateMultipartUploadCommand, 2);
    const parts = s3Mock
      .commandCalls(UploadPartCommand)
      .map((call) => `${call.args[0].input.UploadId}:${call.args[0].input.PartNumber}`);
    expect(parts.sort()).toEqual(['u1:1', 'u1:2', 'u2:1', 'u2:2']);
    const completes = s3Mock.commandCalls(CompleteMultipartUploadCommand).map((call) => call.args[0].input);
    expect(completes.map((c) => [c.UploadId, c.IfNoneMatch])).toEqual([
      ['u1', '*'],
      ['u2', '*'],
    ]);
    expect(s3Mock).toHaveReceivedCommandWith(AbortMultipartUploadCommand, { UploadId: 'u1' });
    expect(s3Mock).not.toHaveReceivedCommandWith(AbortMultipartUploadCommand, { UploadId: 'u2' });
  });

  it("a 409 then a 412: the artifact is read back, never assumed to be this invocation's or another's; the same commits answer its manifest", async () => {
    const existing = await makeZip([
      {
        name: 'stepdeploy-manifest.json',
        content: JSON.stringify(createManifest(event(), new Date('2025-01-01T11:00:00Z'))),
      },
    ]);
    s3Mock.on(HeadObjectCommand).rejectsOnce(notFound).resolves({ ContentLength: existing.length, ETag: '"e0"' });
    s3Mock
      .on(PutObjectCommand, { Key: KEY })
      .rejectsOnce(conflict())
      .rejects(
        Object.assign(new Error('At least one of the pre-conditions you specified did not hold'), {
          name: 'PreconditionFailed',
          $metadata: { httpStatusCode: 412 },
        }),
      );
    s3Mock.on(GetObjectCommand, { Key: KEY }).callsFake(serve(existing));

    const result = await combineSources(event(), deps);

    expect(result.manifest.createdAt).toBe('2025-01-01T11:00:00.000Z');
    expect(artifactPuts()).toHaveLength(2);
  });

  it('a 409 on every attempt fails with ConditionalWriteConflictError naming the artifact, after ARTIFACT_CONFLICT_ATTEMPTS whole writes', async () => {
    s3Mock.on(HeadObjectCommand).rejects(notFound);
    s3Mock.on(PutObjectCommand, { Key: KEY }).rejects(conflict());

    const error = await combineSources(event(), deps).catch((err: unknown) => err);

    expect(error).toBeInstanceOf(ConditionalWriteConflictError);
    expect((error as Error).message).toContain(`s3://${BUCKET}/${KEY}`);
    expect(artifactPuts()).toHaveLength(ARTIFACT_CONFLICT_ATTEMPTS);
    expect(waits).toHaveLength(ARTIFACT_CONFLICT_ATTEMPTS - 1);
  });
});

describe('combineSources against a real local S3 (s3rver)', () => {
  let s3: LocalS3;

  beforeAll(async () => {
    s3 = await startS3rver({ buckets: [BUCKET] });
  });
  afterAll(async () => {
    await s3.stop();
  });

  async function put(key: string, body: Buffer): Promise<void> {
    await s3.client.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: body }));
  }

  async function download(key: string): Promise<Buffer> {
    const response = await s3.client.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
    return Buffer.from(await response.Body!.transformToByteArray());
  }

  async function exists(key: string): Promise<boolean> {
    return s3.client.send(new HeadObjectCommand({ Bucket: BUCKET, Key: key })).then(
      () => true,
      () => false,
    );
  }

  /** Each test gets its own execution, so their artifacts never meet. */
  async function scenario(execution: string, app: ZipEntrySpec[], config: ZipEntrySpec[] = CONFIG_SNAPSHOT) {
    const e = event({ execution });
    await put(e.sources[0]!.snapshotKey, await makeZip(app));
    await put(e.sources[1]!.snapshotKey, await makeZip(config));
    return { event: e, key: `artifacts/acceptance/${execution}/source.zip` };
  }

  it('combines the sources under their paths, keeps modes, and puts the manifest first', async () => {
    const { event: e, key } = await scenario('round-trip', APP_SNAPSHOT);

    const result = await combineSources(e, { s3: s3.client, bucket: BUCKET, now: () => CREATED_AT });

    expect(result.key).toBe(key);
    const entries = await readZip(await download(key));
    expect(entries.map((x) => x.name)).toEqual([
      'stepdeploy-manifest.json',
      'stepdeploy/',
      'stepdeploy/build',
      'lib/generator/templates.rb',
      'README.md',
      'config/acceptance/',
      'config/acceptance/settings.yml',
    ]);
    const byName = new Map(entries.map((x) => [x.name, x]));
    expect(byName.get('stepdeploy/build')).toMatchObject({ mode: 0o100755, content: '#!/bin/sh\nrake run\n' });
    expect(byName.get('config/acceptance/settings.yml')).toMatchObject({ mode: 0o100644, content: 'replicas: 2\n' });
    expect(byName.get('stepdeploy/')!.mode).toBe(0o40755);
    expect(JSON.parse(byName.get('stepdeploy-manifest.json')!.content)).toEqual({
      environment: 'acceptance',
      execution: 'round-trip',
      requestedBy: 'jane',
      createdAt: '2025-01-01T12:00:05.000Z',
      sources: [
        {
          name: 'app',
          branch: 'feature/cloudformationchange',
          commit: APP_COMMIT,
          snapshotKey: `sources/app/${APP_COMMIT}.zip`,
          path: '.',
        },
        {
          name: 'config',
          branch: 'develop',
          commit: CONFIG_COMMIT,
          snapshotKey: `sources/config/${CONFIG_COMMIT}.zip`,
          path: 'config/',
        },
      ],
    });
  });

  it("copies each entry's compressed bytes as they are, into a zip that Info-ZIP tests clean", async () => {
    const big = { name: 'assets/notes.txt', content: 'replicas: 2\n'.repeat(10_000), mode: 0o100644 };
    // Stored larger than SMALL_ENTRY_BYTES: streamed, where smaller entries are read whole.
    const random = { name: 'assets/random.bin', content: randomBytes(SMALL_ENTRY_BYTES + 4096), mode: 0o100644 };
    const { event: e, key } = await scenario('raw-copy', [...APP_SNAPSHOT, big, random]);
    const dir = await mkdtemp(join(tmpdir(), 'combine-raw-'));

    await combineSources(e, { s3: s3.client, bucket: BUCKET });

    const combined = await download(key);
    const [source, copy] = [await rawEntries(await download(e.sources[0]!.snapshotKey)), await rawEntries(combined)];
    expect(copy.get('assets/notes.txt')).toEqual(source.get('assets/notes.txt'));
    expect(source.get('assets/random.bin')!.compressedSize).toBeGreaterThan(SMALL_ENTRY_BYTES);
    expect(copy.get('assets/random.bin')).toEqual(source.get('assets/random.bin'));
    expect(copy.get('stepdeploy/build')).toEqual(source.get('stepdeploy/build'));
    await writeFile(join(dir, 'source.zip'), combined);
    try {
      expect(unzipTest(join(dir, 'source.zip'))).toContain('No errors detected');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('fails with SnapshotError on an encrypted entry, which a raw copy would hand over unreadable', async () => {
    const e = event({ execution: 'encrypted' });
    await put(e.sources[0]!.snapshotKey, markEncrypted(await makeZip([{ name: 'secret.txt', content: 'x' }])));
    await put(e.sources[1]!.snapshotKey, await makeZip(CONFIG_SNAPSHOT));

    await expect(combineSources(e, { s3: s3.client, bucket: BUCKET })).rejects.toMatchObject({
      name: 'SnapshotError',
      message: expect.stringContaining('"secret.txt" in snapshot sources/app/'),
    });
    expect(await exists('artifacts/acceptance/encrypted/source.zip')).toBe(false);
  });

  it.each([
    ['small', 'x'],
    ['large', randomBytes(SMALL_ENTRY_BYTES + 4096)],
  ])(
    'fails with SnapshotError when a %s entry has no local header where the directory says, and writes nothing',
    async (size, content) => {
      const execution = `bad-local-header-${size}`;
      const e = event({ execution });
      const zip = await makeZip([
        { name: 'first.txt', content: 'ok' },
        { name: 'broken.bin', content },
      ]);
      // The second local header's signature, where the directory says the entry starts.
      const at = zip.indexOf(Buffer.from('PK\x03\x04', 'latin1'), 4);
      zip.writeUInt32LE(0x12345678, at);
      await put(e.sources[0]!.snapshotKey, zip);
      await put(e.sources[1]!.snapshotKey, await makeZip(CONFIG_SNAPSHOT));

      await expect(combineSources(e, { s3: s3.client, bucket: BUCKET })).rejects.toMatchObject({
        name: 'SnapshotError',
        message: expect.stringMatching(/sources\/app\/.*invalid local file header signature: 0x12345678/),
      });
      expect(await exists(`artifacts/acceptance/${execution}/source.zip`)).toBe(false);
    },
  );

  it('returns the same result on a redrive and does not rewrite the artifact', async () => {
    const { event: e, key } = await scenario('redrive', APP_SNAPSHOT);
    const first = await combineSources(e, { s3: s3.client, bucket: BUCKET, now: () => CREATED_AT });
    const before = await s3.client.send(new HeadObjectCommand({ Bucket: BUCKET, Key: key }));
    // A different snapshot under the same key proves the second call never reads the snapshots again.
    await put(e.sources[0]!.snapshotKey, await makeZip([{ name: 'changed.txt', content: 'x' }]));

    const second = await combineSources(e, {
      s3: s3.client,
      bucket: BUCKET,
      now: () => new Date('2025-01-02T00:00:00Z'),
    });

    expect(second).toEqual(first);
    const after = await s3.client.send(new HeadObjectCommand({ Bucket: BUCKET, Key: key }));
    expect(after.ETag).toBe(before.ETag);
    expect(after.LastModified).toEqual(before.LastModified);
  });

  it('fails with ArtifactConflictError when the existing artifact holds other commits', async () => {
    const { event: e } = await scenario('conflict', APP_SNAPSHOT);
    await combineSources(e, { s3: s3.client, bucket: BUCKET });
    const otherCommit = 'ffffffffffffffffffffffffffffffffffffffff';
    const other = event({
      execution: 'conflict',
      sources: [
        { ...e.sources[0]!, commit: otherCommit, snapshotKey: `sources/app/${otherCommit}.zip` },
        e.sources[1]!,
      ],
    });

    await expect(combineSources(other, { s3: s3.client, bucket: BUCKET })).rejects.toMatchObject({
      name: 'ArtifactConflictError',
      message: expect.stringContaining(`app@${otherCommit}`),
    });
  });

  it('fails when two sources write the same file, naming both, and writes nothing', async () => {
    const { event: e, key } = await scenario('collision', [
      ...APP_SNAPSHOT,
      { name: 'config/acceptance/settings.yml', content: 'x' },
    ]);

    await expect(combineSources(e, { s3: s3.client, bucket: BUCKET })).rejects.toMatchObject({
      name: 'PathCollisionError',
      message: expect.stringMatching(/"config\/acceptance\/settings\.yml".*both source "app" and source "config"/),
    });
    expect(await exists(key)).toBe(false);
  });

  it("merges app files inside the config source's folder quietly, as the README says a user should expect", async () => {
    const app: ZipEntrySpec[] = [
      ...APP_SNAPSHOT,
      { name: 'config/', mode: 0o40700 },
      { name: 'config/other.json', content: '{}' },
      { name: 'config/acceptance/extra.yml', content: 'x' },
    ];
    const { event: e, key } = await scenario('folder-merge', app, [
      { name: 'acceptance/', mode: 0o40755 },
      ...CONFIG_SNAPSHOT.slice(1),
    ]);

    await combineSources(e, { s3: s3.client, bucket: BUCKET, now: () => CREATED_AT });

    const entries = await readZip(await download(key));
    expect(entries.filter((x) => x.name.startsWith('config/')).map((x) => x.name)).toEqual([
      'config/',
      'config/other.json',
      'config/acceptance/extra.yml',
      'config/acceptance/settings.yml',
    ]);
    expect(entries.find((x) => x.name === 'config/')!.mode).toBe(0o40700);
  });

  it('fails when a file of one source is a folder of another', async () => {
    const { event: e } = await scenario('file-vs-folder', [...APP_SNAPSHOT, { name: 'config', content: 'x' }]);

    await expect(combineSources(e, { s3: s3.client, bucket: BUCKET })).rejects.toMatchObject({
      name: 'PathCollisionError',
      message: expect.stringContaining('"config"'),
    });
  });

  it('fails when a source ships its own stepdeploy-manifest.json', async () => {
    const { event: e } = await scenario('manifest-clash', [{ name: 'stepdeploy-manifest.json', content: '{}' }]);

    await expect(combineSources(e, { s3: s3.client, bucket: BUCKET })).rejects.toMatchObject({
      name: 'PathCollisionError',
      message: expect.stringContaining('the stepdeploy manifest and source "app"'),
    });
  });

  it('refuses a zip-slip entry, naming the source, and writes nothing', async () => {
    const e = event({ execution: 'zip-slip' });
    const slip = renameEntry(
      await makeZip([{ name: 'xx/xx/evil.sh', content: 'rm -rf /' }]),
      'xx/xx/evil.sh',
      '../../evil.sh',
    );
    await put(e.sources[0]!.snapshotKey, slip);
    await put(e.sources[1]!.snapshotKey, await makeZip(CONFIG_SNAPSHOT));

    await expect(combineSources(e, { s3: s3.client, bucket: BUCKET })).rejects.toMatchObject({
      name: 'UnsafeEntryError',
      message: expect.stringMatching(/source "app".*invalid relative path: \.\.\/\.\.\/evil\.sh/),
    });
    expect(await exists('artifacts/acceptance/zip-slip/source.zip')).toBe(false);
  });

  it('refuses an absolute entry path', async () => {
    const e = event({ execution: 'absolute' });
    const slip = renameEntry(await makeZip([{ name: 'xetc/passwd', content: 'x' }]), 'xetc/passwd', '/etc/passwd');
    await put(e.sources[0]!.snapshotKey, slip);
    await put(e.sources[1]!.snapshotKey, await makeZip(CONFIG_SNAPSHOT));

    await expect(combineSources(e, { s3: s3.client, bucket: BUCKET })).rejects.toMatchObject({
      name: 'UnsafeEntryError',
      message: expect.stringContaining('absolute path: /etc/passwd'),
    });
  });

  it('keeps symlinks inside the artifact and refuses one that points outside', async () => {
    const inside = await scenario('symlink-ok', [
      ...APP_SNAPSHOT,
      { name: 'lib/settings.yml', content: '../config/acceptance/settings.yml', mode: 0o120777 },
    ]);
    await combineSources(inside.event, { s3: s3.client, bucket: BUCKET });
    const link = (await readZip(await download(inside.key))).find((x) => x.name === 'lib/settings.yml');
    expect(link).toMatchObject({ mode: 0o120777, content: '../config/acceptance/settings.yml' });

    const outside = await scenario('symlink-out', [
      { name: 'lib/passwd', content: '../../etc/passwd', mode: 0o120777 },
    ]);
    await expect(combineSources(outside.event, { s3: s3.client, bucket: BUCKET })).rejects.toMatchObject({
      name: 'UnsafeEntryError',
      message: expect.stringContaining('symlink "lib/passwd"'),
    });
  });

  it('refuses a chain of symlinks whose links each stay inside but lead outside through one another', async () => {
    // The issue's chain: up0 is the root, up1 = up0/.. is above it, ... up12 is /, and pw is /etc/passwd.
    const chain: ZipEntrySpec[] = [{ name: 'a/b/up0', content: '../..', mode: 0o120777 }];
    for (let i = 1; i <= 12; i++) chain.push({ name: `a/b/up${i}`, content: `up${i - 1}/..`, mode: 0o120777 });
    const escaping = await scenario('symlink-chain', [
      ...APP_SNAPSHOT,
      ...chain,
      { name: 'pw', content: 'a/b/up12/etc/passwd', mode: 0o120777 },
    ]);

    await expect(combineSources(escaping.event, { s3: s3.client, bucket: BUCKET })).rejects.toMatchObject({
      name: 'UnsafeEntryError',
      message:
        'symlink "a/b/up1" (source "app") points outside the artifact through other links (it resolves to ..); ' +
        'the combined artifact is refused: make the link lead to a path inside the repository, or remove it',
    });
    expect(await exists(escaping.key)).toBe(false);

    const parent = await scenario('symlink-parent', [
      ...APP_SNAPSHOT,
      { name: 'parent', content: 'a/b/up0/..', mode: 0o120777 },
      chain[0]!,
    ]);
    await expect(combineSources(parent.event, { s3: s3.client, bucket: BUCKET })).rejects.toThrow(
      'symlink "parent" (source "app") points outside the artifact through other links',
    );
    expect(await exists(parent.key)).toBe(false);
  });

  it('refuses a link that leads outside through a link of a source combined after it', async () => {
    // lib/conf's text ends in config/; config/up (written later) is the root, and its .. is outside.
    const cross = await scenario(
      'symlink-cross-source',
      [...APP_SNAPSHOT, { name: 'lib/conf', content: '../config/up/..', mode: 0o120777 }],
      [...CONFIG_SNAPSHOT, { name: 'up', content: '..', mode: 0o120777 }],
    );

    await expect(combineSources(cross.event, { s3: s3.client, bucket: BUCKET })).rejects.toThrow(
      'symlink "lib/conf" (source "app") points outside the artifact through other links',
    );
    expect(await exists(cross.key)).toBe(false);
  });

  it('refuses a cycle of symlinks, which the build could not follow', async () => {
    const cycle = await scenario('symlink-cycle', [
      ...APP_SNAPSHOT,
      { name: 'x', content: 'y', mode: 0o120777 },
      { name: 'y', content: 'x', mode: 0o120777 },
    ]);

    await expect(combineSources(cycle.event, { s3: s3.client, bucket: BUCKET })).rejects.toThrow(
      'symlink "x" (source "app") is a cycle of links or a chain of more than 40',
    );
  });

  it('refuses a name with a backslash, naming it, instead of shipping it as a folder', async () => {
    const e = event({ execution: 'backslash' });
    const zip = renameEntry(
      await makeZip([...APP_SNAPSHOT, { name: 'lib/a_b.txt', content: 'x' }]),
      'lib/a_b.txt',
      'lib/a\\b.txt',
    );
    await put(e.sources[0]!.snapshotKey, zip);
    await put(e.sources[1]!.snapshotKey, await makeZip(CONFIG_SNAPSHOT));

    await expect(combineSources(e, { s3: s3.client, bucket: BUCKET })).rejects.toMatchObject({
      name: 'UnsafeEntryError',
      message:
        `snapshot ${e.sources[0]!.snapshotKey} (source "app") has a file named "lib/a\\\\b.txt": a backslash in a name, which zip tools read ` +
        'as a folder separator, so it would not ship as git has it; rename the file in the repository',
    });
    expect(await exists('artifacts/acceptance/backslash/source.zip')).toBe(false);
  });

  it('ships c:foo.txt, a valid POSIX name, as it is', async () => {
    const e = event({ execution: 'drive-like' });
    await put(
      e.sources[0]!.snapshotKey,
      renameEntry(
        await makeZip([...APP_SNAPSHOT, { name: 'c_foo.txt', content: 'not a drive\n' }]),
        'c_foo.txt',
        'c:foo.txt',
      ),
    );
    await put(
      e.sources[1]!.snapshotKey,
      renameEntry(await makeZip([...CONFIG_SNAPSHOT, { name: 'd_x/e.yml', content: 'e: 1\n' }]), 'd_x/', 'd:x/'),
    );

    await combineSources(e, { s3: s3.client, bucket: BUCKET, now: () => CREATED_AT });

    const entries = await readZip(await download('artifacts/acceptance/drive-like/source.zip'));
    expect(entries.find((x) => x.name === 'c:foo.txt')).toMatchObject({ content: 'not a drive\n' });
    expect(entries.find((x) => x.name === 'config/d:x/e.yml')).toMatchObject({ content: 'e: 1\n' });
  });

  it("runs through the handler with the endpoint from the function's environment, as the local runtime does", async () => {
    const { event: e, key } = await scenario('via-handler', APP_SNAPSHOT);
    const handler = createHandler({ ...s3.env, ARTIFACT_BUCKET: BUCKET });

    await expect(handler(e)).resolves.toMatchObject({ key });
    await expect(handler({ ...e, sources: [] })).rejects.toMatchObject({ name: 'InvalidEventError' });
  });
});
