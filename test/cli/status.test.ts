import { GetObjectCommand, ListObjectsV2Command, NoSuchKey, S3Client } from '@aws-sdk/client-s3';
import { mockClient } from 'aws-sdk-client-mock';
import { join } from 'node:path';
import { ExitCode } from '../../cli/exit-codes';
import { capture } from '../helpers/io';
import { runCli } from '../../cli/main';
import type { DeploymentRecord } from '../../shared/contracts';

/** `status` against S3 response shapes: deployments/<env>/current.json per configured environment. */

const s3Mock = mockClient(S3Client);
const CONFIG = join(__dirname, '..', '..', 'stepdeploy.config.yml');

const record: DeploymentRecord = {
  environment: 'acceptance',
  execution: 'acceptance-20261129T031500-k3x9qa',
  startedAt: '2026-11-29T03:15:00.000Z',
  requestedBy: 'alice',
  deployedAt: '2026-11-29T03:17:12.000Z',
  artifactKey: 'artifacts/acceptance/acceptance-20261129T031500-k3x9qa/source.zip',
  buildId: 'shop-build:1',
  deployBuildId: 'shop-deploy:1',
  sources: [
    { name: 'app', branch: 'develop', commit: 'a'.repeat(40) },
    { name: 'config', branch: 'main', commit: 'b'.repeat(40) },
  ],
};

beforeEach(() => {
  s3Mock.reset();
  delete process.env.STEPDEPLOY_ARTIFACTS_BUCKET;
  s3Mock
    .on(GetObjectCommand)
    .rejects(new NoSuchKey({ $metadata: { httpStatusCode: 404 }, message: 'The specified key does not exist.' }));
  s3Mock
    .on(GetObjectCommand, { Bucket: 'shop-artifacts', Key: 'deployments/acceptance/current.json' })
    .resolves({ Body: { transformToString: async () => JSON.stringify(record) } as never });
});

it('shows each environment: the commit of each source, when, by which execution', async () => {
  const io = capture();

  const code = await runCli(['node', 'stepdeploy', '--config', CONFIG, 'status', '--bucket', 'shop-artifacts'], io);

  expect(code).toBe(ExitCode.Ok);
  const lines = io.stdout().trim().split('\n');
  expect(lines[0]).toMatch(
    /^acceptance\s+deployed 2026-11-29T03:17:12.000Z \(.+\) by execution acceptance-20261129T031500-k3x9qa, requested by alice$/,
  );
  expect(lines[1]).toBe(`  app     develop  ${'a'.repeat(40)}`);
  expect(lines[2]).toBe(`  config  main     ${'b'.repeat(40)}`);
  expect(lines.slice(3)).toEqual(['preproduction  nothing deployed yet', 'production     nothing deployed yet']);
});

it('prints JSON for one environment', async () => {
  const io = capture();
  process.env.STEPDEPLOY_ARTIFACTS_BUCKET = 'shop-artifacts';

  await runCli(['node', 'stepdeploy', '--config', CONFIG, 'status', '--env', 'acceptance', '--json'], io);

  expect(JSON.parse(io.stdout())).toEqual([{ environment: 'acceptance', deployed: record }]);
  expect(s3Mock).toHaveReceivedCommandTimes(GetObjectCommand, 1);
});

it('fails without a bucket, naming the flag, the variable and the stack output', async () => {
  const io = capture();

  const code = await runCli(['node', 'stepdeploy', '--config', CONFIG, 'status'], io);

  expect(code).toBe(ExitCode.Usage);
  expect(io.stderr()).toContain(
    'pass --bucket or set STEPDEPLOY_ARTIFACTS_BUCKET (the stack output ArtifactsBucketName)',
  );
  expect(s3Mock).not.toHaveReceivedCommand(GetObjectCommand);
});

it('fails on an environment that is not configured', async () => {
  const io = capture();

  const code = await runCli(
    ['node', 'stepdeploy', '--config', CONFIG, 'status', '--bucket', 'shop-artifacts', '--env', 'staging'],
    io,
  );

  expect(code).toBe(ExitCode.Usage);
  expect(io.stderr()).toContain(
    '--env "staging" is not a configured environment; one of: acceptance, preproduction, production',
  );
});

