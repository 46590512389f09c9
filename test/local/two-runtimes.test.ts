import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { GetObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { startExampleRuntime, type TestRuntime } from '../helpers/local-runtime';
import { pushCommit } from '../helpers/reliability';

/**
 * Two local runtimes in one process, as tests and an embedding start them: each one's functions
 * get their own environment (config, bucket, endpoints), as each Lambda function has its own on
 * AWS. Until the handlers were made per runtime (createHandler), the second start rewrote
 * process.env under the first, and a handler module loaded once kept the first one's config.
 */

let shop: TestRuntime;
let billing: TestRuntime;
const before = { ...process.env };

beforeAll(async () => {
  // Each config has an environment the other has not: the other's ValidateInput would refuse it.
  shop = await startExampleRuntime((config) => {
    config.pipeline = 'shop';
    delete config.environments.preproduction;
  });
  billing = await startExampleRuntime((config) => {
    config.pipeline = 'billing';
    config.environments = { preproduction: config.environments.preproduction };
  });
});
afterAll(async () => {
  await shop?.close();
  await billing?.close();
});

function head(runtime: TestRuntime, repo: string, branch: string): string {
  const bare = join(runtime.dir, '.stepdeploy', 'example-repos', `${repo}.git`);
  return execFileSync('git', ['rev-parse', `refs/heads/${branch}`], { cwd: bare, encoding: 'utf8' }).trim();
}

async function currentOf(runtime: TestRuntime, environment: string): Promise<{ sources: unknown[] }> {
  const out = await runtime.runtime.s3Client.send(
    new GetObjectCommand({ Bucket: runtime.runtime.bucket, Key: `deployments/${environment}/current.json` }),
  );
  return JSON.parse(await out.Body!.transformToString());
}

async function deploymentKeys(runtime: TestRuntime): Promise<string[]> {
  const out = await runtime.runtime.s3Client.send(
    new ListObjectsV2Command({ Bucket: runtime.runtime.bucket, Prefix: 'deployments/' }),
  );
  return (out.Contents ?? []).map((o) => o.Key!);
}

test('each runtime deploys its own repositories into its own bucket and folder, at the same time', async () => {
  // The second runtime's app has a commit the first one's has not.
  const billingApp = pushCommit(
    join(billing.dir, '.stepdeploy', 'example-repos', 'app.git'),
    'main',
    'billing.txt',
    'billing only\n',
  );

  const [shopRun, billingRun] = await Promise.all([
    shop.run('shop-1', { environment: 'acceptance', branches: { app: 'develop' } }),
    billing.run('billing-1', { environment: 'preproduction' }),
  ]);

  expect([shopRun.status, shopRun.error, billingRun.status, billingRun.error]).toEqual([
    'SUCCEEDED',
    undefined,
    'SUCCEEDED',
    undefined,
  ]);
  expect(shop.runtime.bucket).toBe('shop-artifacts');
  expect(billing.runtime.bucket).toBe('billing-artifacts');
  expect((await currentOf(shop, 'acceptance')).sources).toEqual([
    { name: 'app', branch: 'develop', commit: head(shop, 'app', 'develop') },
    { name: 'config', branch: 'main', commit: head(shop, 'config', 'main') },
  ]);
  expect((await currentOf(billing, 'preproduction')).sources).toEqual([
    { name: 'app', branch: 'main', commit: billingApp },
    { name: 'config', branch: 'main', commit: head(billing, 'config', 'main') },
  ]);
  expect(await deploymentKeys(shop)).not.toContainEqual(expect.stringContaining('preproduction'));
  expect(await deploymentKeys(billing)).not.toContainEqual(expect.stringContaining('acceptance'));
  expect(existsSync(join(shop.runtime.home, 'targets', 'acceptance', 'service.json'))).toBe(true);
  expect(existsSync(join(billing.runtime.home, 'targets', 'preproduction', 'service.json'))).toBe(true);
  expect(existsSync(join(shop.runtime.home, 'targets', 'preproduction'))).toBe(false);
  expect(existsSync(join(billing.runtime.home, 'targets', 'acceptance'))).toBe(false);
  // The functions' environments are their own: the process's is as it was.
  expect(process.env).toEqual(before);
});
