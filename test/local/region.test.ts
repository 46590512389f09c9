import { startExampleRuntime, type TestRuntime } from '../helpers/local-runtime';
import { LOCAL_REGION } from '../../local/names';

/**
 * The environment's region reaches the deploy, end to end: the local CodeBuild runner sets
 * AWS_REGION and AWS_DEFAULT_REGION to the region the builds run in (LOCAL_REGION, the "tooling"
 * region), as CodeBuild does, and the example app's deploy, run by buildspecs/deploy.yml, must see
 * each environment's own region in the environment and in its profile instead.
 */

let t: TestRuntime;
const logs = new Map<string, string[]>();

beforeAll(async () => {
  t = await startExampleRuntime(
    (config) => {
      config.environments.production.region = 'ap-southeast-2';
      // The example's production waits for approval (test/reliability/approval.test.ts): not what this tests.
      config.environments.production.approval.required = false;
    },
    {
      notify: async () => undefined,
      onBuildLog: (line, buildId) => logs.set(buildId, [...(logs.get(buildId) ?? []), line]),
    },
  );
});
afterAll(async () => {
  await t.close();
});

test.each([
  ['acceptance', 'eu-west-1'],
  ['production', 'ap-southeast-2'],
])("the deploy of %s runs in the tooling region's build and resolves %s", async (environment, region) => {
  expect(region).not.toBe(LOCAL_REGION);

  const record = await t.run(`${environment}-region`, { environment });

  expect(record.status).toBe('SUCCEEDED');
  const deployBuildId: string = JSON.parse(record.output!).deploy.buildId;
  const output = (logs.get(deployBuildId) ?? []).filter((line) => !line.startsWith('[Container]'));
  expect(output).toContain(`deploying ${environment} in region ${region} (profile region: ${region})`);
  expect(output.join('\n')).not.toContain(LOCAL_REGION);
});
