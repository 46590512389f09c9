import { randomBytes } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { Readable } from 'node:stream';
import {
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  HeadObjectCommand,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { mockClient } from 'aws-sdk-client-mock';
import type { CombineSourcesEvent } from '../../tasks/shared/contracts';
import { combineSources } from '../../tasks/combine-sources/combine-sources';
import { buildEnvironment, deployEnvironment } from '../../tasks/combine-sources/environment';
import { createManifest } from '../../tasks/combine-sources/manifest';
import { startS3rver, type LocalS3 } from '../helpers/s3rver';
import { makeZip, readZip, renameEntry, type ZipEntrySpec } from '../helpers/zip';

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
  it('lists the environment, execution, requester, each source commit and branch, then the variables', () => {
    const e = event({ sources: [{ ...event().sources[0], name: 'feature-flags' }] });
    const variables = buildEnvironment(createManifest(e, CREATED_AT), e.variables);
    expect(variables).toEqual([
      { Name: 'ENVIRONMENT', Type: 'PLAINTEXT', Value: 'acceptance' },
      { Name: 'STEPDEPLOY_EXECUTION', Type: 'PLAINTEXT', Value: 'acceptance-20250101T120000-abc123' },
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
    const names = buildEnvironment(createManifest(e, CREATED_AT), e.variables).map((v) => v.Name);
    expect(names).not.toContain('STEPDEPLOY_REQUESTED_BY');
  });

  it('fails when an environment variable would replace one stepdeploy sets', () => {
    const e = event({ variables: { ENVIRONMENT: 'prod', STEPDEPLOY_X: '1' } });
    expect(() => buildEnvironment(createManifest(e, CREATED_AT), e.variables)).toThrow(
      expect.objectContaining({ name: 'VariableConflictError', message: expect.stringContaining('ENVIRONMENT, STEPDEPLOY_X') }),
    );
  });
});

/** A GetObject mock that serves ranges of a buffer, as S3 does for yauzl's reads. */
function serve(buffer: Buffer) {
  return async (input: { Range?: string }) => {
    const match = /^bytes=(\d+)-(\d+)$/.exec(input.Range ?? '');
    const slice = match ? buffer.subarray(Number(match[1]), Number(match[2]) + 1) : buffer;
    return { Body: Readable.from([slice]) as never, ContentLength: slice.length };
  };
}

const notFound = Object.assign(new Error('NotFound'), { name: 'NotFound', $metadata: { httpStatusCode: 404 } });

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
    s3Mock.on(GetObjectCommand).callsFake((input: { Key: string; Range?: string }) => serve(snapshots[input.Key]!)(input));
  });

  it('writes a small artifact with one conditional PutObject', async () => {
    s3Mock.on(HeadObjectCommand).rejects(notFound);
    s3Mock.on(PutObjectCommand).resolves({ ETag: '"e1"' });

    const result = await combineSources(event(), { s3, bucket: BUCKET, now: () => CREATED_AT });

    expect(s3Mock).toHaveReceivedCommandWith(HeadObjectCommand, { Bucket: BUCKET, Key: KEY });
    expect(s3Mock).toHaveReceivedCommandWith(GetObjectCommand, { Bucket: BUCKET, Key: `sources/app/${APP_COMMIT}.zip` });
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
    const e = event({ sources: [{ ...event().sources[0], snapshotKey: 'sources/app/big.zip' }] });

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
      { name: 'stepdeploy-manifest.json', content: JSON.stringify(createManifest(event(), new Date('2025-01-01T11:00:00Z'))) },
    ]);
    s3Mock.on(HeadObjectCommand).rejectsOnce(notFound).resolves({ ContentLength: existing.length, ETag: '"e0"' });
    s3Mock
      .on(PutObjectCommand)
      .rejects(Object.assign(new Error('At least one of the pre-conditions you specified did not hold'), {
        name: 'PreconditionFailed',
        $metadata: { httpStatusCode: 412 },
      }));
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
    const tmp = await import('node:fs/promises').then((fs) => fs.mkdtemp(`${tmpdir()}/combine-test-`));
    s3Mock.on(HeadObjectCommand).rejects(notFound);
    s3Mock.on(PutObjectCommand).resolves({});

    await combineSources(event(), { s3, bucket: BUCKET, tmpDir: tmp });

    expect(await readdir(tmp)).toEqual([]);
  });
});
