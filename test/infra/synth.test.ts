import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App } from 'aws-cdk-lib';
import { definePipelineApp } from '../../infra/pipeline-app';
import { cfnLintErrors, cfnLintVersion, haveCfnLint } from './cfn-lint';
import { EXAMPLE_CONFIG_PATH, everyProviderConfig } from './fixtures';

/**
 * What `npx cdk synth` produces from a config, synthesized as the CDK app does (infra/app.ts),
 * into a folder of its own. Bundling is skipped: templates do not depend on the bundles' content.
 */
const outdirs: string[] = [];
afterAll(() => {
  for (const dir of outdirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function synthesize(configPath: string): { dir: string; templates: Record<string, string>; missing: unknown } {
  const dir = mkdtempSync(join(tmpdir(), 'stepdeploy-synth-'));
  outdirs.push(dir);
  const app = new App({ outdir: dir, context: { 'aws:cdk:bundling-stacks': [] } });
  definePipelineApp(app, configPath);
  const assembly = app.synth();
  const templates = Object.fromEntries(
    readdirSync(dir)
      .filter((f) => f.endsWith('.template.json'))
      .sort()
      .map((f) => [f, readFileSync(join(dir, f), 'utf8')]),
  );
  return { dir, templates, missing: assembly.manifest.missing };
}

const everyProviderPath = everyProviderConfig();
const bundled = synthesize(EXAMPLE_CONFIG_PATH);
const everyProvider = synthesize(everyProviderPath);

describe('synthesizing', () => {
  test('looks nothing up: no context value is missing, so no account is asked', () => {
    expect(bundled.missing).toBeUndefined();
    expect(everyProvider.missing).toBeUndefined();
    // The every-provider config makes the pipeline stack and one deploy role stack per account.
    expect(Object.keys(everyProvider.templates)).toEqual([
      'stepdeploy-example-deploy-roles-111111111111.template.json',
      'stepdeploy-example-deploy-roles-222222222222.template.json',
      'stepdeploy-example-deploy-roles-333333333333.template.json',
      'stepdeploy-example.template.json',
    ]);
  });

  test('is deterministic: the same config synthesizes to the same templates', () => {
    expect(synthesize(EXAMPLE_CONFIG_PATH).templates).toEqual(bundled.templates);
    expect(synthesize(everyProviderPath).templates).toEqual(everyProvider.templates);
  });
});

(haveCfnLint ? describe : describe.skip)(`cfn-lint (${cfnLintVersion})`, () => {
  test('the templates of the bundled config: no error', () => {
    expect(cfnLintErrors('bundled config', bundled.dir)).toEqual([]);
  });

  test('the templates of a config with every source provider and two regions: no error', () => {
    expect(cfnLintErrors('every-provider config', everyProvider.dir)).toEqual([]);
  });
});
