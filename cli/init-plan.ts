import { basename, join } from 'node:path';
import { stringify } from 'yaml';
import type { z } from 'zod';
import {
  CONNECTION_ONLY_SOURCE_TYPES,
  configSchema,
  HTTP_GIT_SOURCE_TYPES,
  type SourceConfig,
  type SourceType,
  sourceTypeOf,
} from '../shared/config';

/**
 * What `stepdeploy init` writes, from answers or flags: the values, each checked with the rules of
 * the config schema itself (shared/config.ts), and the files made from them. No I/O here.
 */

export interface InitSource {
  readonly name: string;
  readonly repository: string;
  readonly defaultBranch: string;
  /** Where the source lands in the combined artifact. */
  readonly path: string;
  /** The CodeConnections connection CodeBuild clones through. */
  readonly connectionArn?: string;
}

export interface InitEnvironment {
  readonly name: string;
  readonly account: string;
  readonly region: string;
  readonly branches: ReadonlyArray<string>;
}

export interface InitPlan {
  readonly pipeline: string;
  readonly toolingAccount?: string;
  readonly sources: ReadonlyArray<InitSource>;
  readonly environments: ReadonlyArray<InitEnvironment>;
  /**
   * `copy`: the default buildspecs are written into buildspecs/ beside the config; otherwise the
   * folder (relative to the config) of the installed package's buildspecs, which the config names.
   */
  readonly buildspecs: 'copy' | { readonly packageFolder: string };
}

export interface InitFile {
  /** Relative to the folder init writes into. */
  readonly path: string;
  readonly content: string;
}

/** The CDK app's entry point: CommonJS JavaScript, which runs with plain node whatever the package's "type". */
export const APP_ENTRY = 'bin/pipeline.cjs';
export const CONFIG_FILE = 'stepdeploy.config.yml';
export const BUILDSPEC_FILES = ['build.yml', 'deploy.yml'] as const;

// The schema's own parts: a value init accepts is one the config accepts, with the same message.
const shape = configSchema.shape;
const sourceShape = shape.sources.valueType.shape;
const environmentShape = shape.environments.valueType.shape;

function issue(schema: z.ZodType, value: unknown): string | undefined {
  const result = schema.safeParse(value);
  return result.success ? undefined : result.error.issues.map((i) => i.message).join('; ');
}

/** Each check returns what is wrong with a value (a sentence that can follow it), or undefined. */
export const checks = {
  pipeline: (value: string) => issue(shape.pipeline, value),
  /** A source or an environment name: both are keys of the same rule. */
  name: (value: string) => issue(shape.sources.keyType, value),
  account: (value: string) => issue(environmentShape.account, value),
  region: (value: string) => issue(environmentShape.region, value),
  branch: (value: string) => issue(sourceShape.defaultBranch, value),
  path: (value: string) => issue(sourceShape.path, value),
  branchPatterns: (value: ReadonlyArray<string>) => issue(environmentShape.branches, value),
  connectionArn: (value: string) => issue(sourceShape.connectionArn, value),
  repository: (value: string): string | undefined => {
    const wrong = issue(sourceShape.repository, value);
    if (wrong !== undefined) return wrong;
    try {
      sourceTypeOf({ repository: value } as SourceConfig);
      return undefined;
    } catch {
      return 'must be an https:// URL of GitHub, GitLab, Bitbucket or CodeCommit, or the path of a local git repository (for GitHub Enterprise or self-managed GitLab, give one of these now and set repository and type in stepdeploy.config.yml after)';
    }
  },
};

/** How CodeBuild may reach a repository (valid by `checks.repository`): only through a connection, optionally, or never. */
export function connectionFor(repository: string): 'required' | 'optional' | 'none' {
  const type: SourceType = sourceTypeOf({ repository } as SourceConfig);
  if (CONNECTION_ONLY_SOURCE_TYPES.has(type)) return 'required';
  return HTTP_GIT_SOURCE_TYPES.has(type) ? 'optional' : 'none';
}

/** A repository value that an error message must not repeat: it carries a user or a token. */
export function carriesCredentials(repository: string): boolean {
  return checks.repository(repository)?.startsWith('must not carry credentials') === true;
}

/** The pipeline name a folder suggests (`shop-infra` for ./Shop_Infra), or `stepdeploy` when it suggests none. */
export function pipelineNameFor(dir: string): string {
  const name = basename(dir)
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/^[^a-z]+/, '')
    .slice(0, 30)
    .replace(/-+$/, '');
  return checks.pipeline(name) === undefined ? name : 'stepdeploy';
}

