import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { DeleteObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { createHash, createHmac, type Hash, type Hmac } from 'node:crypto';
import { SignatureV4 } from '@smithy/signature-v4';
import type { DeployLease } from '../../tasks/deploy/lease';
import { runBuild, type BuildRequest } from '../../local/codebuild';
import { startS3rver, type LocalS3 } from '../helpers/s3rver';
import { makeZip } from '../helpers/zip';
import { depsFor, outputLines, removeDir, tempDir } from '../local/codebuild/helpers';

/**
 * buildspecs/deploy.yml, run by the local CodeBuild runner with real bash: it hands the
 * environment's deploy role to every AWS SDK/CLI the app's deploy runs, through a shared-config
 * profile (role_arn + credential_source), never through credentials in the environment. Its first
 * command is the deploy fence: the build deploys only while the environment's lease is the take it
 * was started for (RELIABILITY.md section 2).
 */

const BUCKET = 'stepdeploy-deploy-test';
const ROLE = 'arn:aws:iam::333333333333:role/stepdeploy-deploy';
const deployBuildspec = readFileSync(join(__dirname, '../../buildspecs/deploy.yml'), 'utf8');
/** Where the build runs: what CodeBuild (and the local runner) puts in AWS_REGION and AWS_DEFAULT_REGION. */
const TOOLING_REGION = 'us-east-1';
const NODE_MODULES = join(__dirname, '../../node_modules');

/** Whether boto3's core (what the AWS CLI v1 and SAM resolve their settings with) is on this machine. */
const HAS_BOTOCORE = spawnSync('python3', ['-c', 'import botocore'], { stdio: 'ignore' }).status === 0;

/**
 * The app's deploy entry point: prints the AWS config it sees, and the region each kind of client
 * resolves: the AWS SDK for JavaScript v3 (as CDK uses it), the same with only the profile left
 * (AWS_REGION and AWS_DEFAULT_REGION unset), and botocore (AWS CLI v1, SAM, boto3) with its STS
 * endpoint setting.
 */
const DEPLOY_SCRIPT = [
  '#!/usr/bin/env bash',
  'set -eu',
  'echo "deploying $1"',
  'echo "config file: $AWS_CONFIG_FILE"',
  'cat "$AWS_CONFIG_FILE"',
  'echo "secret keys in env: $(env | grep -c \'^AWS_SECRET_ACCESS_KEY=\' || true)"',
  'echo "env AWS_REGION=$AWS_REGION AWS_DEFAULT_REGION=$AWS_DEFAULT_REGION AWS_STS_REGIONAL_ENDPOINTS=${AWS_STS_REGIONAL_ENDPOINTS:-} AWS_SDK_LOAD_CONFIG=${AWS_SDK_LOAD_CONFIG:-}"',
  'sdk=\'new (require("@aws-sdk/client-s3").S3Client)({}).config.region().then((r) => console.log(process.argv[1] + " region=" + r))\'',
  'node -e "$sdk" sdk-v3 2>/dev/null',
  'env -u AWS_REGION -u AWS_DEFAULT_REGION node -e "$sdk" sdk-v3-profile-only 2>/dev/null',
  'if python3 -c "import botocore" 2>/dev/null; then',
  '  python3 -c \'import botocore.session as b; s = b.get_session(); print("botocore region=%s sts=%s" % (s.get_config_variable("region"), s.get_config_variable("sts_regional_endpoints")))\'',
  'fi',
  '',
].join('\n');

const LEASE_KEY = 'deployments/production/lease.json';

function toBytes(data: string | ArrayBuffer | ArrayBufferView): string | Uint8Array {
  if (typeof data === 'string') return data;
  return ArrayBuffer.isView(data)
    ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
    : new Uint8Array(data);
}

/** node:crypto as the SDK signer's hash. */
class NodeSha256 {
  private readonly hash: Hash | Hmac;
  constructor(secret?: string | ArrayBuffer | ArrayBufferView) {
    this.hash = secret === undefined ? createHash('sha256') : createHmac('sha256', toBytes(secret));
  }
  update(data: string | ArrayBuffer | ArrayBufferView): void {
    this.hash.update(toBytes(data));
  }
  async digest(): Promise<Uint8Array> {
    return this.hash.digest();
  }
}

let s3: LocalS3;
let root: string;
/** The project role's credentials, served as CodeBuild's container credentials endpoint serves them. */
let credentials: Server;
let credentialsUri: string;
beforeAll(async () => {
  s3 = await startS3rver({ buckets: [BUCKET] });
  credentials = createServer((req, res) =>
    res.end(
      JSON.stringify({
        AccessKeyId: 'S3RVER',
        SecretAccessKey: req.url === '/wrong' ? 'not-the-secret' : 'S3RVER',
        Token: 'session-token',
      }),
    ),
  );
  await new Promise<void>((resolve) => credentials.listen(0, '127.0.0.1', resolve));
  credentialsUri = `http://127.0.0.1:${(credentials.address() as AddressInfo).port}/credentials`;
  // build.zip as BuildTemplates leaves it: the app's deploy entry point prints the AWS config it sees.
  const buildZip = await makeZip([
    {
      name: 'stepdeploy/deploy',
      content: DEPLOY_SCRIPT,
      mode: 0o100755,
    },
  ]);
  await s3.client.send(
    new PutObjectCommand({ Bucket: BUCKET, Key: 'artifacts/production/e1/build.zip', Body: buildZip }),
  );
});
afterAll(async () => {
  await s3.stop();
  await new Promise((resolve) => credentials.close(resolve));
});
beforeEach(async () => {
  root = tempDir('deploy');
  await writeLease({ leaseId: 'lease-1' });
});

async function writeLease(fields: Partial<DeployLease>): Promise<void> {
  const lease: DeployLease = {
    environment: 'production',
    execution: 'e1',
    startedAt: '2026-11-29T03:15:00.000Z',
    taskToken: 'token',
    acquiredAt: '2026-11-29T03:20:00.000Z',
    expiresAt: '2026-11-29T04:30:00.000Z',
    ...fields,
  };
  await s3.client.send(new PutObjectCommand({ Bucket: BUCKET, Key: LEASE_KEY, Body: JSON.stringify(lease) }));
}
afterEach(() => removeDir(root));

/** What the Deploy step adds to every deploy build (tasks/deploy), and the project role's access to the bucket. */
function leaseVariables(leaseId = 'lease-1'): Record<string, string> {
  return {
    STEPDEPLOY_LEASE_ID: leaseId,
    STEPDEPLOY_LEASE_BUCKET: BUCKET,
    STEPDEPLOY_LEASE_KEY: LEASE_KEY,
    STEPDEPLOY_LEASE_REGION: 'eu-west-1',
  };
}

function deployRequest(variables: Record<string, string>): BuildRequest {
  return {
    ProjectName: 'stepdeploy-deploy',
    project: {
      name: 'stepdeploy-deploy',
      buildspec: deployBuildspec,
      environmentVariables: [
        { Name: 'AWS_ENDPOINT_URL_S3', Value: s3.endpoint },
        { Name: 'AWS_CONTAINER_CREDENTIALS_FULL_URI', Value: credentialsUri },
      ],
    },
    SourceTypeOverride: 'S3',
    SourceLocationOverride: `${BUCKET}/artifacts/production/e1/build.zip`,
    EnvironmentVariablesOverride: Object.entries(variables).map(([Name, Value]) => ({
      Name,
      Value,
      Type: 'PLAINTEXT',
    })),
  };
}

test('deploy.yml gives the app a profile that assumes the environment deploy role, with no credentials in the environment', async () => {
  const deps = depsFor(root, { s3: s3.client });
  const execution = `production-20261129T031500-${'x'.repeat(60)}`;

  const { Build } = await runBuild(
    deployRequest({
      ENVIRONMENT: 'production',
      STEPDEPLOY_EXECUTION: execution,
      STEPDEPLOY_REGION: 'eu-west-1',
      STEPDEPLOY_DEPLOY_ROLE_ARN: ROLE,
      NODE_PATH: NODE_MODULES,
      ...leaseVariables(),
    }),
    deps,
  );

  expect(Build.BuildStatus).toBe('SUCCEEDED');
  const lines = outputLines(deps.lines);
  expect(lines).toContain('deploying production');
  expect(lines).toContain(`role_arn = ${ROLE}`);
  expect(lines).toContain('credential_source = EcsContainer');
  // STS limits role session names to 64 characters: the execution name is cut to fit.
  const session = lines.find((l) => l.startsWith('role_session_name = '))!.slice('role_session_name = '.length);
  expect(session).toBe(`stepdeploy-${execution.slice(0, 50)}`);
  expect(session.length).toBeLessThanOrEqual(64);
  expect(process.env.AWS_SECRET_ACCESS_KEY).toBeDefined();
  expect(lines).toContain('secret keys in env: 0');
});

test("deploy.yml makes every AWS client resolve the environment's region, not the one the build runs in", async () => {
  const deps = depsFor(root, { s3: s3.client, region: TOOLING_REGION });

  const { Build } = await runBuild(
    deployRequest({
      ENVIRONMENT: 'production',
      STEPDEPLOY_EXECUTION: 'e1',
      STEPDEPLOY_ACCOUNT: '333333333333',
      STEPDEPLOY_REGION: 'ap-southeast-2',
      STEPDEPLOY_DEPLOY_ROLE_ARN: ROLE,
      NODE_PATH: NODE_MODULES,
      ...leaseVariables(),
    }),
    deps,
  );

  expect(Build.BuildStatus).toBe('SUCCEEDED');
  const lines = outputLines(deps.lines);
  expect(lines).toContain(`deploying production to account 333333333333 in ap-southeast-2 as ${ROLE}`);
  expect(lines).toContain(
    // AWS_SDK_LOAD_CONFIG: the JavaScript SDK v2 reads the profile (role_arn, region) only with it.
    'env AWS_REGION=ap-southeast-2 AWS_DEFAULT_REGION=ap-southeast-2 AWS_STS_REGIONAL_ENDPOINTS=regional AWS_SDK_LOAD_CONFIG=1',
  );
  expect(lines).toContain('region = ap-southeast-2');
  expect(lines).toContain('sts_regional_endpoints = regional');
  expect(lines).toContain('sdk-v3 region=ap-southeast-2');
  expect(lines).toContain('sdk-v3-profile-only region=ap-southeast-2');
  if (HAS_BOTOCORE) expect(lines).toContain('botocore region=ap-southeast-2 sts=regional');
  expect(lines.join('\n')).not.toContain(TOOLING_REGION);
});

test('fails deploy.yml in PRE_BUILD without the environment region, before the app deploys', async () => {
  const deps = depsFor(root, { s3: s3.client, region: TOOLING_REGION });

  const result = runBuild(
    deployRequest({
      ENVIRONMENT: 'production',
      STEPDEPLOY_EXECUTION: 'e1',
      STEPDEPLOY_DEPLOY_ROLE_ARN: ROLE,
      ...leaseVariables(),
    }),
    deps,
  );

  await expect(result).rejects.toMatchObject({ name: 'States.TaskFailed' });
  const lines = outputLines(deps.lines);
  expect(lines).toContain('STEPDEPLOY_REGION is not set: the deploy would go to the region the build runs in');
  expect(lines).not.toContain('deploying production');
});

test('fails deploy.yml in PRE_BUILD when the environment has no deploy role, before the app deploys', async () => {
  const deps = depsFor(root, { s3: s3.client });

  const result = runBuild(
    deployRequest({ ENVIRONMENT: 'production', STEPDEPLOY_EXECUTION: 'e1', ...leaseVariables() }),
    deps,
  );

  await expect(result).rejects.toMatchObject({ name: 'States.TaskFailed' });
  const lines = outputLines(deps.lines);
  expect(lines).toContain('STEPDEPLOY_DEPLOY_ROLE_ARN is not set: the environment has no deploy role');
  expect(lines).not.toContain('deploying production');
});

describe('the deploy fence (first command of deploy.yml)', () => {
  async function deployWith(variables: Record<string, string>) {
    const deps = depsFor(root, { s3: s3.client });
    const result = await runBuild(
      deployRequest({
        ENVIRONMENT: 'production',
        STEPDEPLOY_EXECUTION: 'e1',
        STEPDEPLOY_REGION: 'eu-west-1',
        STEPDEPLOY_DEPLOY_ROLE_ARN: ROLE,
        NODE_PATH: NODE_MODULES,
        ...variables,
      }),
      deps,
    ).then(
      ({ Build }) => Build,
      (err: { build?: unknown; name: string }) => err,
    );
    return { result, lines: outputLines(deps.lines) };
  }

  test('lets the build deploy while the lease is its take, not given back, with no other build recorded', async () => {
    const { result, lines } = await deployWith(leaseVariables());

    expect(result).toMatchObject({ BuildStatus: 'SUCCEEDED' });
    expect(lines).toContain('deploy fence: the production lease names this build (take of e1)');
    expect(lines).toContain('deploying production');
  });

  test.each([
    [
      'the lease was taken again since the build was started',
      { leaseId: 'lease-2', execution: 'e2' },
      'deploy fence: the lease was taken again (by e2) since this build was started; this build does not deploy',
    ],
    [
      'the lease was given back',
      { leaseId: 'lease-1', released: true, outcome: 'execution ABORTED' },
      'deploy fence: the lease was given back (execution ABORTED); this build does not deploy',
    ],
    [
      'the lease names another build',
      { leaseId: 'lease-1', buildId: 'stepdeploy-deploy:other' },
      'deploy fence: the lease names another build, stepdeploy-deploy:other; this build does not deploy',
    ],
  ])('fails in INSTALL, before the app deploys, when %s', async (_case, lease, message) => {
    await writeLease(lease);

    const { result, lines } = await deployWith(leaseVariables());

    expect(result).toMatchObject({ name: 'States.TaskFailed' });
    expect(lines).toContain(message);
    expect(lines).not.toContain('deploying production');
  });

  test('fails when the lease is gone, or when the build was not started by the Deploy step (no lease id)', async () => {
    await s3.client.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: LEASE_KEY }));
    const gone = await deployWith(leaseVariables());
    expect(gone.lines).toContain('deploy fence: the environment has no deploy lease; this build does not deploy');

    const { STEPDEPLOY_LEASE_ID: _id, ...withoutId } = leaseVariables();
    const bare = await deployWith(withoutId);
    expect(bare.lines).toContain(
      'deploy fence: STEPDEPLOY_LEASE_ID is not set: only the Deploy step (tasks/deploy) starts deploy builds; this build does not deploy',
    );
    expect([...gone.lines, ...bare.lines]).not.toContain('deploying production');
  });

  test('signs its read with SigV4 exactly as the AWS SDK signer does (s3rver does not check SigV4 signatures), and fails closed on a refusal', async () => {
    const seen: Array<{ method: string; url: string; headers: Record<string, string> }> = [];
    const fakeS3 = createServer((req, res) => {
      seen.push({ method: req.method!, url: req.url!, headers: req.headers as Record<string, string> });
      res.writeHead(403).end('<Error><Code>AccessDenied</Code></Error>');
    });
    await new Promise<void>((resolve) => fakeS3.listen(0, '127.0.0.1', resolve));
    const port = (fakeS3.address() as AddressInfo).port;
    try {
      const { result, lines } = await deployWith({
        ...leaseVariables(),
        AWS_ENDPOINT_URL_S3: `http://127.0.0.1:${port}`,
      });

      expect(result).toMatchObject({ name: 'States.TaskFailed' });
      expect(lines).toContain(
        `deploy fence: reading s3://${BUCKET}/${LEASE_KEY} answered HTTP 403: <Error><Code>AccessDenied</Code></Error>; this build does not deploy`,
      );
      expect(seen).toHaveLength(1);
      const sent = seen[0]!;
      expect([sent.method, sent.url]).toEqual(['GET', `/${BUCKET}/${LEASE_KEY}`]);
      const date = sent.headers['x-amz-date']!;
      const signer = new SignatureV4({
        credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER', sessionToken: 'session-token' },
        region: 'eu-west-1',
        service: 's3',
        sha256: NodeSha256,
        uriEscapePath: false,
      });
      const reference = await signer.sign(
        {
          method: 'GET',
          protocol: 'http:',
          hostname: '127.0.0.1',
          port,
          path: sent.url,
          query: {},
          headers: { host: sent.headers.host!, 'x-amz-content-sha256': sent.headers['x-amz-content-sha256']! },
        },
        {
          signingDate: new Date(
            `${date.slice(0, 4)}-${date.slice(4, 6)}-${date.slice(6, 8)}T${date.slice(9, 11)}:${date.slice(11, 13)}:${date.slice(13, 15)}Z`,
          ),
        },
      );
      expect(sent.headers.authorization).toBe(reference.headers.authorization);
      expect(sent.headers['x-amz-security-token']).toBe('session-token');
    } finally {
      await new Promise((resolve) => fakeS3.close(resolve));
    }
  });
});
