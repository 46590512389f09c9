import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App } from 'aws-cdk-lib';
import { stringify } from 'yaml';
import { loadConfig, type PipelineConfig } from '../../shared/config';
import { PipelineStack } from '../../infra/pipeline-stack';
import { PROJECT_ROOT } from '../../infra/task-function';

export const EXAMPLE_CONFIG_PATH = join(PROJECT_ROOT, 'stepdeploy.config.yml');

export function exampleConfig(): PipelineConfig {
  return loadConfig(EXAMPLE_CONFIG_PATH);
}

const tempDirs: string[] = [];
// Registered by every test file that imports these fixtures: no config folder outlives its file.
afterAll(() => {
  for (const dir of tempDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** The example config with changes, written to a temp folder (buildspecs stay the repository's). */
export function writeConfig(change: (raw: Record<string, unknown>) => void): string {
  const raw = JSON.parse(JSON.stringify(exampleConfig())) as Record<string, unknown>;
  raw.buildspecs = {
    build: join(PROJECT_ROOT, 'buildspecs', 'build.yml'),
    deploy: join(PROJECT_ROOT, 'buildspecs', 'deploy.yml'),
  };
  change(raw);
  const dir = mkdtempSync(join(tmpdir(), 'stepdeploy-infra-'));
  tempDirs.push(dir);
  const path = join(dir, 'stepdeploy.config.yml');
  writeFileSync(path, stringify(raw));
  return path;
}

export const EVERY_PROVIDER_CONNECTION =
  'arn:aws:codeconnections:eu-west-1:999999999999:connection/0a1b2c3d-4e5f-6789-abcd-ef0123456789';
export const EVERY_PROVIDER_LEGACY_CONNECTION =
  'arn:aws:codestar-connections:eu-west-1:999999999999:connection/9f8e7d6c-5b4a-3210-fedc-ba9876543210';

/**
 * A config with a source of every provider (connections of both ARN prefixes, CodeCommit in two
 * regions) and environments in two regions of three accounts, with the tooling account set.
 */
export function everyProviderConfig(): string {
  return writeConfig((raw) => {
    raw.toolingAccount = '999999999999';
    raw.sources = {
      github: { repository: 'https://github.com/acme/app.git', path: '.' },
      ghe: {
        repository: 'https://git.acme.example/acme/lib.git',
        type: 'GITHUB_ENTERPRISE',
        path: 'lib/',
        connectionArn: EVERY_PROVIDER_LEGACY_CONNECTION,
      },
      gitlab: {
        repository: 'https://gitlab.com/acme/config.git',
        path: 'config/',
        connectionArn: EVERY_PROVIDER_CONNECTION,
      },
      selfmanaged: {
        repository: 'https://gitlab.acme.example/acme/infra.git',
        type: 'GITLAB_SELF_MANAGED',
        path: 'infra/',
        connectionArn: EVERY_PROVIDER_CONNECTION,
      },
      bitbucket: { repository: 'https://bitbucket.org/acme/docs.git', path: 'docs/' },
      codecommit: {
        repository: 'https://git-codecommit.eu-west-1.amazonaws.com/v1/repos/shop-settings',
        path: 'settings/',
      },
      codecommitus: { repository: 'https://git-codecommit.us-east-1.amazonaws.com/v1/repos/shop-us', path: 'us/' },
    };
    const environments = raw.environments as Record<string, Record<string, unknown>>;
    // A push to any of them deploys acceptance (the receiver's webhooks and the CodeCommit rule).
    environments.acceptance!.triggers = ['github', 'gitlab', 'bitbucket', 'codecommit'].map((source) => ({
      source,
      branches: ['*'],
    }));
    environments.preproduction!.triggers = [];
    environments.production!.region = 'us-east-1';
    environments.production!.deployRole = {
      managedPolicyArns: ['arn:aws:iam::333333333333:policy/shop-stacks'],
      cloudFormationExecutionRoleArns: ['arn:aws:iam::333333333333:role/shop-cfn-exec'],
    };
  });
}

export interface StackOptions {
  readonly configPath?: string;
  /** Run esbuild for the functions; skip it where a test reads no bundle. @default false */
  readonly bundle?: boolean;
  readonly app?: App;
}

/** A fresh app and PipelineStack; without `bundle`, asset bundling is skipped (much faster). */
export function makeStack(options: StackOptions = {}): { app: App; stack: PipelineStack } {
  const app = options.app ?? new App(options.bundle ? {} : { context: { 'aws:cdk:bundling-stacks': [] } });
  const configPath = options.configPath ?? EXAMPLE_CONFIG_PATH;
  const stack = new PipelineStack(app, 'Pipeline', { config: loadConfig(configPath), configPath });
  return { app, stack };
}

/** The logical id of the one resource of `type` whose id starts with `prefix`. */
export function logicalIdOf(resources: Record<string, { Type: string }>, type: string, prefix: string): string {
  const ids = Object.keys(resources).filter((id) => resources[id]!.Type === type && id.startsWith(prefix));
  if (ids.length !== 1)
    throw new Error(`expected one ${type} whose id starts with ${prefix}, found [${ids.join(', ')}]`);
  return ids[0]!;
}