/** The first source is the artifact's root; each other one its own folder. */
export function defaultPath(name: string, index: number): string {
  return index === 0 ? '.' : `${name}/`;
}

/** The first environment takes any branch; the later ones only the first source's default branch. */
export function defaultBranches(index: number, sources: ReadonlyArray<InitSource>): string[] {
  return index === 0 ? ['*'] : [sources[0]?.defaultBranch ?? 'main'];
}

function partitionOf(region: string): string {
  if (region.startsWith('cn-')) return 'aws-cn';
  if (region.startsWith('us-gov-')) return 'aws-us-gov';
  return 'aws';
}

/** The deploy role's ARN: named after the pipeline, so two pipelines can deploy to one account. */
export function deployRoleArnFor(pipeline: string, environment: InitEnvironment): string {
  return `arn:${partitionOf(environment.region)}:iam::${environment.account}:role/${pipeline}-deploy`;
}

/** One YAML scalar, quoted where YAML would read it as something else (an account as a number, `*`). */
function scalar(value: string): string {
  return stringify(value).trimEnd();
}

export function renderConfig(plan: InitPlan): string {
  const buildspec = (file: string) =>
    plan.buildspecs === 'copy' ? `buildspecs/${file}` : `${plan.buildspecs.packageFolder}/${file}`;
  const lines = [
    `# ${CONFIG_FILE}: the deploy pipeline, written by \`stepdeploy init\`. One deployment (one`,
    '# execution) fetches every source below at a branch, combines them into one artifact, builds it',
    '# and deploys it to one environment. `npx cdk deploy --all` makes the pipeline on AWS from this',
    '# file (cdk.json, bin/pipeline.cjs); the stepdeploy README, "The config file", has every field.',
    '# No secret belongs here: only the names of Secrets Manager secrets.',
    '',
    '# Names the state machine, the CodeBuild projects and the deploy roles: lowercase letters, digits',
    '# and "-", starting with a letter, at most 30 characters.',
    `pipeline: ${scalar(plan.pipeline)}`,
    '',
    '# The AWS account of the pipeline stack (the tooling account), in quotes. The deploy roles in the',
    '# environment accounts trust its deploy project; without it `cdk deploy` makes the pipeline only.',
    plan.toolingAccount === undefined
      ? '# toolingAccount: "123456789012"'
      : `toolingAccount: ${scalar(plan.toolingAccount)}`,
    '',
    '# The git repositories a deployment combines. repository: an https:// URL (GitHub, GitLab,',
    '# Bitbucket, CodeCommit; the README\'s "Deploy to AWS" says how CodeBuild gets access) or a local',
    '# path, relative to this file (the local runtime only). defaultBranch: what a deployment takes',
    '# when it names no branch for the source. path: where the source lands in the combined',
    '# artifact ("." is its root).',
    'sources:',
    ...plan.sources.flatMap((source) => [
      `  ${source.name}:`,
      `    repository: ${scalar(source.repository)}`,
      `    defaultBranch: ${scalar(source.defaultBranch)}`,
      `    path: ${scalar(source.path)}`,
      ...(source.connectionArn !== undefined
        ? [`    connectionArn: ${scalar(source.connectionArn)}`]
        : connectionFor(source.repository) === 'optional'
          ? [
              '    # connectionArn: arn:aws:codeconnections:<region>:<account>:connection/<id> # to clone through a connection',
            ]
          : []),
    ]),
    '',
    '# Where deployments go. account (in quotes) and region: where the deploy build deploys.',
    '# deployRoleArn: the role it assumes there; the DeployRoles stack of that account creates it with',
    '# this name. branches: the branch patterns this environment may deploy ("*" is any branch).',
    'environments:',
    ...plan.environments.flatMap((environment) => [
      `  ${environment.name}:`,
      `    account: ${scalar(environment.account)}`,
      `    region: ${scalar(environment.region)}`,
      `    deployRoleArn: ${scalar(deployRoleArnFor(plan.pipeline, environment))}`,
      `    branches: [${environment.branches.map(scalar).join(', ')}]`,
      '    # approval: { required: true } # a person approves the built artifact before it deploys',
      '    # hooks: # checks after the deploy, e.g. an HTTP health check',
      '    #   - { name: health, url: https://example.com/health, expectStatus: 200 }',
      '    # deployRole: # what the deploy role may do in its account',
      '    #   managedPolicyArns: [arn:aws:iam::123456789012:policy/your-stacks]',
    ]),
    '',
    '# The build and the deploy: CodeBuild buildspecs, relative to this file.',
    'buildspecs:',
    `  build: ${scalar(buildspec('build.yml'))}`,
    `  deploy: ${scalar(buildspec('deploy.yml'))}`,
    '',
    '# Slack: the name of a Secrets Manager secret that holds the incoming-webhook URL (never the URL).',
    '# notifications:',
    '#   slack:',
    `#     webhookSecretName: ${plan.pipeline}/slack-webhook`,
    '',
  ];
  return lines.join('\n');
}