describe('--history', () => {
  const older: DeploymentRecord = {
    ...record,
    execution: 'acceptance-20261128T100000-aaaaaa',
    startedAt: '2026-11-28T10:00:00.000Z',
    deployedAt: '2026-11-28T10:02:00.000Z',
    requestedBy: 'carol',
    sources: [
      { name: 'app', branch: 'main', commit: 'c'.repeat(40) },
      { name: 'config', branch: 'main', commit: 'b'.repeat(40) },
    ],
    approval: {
      approvedBy: 'arn:aws:iam::111111111111:user/bob',
      comment: 'release 42',
      approvedAt: '2026-11-28T10:01:00.000Z',
    },
  };
  const rollback: DeploymentRecord = {
    ...older,
    execution: 'acceptance-20261130T080000-bbbbbb',
    startedAt: '2026-11-30T08:00:00.000Z',
    deployedAt: '2026-11-30T08:01:00.000Z',
    requestedBy: 'alice',
    redeployOf: older.execution,
    approval: null,
  };
  const key = (r: DeploymentRecord) => `deployments/acceptance/history/${r.deployedAt}-${r.execution}.json`;

  beforeEach(() => {
    s3Mock
      .on(ListObjectsV2Command, { Prefix: 'deployments/acceptance/history/' })
      // Listed in key order, as S3 does: oldest first.
      .resolves({ Contents: [older, record, rollback].map((r) => ({ Key: key(r) })) });
    for (const r of [older, record, rollback])
      s3Mock
        .on(GetObjectCommand, { Bucket: 'shop-artifacts', Key: key(r) })
        .resolves({ Body: { transformToString: async () => JSON.stringify(r) } as never });
  });

  it('lists the deployments newest first, marking rollbacks (to the build of X) and approvals (who, comment)', async () => {
    const io = capture();

    const code = await runCli(
      [
        'node',
        'stepdeploy',
        '--config',
        CONFIG,
        'status',
        '--bucket',
        'shop-artifacts',
        '--env',
        'acceptance',
        '--history',
      ],
      io,
    );

    expect(code).toBe(ExitCode.Ok);
    const lines = io.stdout().trim().split('\n');
    expect(lines.slice(3)).toEqual([
      '  history (3 newest first):',
      `    2026-11-30T08:01:00.000Z  acceptance-20261130T080000-bbbbbb  app=main@ccccccc config=main@bbbbbbb (a rollback to the build of acceptance-20261128T100000-aaaaaa), requested by alice`,
      `    2026-11-29T03:17:12.000Z  acceptance-20261129T031500-k3x9qa  app=develop@aaaaaaa config=main@bbbbbbb, requested by alice`,
      `    2026-11-28T10:02:00.000Z  acceptance-20261128T100000-aaaaaa  app=main@ccccccc config=main@bbbbbbb, requested by carol, approved by arn:aws:iam::111111111111:user/bob ("release 42")`,
    ]);
  });

  it('keeps --limit newest entries, and carries them in --json', async () => {
    const io = capture();

    await runCli(
      [
        ...['node', 'stepdeploy', '--config', CONFIG, 'status', '--bucket', 'shop-artifacts'],
        ...['--env', 'acceptance', '--history', '--limit', '2', '--json'],
      ],
      io,
    );

    const [status] = JSON.parse(io.stdout()) as Array<{ history: DeploymentRecord[] }>;
    expect(status!.history.map((h) => [h.execution, h.redeployOf ?? null])).toEqual([
      [rollback.execution, older.execution],
      [record.execution, null],
    ]);
    expect(s3Mock).not.toHaveReceivedCommandWith(GetObjectCommand, { Key: key(older) });
  });

  it('fails: --limit without --history is bad usage', async () => {
    const io = capture();

    const code = await runCli(
      ['node', 'stepdeploy', '--config', CONFIG, 'status', '--bucket', 'shop-artifacts', '--limit', '2'],
      io,
    );

    expect(code).toBe(ExitCode.Usage);
    expect(io.stderr()).toContain('--limit counts history entries: use it with --history');
  });
});
