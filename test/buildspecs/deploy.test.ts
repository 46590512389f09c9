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

let s3: LocalS3;
let root: string;
beforeAll(async () => {
  s3 = await startS3rver({ buckets: [BUCKET] });
  // build.zip as BuildTemplates leaves it: the app's deploy entry point prints the AWS config it sees.
  const buildZip = await makeZip([
    {
      name: 'stepdeploy/deploy',
      content: '#!/usr/bin/env bash\nset -eu\necho "deploying $1"\necho "config file: $AWS_CONFIG_FILE"\ncat "$AWS_CONFIG_FILE"\necho "secret keys in env: $(env | grep -c \'^AWS_SECRET_ACCESS_KEY=\' || true)"\n',
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
    deployRequest({ ENVIRONMENT: 'production', STEPDEPLOY_EXECUTION: execution, STEPDEPLOY_DEPLOY_ROLE_ARN: ROLE }),
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

test('fails deploy.yml in PRE_BUILD when the environment has no deploy role, before the app deploys', async () => {
  const deps = depsFor(root, { s3: s3.client });

  const result = runBuild(deployRequest({ ENVIRONMENT: 'production', STEPDEPLOY_EXECUTION: 'e1' }), deps);

  await expect(result).rejects.toMatchObject({ name: 'States.TaskFailed' });
  const lines = outputLines(deps.lines);
  expect(lines).toContain('STEPDEPLOY_DEPLOY_ROLE_ARN is not set: the environment has no deploy role');
  expect(lines).not.toContain('deploying production');
});
