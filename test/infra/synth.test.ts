import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App } from 'aws-cdk-lib';
import { definePipelineApp } from '../../infra/pipeline-app';
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

interface LintMatch {
  readonly Filename: string;
  readonly Level: string;
  readonly Message: string;
  readonly Rule: { readonly Id: string };
}

const cfnLint = spawnSync('cfn-lint', ['--version'], { encoding: 'utf8' });
const haveCfnLint = cfnLint.status === 0;
if (!haveCfnLint) {
  // One line, so that a machine without cfn-lint never passes this silently.
  console.warn(
    'cfn-lint is not on PATH: the lint of the synthesized templates was SKIPPED (pip install cfn-lint to run it)',
  );
}

(haveCfnLint ? describe : describe.skip)(`cfn-lint (${cfnLint.stdout?.trim() || 'not on PATH'})`, () => {
  const lint = (dir: string): LintMatch[] => {
    const files = readdirSync(dir)
      .filter((f) => f.endsWith('.template.json'))
      .map((f) => join(dir, f));
    const run = spawnSync('cfn-lint', ['--format', 'json', '--', ...files], {
      encoding: 'utf8',
      maxBuffer: 64 * 1024 * 1024,
    });
    if (run.error) throw run.error;
    // Exit codes are a bit mask of the levels found (2 error, 4 warning, 8 informational); 1 is a failure of cfn-lint itself.
    if (run.status === 1 || run.stdout.trim() === '')
      throw new Error(`cfn-lint failed to run (exit ${run.status}): ${run.stderr}`);
    return JSON.parse(run.stdout) as LintMatch[];
  };
  const report = (name: string, matches: LintMatch[]) => {
    const warnings = matches.filter((m) => m.Level !== 'Error');
    if (warnings.length > 0) {
      console.log(
        `cfn-lint on the ${name}: ${warnings.length} warning(s)\n${warnings.map((w) => `  ${w.Rule.Id} ${w.Filename.split('/').pop()}: ${w.Message}`).join('\n')}`,
      );
    }
    return matches
      .filter((m) => m.Level === 'Error')
      .map((m) => `${m.Rule.Id} ${m.Filename.split('/').pop()}: ${m.Message}`);
  };

  test('the templates of the bundled config: no error', () => {
    expect(report('bundled config', lint(bundled.dir))).toEqual([]);
  });

  test('the templates of a config with every source provider and two regions: no error', () => {
    expect(report('every-provider config', lint(everyProvider.dir))).toEqual([]);
  });
});