const APP = `// The CDK app of the stepdeploy pipeline, written by \`stepdeploy init\`: \`npx cdk synth\`,
// \`npx cdk deploy --all\`. Yours to change: DeploymentPipeline is a construct, so it can sit in any
// stack of yours beside your other constructs (the stepdeploy README, "In your own CDK app").
'use strict';
const { join } = require('node:path');
const { App, Stack } = require('aws-cdk-lib');
const { DeploymentPipeline, DeployRoles, loadConfig } = require('stepdeploy');

const configPath = join(__dirname, '..', '${CONFIG_FILE}');
const config = loadConfig(configPath);
const app = new App();

// The pipeline, in the tooling account (toolingAccount in the config, else your credentials'
// account) and the region of your AWS profile.
const tooling = new Stack(app, config.pipeline, {
  description: \`stepdeploy pipeline \${config.pipeline}\`,
  env: { account: config.toolingAccount ?? process.env.CDK_DEFAULT_ACCOUNT, region: process.env.CDK_DEFAULT_REGION },
});
new DeploymentPipeline(tooling, 'Pipeline', { config, configPath });

// The deploy roles: one stack per environment account, in the region of its first environment.
// They trust the tooling account's deploy project, so they need toolingAccount in the config.
if (config.toolingAccount !== undefined) {
  const regionOf = new Map();
  for (const environment of Object.values(config.environments)) {
    if (!regionOf.has(environment.account)) regionOf.set(environment.account, environment.region);
  }
  for (const [account, region] of regionOf) {
    const stack = new Stack(app, \`\${config.pipeline}-deploy-roles-\${account}\`, {
      description: \`stepdeploy \${config.pipeline}: deploy roles of account \${account}\`,
      env: { account, region },
    });
    new DeployRoles(stack, 'DeployRoles', { config });
  }
}

app.synth();
`;

/**
 * cdk.json. `cdk synth` is offline but for the CDK CLI's own calls: it fetches notices
 * (cli.cdk.dev-tools.aws.dev) and, from aws-cdk 2.1100.0, sends CLI telemetry
 * (cdk-cli-telemetry.us-east-1.api.aws). `"notices": false` and the context key `cli-telemetry:
 * false` turn both off (the CDK guide, "Configure AWS CDK CLI telemetry"; aws-cdk 2.1148.1 reads
 * them); this repository's own cdk.json sets the same.
 */
export function renderCdkJson(): string {
  return `${JSON.stringify({ app: `node ${APP_ENTRY}`, notices: false, context: { 'cli-telemetry': false } }, null, 2)}\n`;
}

export const GITIGNORE = '.gitignore';
/** Made by `cdk synth` and by the local runtime (its S3 data, executions, clones): never committed. */
const IGNORED = ['cdk.out/', '.stepdeploy/'] as const;

/**
 * What init appends to the folder's .gitignore (`existing`: its text, undefined when there is
 * none): the lines of IGNORED it does not already ignore, or '' when it needs none. A line that
 * ignores the same folder written another way (`/cdk.out`, `cdk.out`) counts as there.
 */
export function gitignoreAddition(existing: string | undefined): string {
  const present = new Set(
    (existing ?? '').split(/\r?\n/).map((line) => line.trim().replace(/^\//, '').replace(/\/$/, '')),
  );
  const missing = IGNORED.filter((line) => !present.has(line.replace(/\/$/, '')));
  if (missing.length === 0) return '';
  const separator = existing === undefined || existing === '' || existing.endsWith('\n') ? '' : '\n';
  return `${separator}# stepdeploy: CDK's output and the local runtime's data\n${missing.join('\n')}\n`;
}

/** Every file init writes, in the order it writes them. */
export function initFiles(plan: InitPlan, readBuildspec: (file: string) => string): InitFile[] {
  const files: InitFile[] = [
    { path: CONFIG_FILE, content: renderConfig(plan) },
    { path: 'cdk.json', content: renderCdkJson() },
    { path: APP_ENTRY, content: APP },
  ];
  if (plan.buildspecs === 'copy') {
    for (const file of BUILDSPEC_FILES) files.push({ path: join('buildspecs', file), content: readBuildspec(file) });
  }
  return files;
}
