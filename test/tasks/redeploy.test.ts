import { GetObjectCommand, HeadObjectCommand, NoSuchKey, NotFound, S3Client } from '@aws-sdk/client-s3';
import { mockClient } from 'aws-sdk-client-mock';
import { resolve } from 'node:path';
import { loadConfig } from '../../shared/config';
import type { DeploymentRecord } from '../../shared/contracts';
import { InvalidInputError } from '../../tasks/validate-input/errors';
import { prepareRedeploy } from '../../tasks/validate-input/redeploy';
import { checkExecutionInput, validateInput } from '../../tasks/validate-input/validate-input';

const s3Mock = mockClient(S3Client);
const s3 = new S3Client({});
const CONFIG_PATH = resolve(__dirname, '../../stepdeploy.config.yml');
const config = loadConfig(CONFIG_PATH);
const BUCKET = 'shop-artifacts';

const earlier: DeploymentRecord = {
  environment: 'acceptance',
  execution: 'acceptance-1',
  startedAt: '2026-11-29T03:12:00.000Z',
  requestedBy: 'alice',
  deployedAt: '2026-11-29T03:15:00.000Z',
  artifactKey: 'artifacts/acceptance/acceptance-1/source.zip',
  buildId: 'shop-build:1',
  deployBuildId: 'shop-deploy:1',
  sources: [
    { name: 'app', branch: 'develop', commit: 'a'.repeat(40) },
    { name: 'config', branch: 'main', commit: 'b'.repeat(40) },
  ],
  approval: null,
  redeployOf: null,
};

function bucket(objects: Record<string, unknown>): void {
  s3Mock.on(GetObjectCommand).callsFake((input: { Key: string }) => {
    if (!(input.Key in objects)) throw new NoSuchKey({ message: 'no such key', $metadata: {} });
    return { ETag: '"e"', Body: { transformToString: async () => JSON.stringify(objects[input.Key]) } };
  });
  s3Mock.on(HeadObjectCommand).callsFake((input: { Key: string }) => {
    if (!(input.Key in objects)) throw new NotFound({ message: 'Not Found', $metadata: {} });
    return { ContentLength: 1, ETag: '"e"' };
  });
}

const plan = () =>
  validateInput({ environment: 'acceptance', redeploy: 'acceptance-1' }, 'acceptance-rb', config, CONFIG_PATH);

beforeEach(() => s3Mock.reset());

test("takes the earlier deployment's commits, artifact and build from its record; the deploy runs as this execution", async () => {
  bucket({
    'deployments/acceptance/executions/acceptance-1.json': earlier,
    'artifacts/acceptance/acceptance-1/build.zip': 'zip',
  });

  const prepared = await prepareRedeploy(plan(), 'acceptance-1', config, { s3, bucket: BUCKET });

  expect(prepared.redeployOf).toBe('acceptance-1');
  expect(prepared.sources.map((s) => [s.name, s.branch])).toEqual([
    ['app', 'develop'],
    ['config', 'main'],
  ]);
  expect(prepared.fetched[0]).toEqual({
    name: 'app',
    branch: 'develop',
    path: '.',
    commit: 'a'.repeat(40),
    fetchBuildId: null,
    snapshotKey: `sources/app/${'a'.repeat(40)}.zip`,
  });
  expect(prepared.artifact).toMatchObject({
    key: earlier.artifactKey,
    buildPath: 'artifacts/acceptance/acceptance-1',
  });
  expect(prepared.artifact.deployEnvironment).toEqual(
    expect.arrayContaining([
      { Name: 'STEPDEPLOY_EXECUTION', Type: 'PLAINTEXT', Value: 'acceptance-rb' },
      { Name: 'STEPDEPLOY_COMMIT_APP', Type: 'PLAINTEXT', Value: 'a'.repeat(40) },
      { Name: 'STEPDEPLOY_DEPLOY_ROLE_ARN', Type: 'PLAINTEXT', Value: config.environments.acceptance!.deployRoleArn },
    ]),
  );
  expect(prepared.build).toEqual({ buildId: 'shop-build:1' });
});

test('a rollback of a rollback deploys the original build again', async () => {
  bucket({
    'deployments/acceptance/executions/acceptance-1.json': {
      ...earlier,
      execution: 'acceptance-rb-0',
      redeployOf: 'acceptance-0',
    },
    'artifacts/acceptance/acceptance-0/build.zip': 'zip',
  });
  const prepared = await prepareRedeploy(plan(), 'acceptance-1', config, { s3, bucket: BUCKET });
  expect(prepared.redeployOf).toBe('acceptance-0');
  expect(prepared.artifact.buildPath).toBe('artifacts/acceptance/acceptance-0');
});

test.each([
  [
    { 'deployments/preproduction/executions/acceptance-1.json': earlier },
    'deployed to preproduction, not to acceptance',
  ],
  [{}, 'never deployed to acceptance (no deployments/acceptance/executions/acceptance-1.json)'],
  [
    { 'deployments/acceptance/executions/acceptance-1.json': earlier },
    "is gone: the bucket's lifecycle removed it; deploy its branches again with stepdeploy start (app=develop config=main)",
  ],
])('fails with InvalidInputError, naming what and why (%#)', async (objects, why) => {
  bucket(objects);
  const error = await prepareRedeploy(plan(), 'acceptance-1', config, { s3, bucket: BUCKET }).catch((e: Error) => e);
  expect(error).toBeInstanceOf(InvalidInputError);
  expect((error as Error).message).toContain(why);
});

test('fails: redeploy with branches, or not an execution name, before anything is read', () => {
  expect(
    checkExecutionInput({ environment: 'acceptance', redeploy: 'acceptance-1', branches: { app: 'main' } }, config),
  ).toEqual([
    'branches: {"app":"main"} cannot be given with redeploy: a redeploy deploys the build of that execution, with its branches',
  ]);
  expect(checkExecutionInput({ environment: 'acceptance', redeploy: '../x' }, config)[0]).toContain(
    'redeploy: "../x" must be the name of an earlier execution',
  );
});
