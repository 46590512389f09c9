import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalStateMachine, type TaskImplementation } from '../../local/engine';
import { loadDefinition, SUBSTITUTION_NAMES, type Substitutions } from '../../workflows/definition';

/**
 * The FetchSources iteration of workflows/deploy-pipeline.asl.json, run by the local engine: a source
 * with a connection of its own is fetched by FetchSourceThroughConnection, whose StartBuild carries
 * SourceAuthOverride naming that connection; one without (null), or from a plan made before the field
 * existed (absent: a redrive of an older execution), by FetchSource, with no SourceAuthOverride.
 * Local sources cannot name a connection (config), so the end-to-end tests never take this branch.
 */

const CONNECTION = 'arn:aws:codeconnections:eu-west-1:999999999999:connection/0a1b2c3d-4e5f-6789-abcd-ef0123456789';
const OTHER = 'arn:aws:codeconnections:eu-west-1:999999999999:connection/9f8e7d6c-5b4a-3210-fedc-ba9876543210';
const COMMIT = 'c0ffee0123456789abcdef0123456789abcdef01';

const substitutions = Object.fromEntries(SUBSTITUTION_NAMES.map((name) => [name, `local-${name}`])) as Substitutions;
const deployPipeline = loadDefinition(substitutions);
// The Map's iteration alone, as a state machine of its own (less the Map's ProcessorConfig): its
// input is one ItemSelector result.
const { ProcessorConfig: _inline, ...iteration } = deployPipeline.States.FetchSources!
  .ItemProcessor! as typeof deployPipeline & {
  ProcessorConfig?: unknown;
};

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'stepdeploy-fetch-connection-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

async function fetchOf(source: Record<string, unknown>) {
  const builds: Array<{ state: string; parameters: Record<string, unknown> }> = [];
  const resolve: TaskImplementation = async () => ({
    Payload: { commit: COMMIT, sourceVersion: COMMIT, snapshotStored: false, snapshotKey: null },
  });
  const startBuild: TaskImplementation = async (parameters, context) => {
    builds.push({ state: context.stateName, parameters: parameters as Record<string, unknown> });
    return { Build: { Id: 'local-FetchProjectName:1', ResolvedSourceVersion: COMMIT } };
  };
  const sm = new LocalStateMachine({
    name: 'fetch-iteration',
    definition: iteration,
    region: 'us-east-1',
    account: '000000000000',
    directory: dir,
    resources: {
      'arn:aws:states:::lambda:invoke': resolve,
      'arn:aws:states:::codebuild:startBuild.sync': startBuild,
    },
    retryIntervalMs: 0,
  });
  const { executionArn } = sm.start(`fetch-${String(source.name ?? 'app')}`, {
    execution: 'acceptance-1',
    source: {
      name: 'app',
      branch: 'main',
      repository: 'https://gitlab.com/acme/app.git',
      sourceType: 'GITLAB',
      path: '.',
      credentialsSecret: null,
      commit: null,
      ...source,
    },
  });
  const record = await sm.wait(executionArn);
  return { record, builds };
}

test('a source with its own connection: FetchSourceThroughConnection, SourceAuthOverride naming it', async () => {
  const { record, builds } = await fetchOf({ connectionArn: CONNECTION });

  expect(record.status).toBe('SUCCEEDED');
  expect(builds.map((b) => b.state)).toEqual(['FetchSourceThroughConnection']);
  expect(builds[0]!.parameters.SourceAuthOverride).toEqual({ Type: 'CODECONNECTIONS', Resource: CONNECTION });
  expect(builds[0]!.parameters).toMatchObject({ SourceTypeOverride: 'GITLAB', SourceVersion: COMMIT });
  expect(JSON.parse(record.output!)).toMatchObject({
    name: 'app',
    commit: COMMIT,
    snapshotKey: `sources/app/${COMMIT}.zip`,
  });
});

test('two sources of one provider, two connections: each build names its own', async () => {
  const first = await fetchOf({ connectionArn: CONNECTION });
  const second = await fetchOf({ name: 'config', connectionArn: OTHER });

  expect([first, second].map(({ builds }) => builds[0]!.parameters.SourceAuthOverride)).toEqual([
    { Type: 'CODECONNECTIONS', Resource: CONNECTION },
    { Type: 'CODECONNECTIONS', Resource: OTHER },
  ]);
});

test.each([
  ['null (the account credential)', { connectionArn: null }],
  ['absent (a plan made before the field)', {}],
])('connectionArn %s: FetchSource, no SourceAuthOverride', async (_what, source) => {
  const { record, builds } = await fetchOf(source);

  expect(record.status).toBe('SUCCEEDED');
  expect(builds.map((b) => b.state)).toEqual(['FetchSource']);
  expect(builds[0]!.parameters).not.toHaveProperty('SourceAuthOverride');
});
