import { basename, join } from 'node:path';
import { stringify } from 'yaml';
import type { z } from 'zod';
import {
  CONNECTION_ONLY_SOURCE_TYPES,
  configSchema,
  HTTP_GIT_SOURCE_TYPES,
  isLocalRepository,
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
  /** The provider, when the repository's host does not tell it (GitHub Enterprise, self-managed GitLab). */
  readonly type?: SourceType;
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
  /**
   * A repository as init takes it: what the config accepts, narrowed to what can work — an
   * https:// URL (CodeBuild clones each provider from its HTTPS clone URL: ProjectSource
   * `location`), a local path or a file:// URL — and nothing a shell would read as code.
   */
  repository: (value: string): string | undefined => {
    const hostile = shellReadable(value);
    if (hostile !== undefined) return hostile;
    const https = httpsFormOf(value);
    if (https !== undefined) {
      return `is an SSH address, and CodeBuild clones GitHub, GitLab, Bitbucket and CodeCommit repositories from their HTTPS clone URL; give ${https}`;
    }
    const wrong = issue(sourceShape.repository, value);
    if (wrong !== undefined) return wrong;
    if (isLocalRepository(value) || value.startsWith('file://')) return undefined;
    let url: URL;
    try {
      url = new URL(value);
    } catch {
      return 'is not a valid URL; give the https:// clone URL of the repository or the path of a local clone';
    }
    if (url.protocol === 'http:') {
      return `must use https: CodeBuild clones over HTTPS; give https://${value.slice('http://'.length)}`;
    }
    if (url.protocol !== 'https:' || url.hostname === '' || url.pathname.length <= 1) {
      return 'must be the https:// clone URL of the repository (https://<host>/<owner>/<repository>.git) or the path of a local clone';
    }
    return undefined;
  },
  /**
   * The provider of a repository (valid by `checks.repository`), when `type` is given: for a URL
   * of a host of its own, GitHub Enterprise or self-managed GitLab; for any other repository, the
   * type the repository tells (the config infers it then: leave it out).
   */
  sourceType: (repository: string, type: string | undefined): string | undefined => {
    const told = typeTold(repository);
    if (type === undefined) {
      return told === undefined
        ? `is at ${new URL(repository).host}, whose provider stepdeploy cannot tell from the host: give its type, ${SELF_HOSTED_TYPES.join(' or ')}`
        : undefined;
    }
    if (told !== undefined)
      return type === told ? undefined : `is a ${told} repository, not ${type}: leave the type out`;
    return (SELF_HOSTED_TYPES as ReadonlyArray<string>).includes(type)
      ? undefined
      : `is at ${new URL(repository).host}: its type must be ${SELF_HOSTED_TYPES.join(' or ')}, not ${JSON.stringify(type)}`;
  },
};

/** The providers of a server at a host of its own: what a source's `type` is for (README, "Source access, per provider"). */
export const SELF_HOSTED_TYPES = [
  'GITHUB_ENTERPRISE',
  'GITLAB_SELF_MANAGED',
] as const satisfies ReadonlyArray<SourceType>;

/** What a repository (valid by `checks.repository`) tells of its provider; undefined for a URL of another host. */
export function typeTold(repository: string): SourceType | undefined {
  try {
    return sourceTypeOf({ repository } as SourceConfig);
  } catch {
    return undefined;
  }
}

/** What a shell reads as code, and control characters: never in a value init writes, whatever reads it later. */
const SHELL_CHARACTERS = /[`$;|&<>\\'"\u0000-\u001f\u007f]/;
/** git reads `<transport>::<address>` as a remote helper to run (`ext::sh -c ...`), not as a path. */
const REMOTE_HELPER = /^[A-Za-z][A-Za-z0-9+.-]*::/;

function shellReadable(value: string): string | undefined {
  if (value.startsWith('-')) {
    return 'must not start with "-" (a program would read it as an option); give the plain URL or path';
  }
  if (SHELL_CHARACTERS.test(value)) {
    return 'must not contain ` $ ; | & < > \\ quotes or control characters (a shell would read them as code); give the plain URL or path';
  }
  if (REMOTE_HELPER.test(value))
    return 'must not be a git remote-helper address (<transport>::...); give a URL or a path';
  return undefined;
}

/** The https:// URL of an SSH address (`git@host:owner/repo.git`, `ssh://git@host/owner/repo.git`), or undefined for any other value. */
function httpsFormOf(value: string): string | undefined {
  const ssh = /^ssh:\/\/(?:[\w.-]+@)?([A-Za-z0-9.-]+)(?::\d+)?\/(.+)$/.exec(value);
  if (ssh) return `https://${ssh[1]}/${ssh[2]}`;
  // git's scp-like form: [user@]host:path, with no "/" before the ":" (else git reads a local path).
  const scp = value.includes('://') ? null : /^(?:([\w.-]+)@)?([A-Za-z0-9.-]+):\/?([^:]+)$/.exec(value);
  if (scp && (scp[1] !== undefined || scp[2]!.includes('.'))) return `https://${scp[2]}/${scp[3]}`;
  return undefined;
}

/** How CodeBuild may reach a repository of this type: only through a connection, optionally, or never. */
export function connectionFor(repository: string, type?: SourceType): 'required' | 'optional' | 'none' {
  const resolved: SourceType = type ?? sourceTypeOf({ repository } as SourceConfig);
  if (CONNECTION_ONLY_SOURCE_TYPES.has(resolved)) return 'required';
  return HTTP_GIT_SOURCE_TYPES.has(resolved) ? 'optional' : 'none';
}

/**
 * A repository value that an error message must not repeat: an http(s) URL with a user before the
 * host (the user may be a token: `https://ghp_...@github.com/...`). The config's check says which;
 * an SSH URL's user (`ssh://git@...`) is not one of them.
 */
export function carriesCredentials(repository: string): boolean {
  return issue(sourceShape.repository, repository)?.startsWith('must not carry credentials') === true;
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
    '# The git repositories a deployment combines. repository: an https:// clone URL (GitHub, GitLab,',
    '# Bitbucket, CodeCommit; GitHub Enterprise and self-managed GitLab with type; the README\'s "Deploy',
    '# to AWS" says how CodeBuild gets access) or a local path, relative to this file (the local',
    '# runtime only). defaultBranch: what a deployment takes',
    '# when it names no branch for the source. path: where the source lands in the combined',
    '# artifact ("." is its root).',
    'sources:',
    ...plan.sources.flatMap((source) => [
      `  ${source.name}:`,
      `    repository: ${scalar(source.repository)}`,
      ...(source.type !== undefined ? [`    type: ${source.type}`] : []),
      `    defaultBranch: ${scalar(source.defaultBranch)}`,
      `    path: ${scalar(source.path)}`,
      ...(source.connectionArn !== undefined
        ? [`    connectionArn: ${scalar(source.connectionArn)}`]
        : connectionFor(source.repository, source.type) === 'optional'
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
