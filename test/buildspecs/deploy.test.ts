import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { runBuild, type BuildRequest } from '../../local/codebuild';
import { startS3rver, type LocalS3 } from '../helpers/s3rver';
import { makeZip } from '../helpers/zip';
import { depsFor, outputLines, removeDir, tempDir } from '../local/codebuild/helpers';

/**
 * buildspecs/deploy.yml, run by the local CodeBuild runner with real bash: it hands the
 * environment's deploy role to every AWS SDK/CLI the app's deploy runs, through a shared-config
 * profile (role_arn + credential_source), never through credentials in the environment.
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
  'echo "env AWS_REGION=$AWS_REGION AWS_DEFAULT_REGION=$AWS_DEFAULT_REGION AWS_STS_REGIONAL_ENDPOINTS=${AWS_STS_REGIONAL_ENDPOINTS:-}"',
  'sdk=\'new (require("@aws-sdk/client-s3").S3Client)({}).config.region().then((r) => console.log(process.argv[1] + " region=" + r))\'',
  'node -e "$sdk" sdk-v3 2>/dev/null',
  'env -u AWS_REGION -u AWS_DEFAULT_REGION node -e "$sdk" sdk-v3-profile-only 2>/dev/null',
  'if python3 -c "import botocore" 2>/dev/null; then',
  '  python3 -c \'import botocore.session as b; s = b.get_session(); print("botocore region=%s sts=%s" % (s.get_config_variable("region"), s.get_config_variable("sts_regional_endpoints")))\'',
  'fi',
  '',
].join('\n');

let s3: LocalS3;
let root: string;
beforeAll(async () => {
  s3 = await startS3rver({ buckets: [BUCKET] });
  // build.zip as BuildTemplates leaves it: the app's deploy entry point prints the AWS config it sees.
  const buildZip = await makeZip([
    {
      name: 'stepdeploy/deploy',
      content: DEPLOY_SCRIPT,
      mode: 0o100755,
    },
  ]);
  await s3.client.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'artifacts/production/e1/build.zip', Body: buildZip }));
});
afterAll(async () => s3.stop());
beforeEach(() => {
  root = tempDir('deploy');
});
afterEach(() => removeDir(root));

function deployRequest(variables: Record<string, string>): BuildRequest {
  return {
    ProjectName: 'stepdeploy-deploy',
    project: { name: 'stepdeploy-deploy', buildspec: deployBuildspec },
    SourceTypeOverride: 'S3',
    SourceLocationOverride: `${BUCKET}/artifacts/production/e1/build.zip`,
    EnvironmentVariablesOverride: Object.entries(variables).map(([Name, Value]) => ({ Name, Value, Type: 'PLAINTEXT' })),
  };
}

test('deploy.yml gives the app a profile that assumes the environment deploy role, with no credentials in the environment', async () => {
  const deps = depsFor(root, { s3: s3.client });
  const execution = `production-20261129T031500-${'x'.repeat(60)}`;

  const { Build } = await runBuild(
    deployRequest({ ENVIRONMENT: 'production', STEPDEPLOY_EXECUTION: execution, STEPDEPLOY_REGION: 'eu-west-1', STEPDEPLOY_DEPLOY_ROLE_ARN: ROLE, NODE_PATH: NODE_MODULES }),
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
    }),
    deps,
  );

  expect(Build.BuildStatus).toBe('SUCCEEDED');
  const lines = outputLines(deps.lines);
  expect(lines).toContain(`deploying production to account 333333333333 in ap-southeast-2 as ${ROLE}`);
  expect(lines).toContain('env AWS_REGION=ap-southeast-2 AWS_DEFAULT_REGION=ap-southeast-2 AWS_STS_REGIONAL_ENDPOINTS=regional');
  expect(lines).toContain('region = ap-southeast-2');
  expect(lines).toContain('sts_regional_endpoints = regional');
  expect(lines).toContain('sdk-v3 region=ap-southeast-2');
  expect(lines).toContain('sdk-v3-profile-only region=ap-southeast-2');
  if (HAS_BOTOCORE) expect(lines).toContain('botocore region=ap-southeast-2 sts=regional');
  expect(lines.join('\n')).not.toContain(TOOLING_REGION);
});

test('fails deploy.yml in PRE_BUILD without the environment region, before the app deploys', async () => {
  const deps = depsFor(root, { s3: s3.client, region: TOOLING_REGION });

  const result = runBuild(deployRequest({ ENVIRONMENT: 'production', STEPDEPLOY_EXECUTION: 'e1', STEPDEPLOY_DEPLOY_ROLE_ARN: ROLE }), deps);

  await expect(result).rejects.toMatchObject({ name: 'States.TaskFailed' });
  const lines = outputLines(deps.lines);
  expect(lines).toContain('STEPDEPLOY_REGION is not set: the deploy would go to the region the build runs in');
  expect(lines).not.toContain('deploying production');
});

test('fails deploy.yml in PRE_BUILD when the environment has no deploy role, before the app deploys', async () => {
  const deps = depsFor(root, { s3: s3.client });

  const result = runBuild(deployRequest({ ENVIRONMENT: 'production', STEPDEPLOY_EXECUTION: 'e1' }), deps);

  await expect(result).rejects.toMatchObject({ name: 'States.TaskFailed' });
  const lines = outputLines(deps.lines);
  expect(lines).toContain('STEPDEPLOY_DEPLOY_ROLE_ARN is not set: the environment has no deploy role');
  expect(lines).not.toContain('deploying production');
});
