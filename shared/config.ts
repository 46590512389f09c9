import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { ConfigError } from './errors';
import {
  BRANCH_PATTERN_RULE,
  branchMatches,
  isValidBranchName,
  isValidBranchPattern,
  patternsOverlap,
} from './branch-name';
import { hookTimeViolation } from './hook-time';
import { reservedVariableReason } from './reserved-variables';

/**
 * `stepdeploy.config.yml`: one file drives the CDK stack and the local runtime.
 * Every message names the path in the file, the value received and how to fix it.
 */

const NAME = /^[a-z][a-z0-9-]{0,29}$/;
const NAME_RULE = 'lowercase letters, digits and "-", starting with a letter, at most 30 characters';
const ENV_VAR = /^[A-Z_][A-Z0-9_]{0,99}$/;

/** CodeBuild source types a source may use; `LOCAL_GIT` is a path on this machine (local runtime only). */
export const SOURCE_TYPES = [
  'GITHUB',
  'GITHUB_ENTERPRISE',
  'GITLAB',
  'GITLAB_SELF_MANAGED',
  'BITBUCKET',
  'CODECOMMIT',
  'LOCAL_GIT',
] as const;
export type SourceType = (typeof SOURCE_TYPES)[number];

const artifactPath = z
  .string()
  .refine((p) => p === '.' || /^(?!\/)(?!.*\/\/)(?!.*(^|\/)\.\.?(\/|$))[A-Za-z0-9._-][A-Za-z0-9._/-]*\/$/.test(p), {
    message: 'must be "." or a relative folder ending in "/" without ".." (e.g. "config/")',
  });

/** Secrets Manager secret names; a value that does not fit is never echoed (it may be the credential itself). */
function secretNameSchema(notThis: string) {
  return z.string().regex(/^[\w/+=.@-]{1,512}$/, `must be a Secrets Manager secret name, not ${notThis}`);
}

/** GitHub, GitLab and Bitbucket token formats: pasted where a secret name belongs. */
const TOKEN_PREFIXES = /^(gh[pousr]_|github_pat_|glpat-|ATBB|ATCTT)/;

/** Config keys that hold secret names: their values are not repeated in errors. */
const SECRET_NAME_KEYS = new Set(['credentialsSecret', 'webhookSecretName', 'signingSecretName']);

/** Slack member ids: U (or W, in Enterprise organizations) and uppercase letters and digits. */
const SLACK_USER_ID = /^[UW][A-Z0-9]{2,20}$/;
const SLACK_USER_ID_RULE =
  'a Slack member id: U (or W) and uppercase letters and digits, as in the profile\'s "Copy member ID"';

/** A URL with a user (and maybe a password or token) before the host. */
// http(s) only: the `git@` of an SSH address is a user name, and SSH addresses are refused by checkCloneUrl.
const URL_WITH_CREDENTIALS = /^https?:\/\/[^/@\s]+@/i;

/**
 * Whether a rejected value may be a credential, so that the error does not repeat it: anything
 * under notifications or a secret-name key (a webhook URL pasted in the wrong place), a value
 * shaped like a token, or a URL with credentials in it.
 */
function mayBeCredential(path: ReadonlyArray<PropertyKey>, value: unknown): boolean {
  if (path[0] === 'notifications' || path.some((key) => SECRET_NAME_KEYS.has(String(key)))) return true;
  // A variable's value is whatever was pasted there, AWS_SECRET_ACCESS_KEY's included.
  if (path[0] === 'environments' && path[2] === 'variables') return true;
  const text = typeof value === 'string' ? value : (JSON.stringify(value) ?? '');
  return (
    TOKEN_PREFIXES.test(text) ||
    /(gh[pousr]_|github_pat_|glpat-|hooks\.slack\.com)/.test(text) ||
    /:\/\/[^/@\s"]+@/.test(text)
  );
}

/** The ARN of a connection; its service prefix is the one its IAM actions must use. */
export const CONNECTION_ARN =
  /^arn:aws(-[a-z]+)*:(codeconnections|codestar-connections):[a-z]{2}(-[a-z]+)+-\d:\d{12}:connection\/[A-Za-z0-9-]{1,64}$/;

const sourceSchema = z
  .object({
    repository: z
      .string()
      .min(1, 'must be a repository URL or a local path')
      .refine((r) => !URL_WITH_CREDENTIALS.test(r), {
        message:
          'must not carry credentials (user:token@): store a read token in Secrets Manager and name the secret in credentialsSecret',
      }),
    type: z.enum(SOURCE_TYPES).optional(),
    defaultBranch: z
      .string()
      .refine(isValidBranchName, { message: 'must be a valid branch name (A-Z a-z 0-9 . _ / - only, git ref rules)' })
      .default('main'),
    path: artifactPath,
    credentialsSecret: secretNameSchema('the token itself')
      .refine((name) => !TOKEN_PREFIXES.test(name), {
        message: "looks like a token: store the token in Secrets Manager and give the secret's name",
      })
      .optional(),
    // The CodeConnections connection CodeBuild fetches this source through (README "Deploy to AWS").
    connectionArn: z
      .string()
      .regex(
        CONNECTION_ARN,
        'must be a CodeConnections connection ARN such as arn:aws:codeconnections:eu-west-1:123456789012:connection/<id> (codestar-connections for one created before July 2024): copy it from the Developer Tools console, Settings > Connections',
      )
      .optional(),
  })
  .strict();

export const hookSchema = z
  .object({
    name: z.string().regex(NAME, NAME_RULE),
    type: z.literal('http').default('http'),
    url: z.url({ protocol: /^https?$/, message: 'must be an http(s) URL' }),
    method: z.enum(['GET', 'HEAD']).default('GET'),
    expectStatus: z.number().int().min(100).max(599).default(200),
    timeoutSeconds: z.number().int().min(1).max(300).default(10),
    retries: z.number().int().min(0).max(20).default(3),
    intervalSeconds: z.number().int().min(0).max(300).default(5),
  })
  .strict();

/** Deploy on push: a push to a matching branch of `source` deploys this environment (README "Triggers"). */
const triggerSchema = z
  .object({
    source: z.string().regex(NAME, NAME_RULE),
    branches: z
      .array(z.string().refine(isValidBranchPattern, { message: BRANCH_PATTERN_RULE }))
      .min(1, 'must list at least one branch pattern ("*" for any branch)'),
    exclude: z.array(z.string().refine(isValidBranchPattern, { message: BRANCH_PATTERN_RULE })).default([]),
  })
  .strict();

const IAM_ROLE_ARN = /^arn:aws[a-z-]*:iam::\d{12}:role\/[\w+=,.@/-]+$/;
const IAM_POLICY_ARN = /^arn:aws[a-z-]*:iam::(\d{12}|aws):policy\/[\w+=,.@/-]+$/;

/** How long an approval may wait by default. */
export const DEFAULT_APPROVAL_TIMEOUT_MINUTES = 240;
/**
 * The longest approval wait: it counts against the execution's own timeout (24 hours in
 * workflows/deploy-pipeline.asl.json), which leaves 12 hours for the builds, the wait for the
 * deploy lease and the deploy.
 */
export const MAX_APPROVAL_TIMEOUT_MINUTES = 720;

const approvalSchema = z
  .object({
    // Writing an approval block means wanting one; `required: false` switches it off and keeps the settings.
    required: z.boolean({ error: 'must be true or false' }).default(true),
    // Fractions are allowed (0.05 = 3 s), for tests; Step Functions counts whole seconds, at least 1.
    timeoutMinutes: z
      .number({ error: 'must be a number of minutes' })
      .positive(`must be more than 0 and at most ${MAX_APPROVAL_TIMEOUT_MINUTES} (12 hours)`)
      .max(
        MAX_APPROVAL_TIMEOUT_MINUTES,
        `must be at most ${MAX_APPROVAL_TIMEOUT_MINUTES} (12 hours): the whole execution must end within 24 hours`,
      )
      .default(DEFAULT_APPROVAL_TIMEOUT_MINUTES),
    // false: the person who requested the deployment cannot approve it.
    allowSelfApproval: z.boolean({ error: 'must be true or false' }).default(false),
  })
  .strict();

const environmentSchema = z
  .object({
    account: z
      .string({
        error:
          'must be a 12-digit AWS account id in quotes ("012345678901"): unquoted, YAML reads a number and drops leading zeros',
      })
      .regex(/^\d{12}$/, 'must be a 12-digit AWS account id'),
    region: z.string().regex(/^[a-z]{2}(-[a-z]+)+-\d$/, 'must be an AWS region such as eu-west-1'),
    deployRoleArn: z.string().regex(IAM_ROLE_ARN, 'must be an IAM role ARN (arn:aws:iam::123456789012:role/name)'),
    branches: z
      .array(z.string().refine(isValidBranchPattern, { message: BRANCH_PATTERN_RULE }))
      .min(1, 'must list at least one branch pattern ("*" allows any valid branch)'),
    // One deploy per environment at a time; a newer execution supersedes older ones (RELIABILITY.md).
    concurrency: z
      .literal('superseded', {
        error:
          'must be "superseded" (the only mode: an older execution never deploys over a newer one; see RELIABILITY.md)',
      })
      .default('superseded'),
    variables: z
      .record(z.string().regex(ENV_VAR, 'variable names must be UPPER_SNAKE_CASE'), z.string())
      .superRefine((variables, ctx) => {
        for (const name of Object.keys(variables)) {
          const reason = reservedVariableReason(name);
          if (reason !== undefined)
            ctx.addIssue({
              code: 'custom',
              path: [name],
              message: `is a reserved name: ${reason}; rename or remove it`,
            });
        }
      })
      .default({}),
    hooks: z
      .array(hookSchema)
      .superRefine((hooks, ctx) => {
        hooks.forEach((hook, i) => {
          const violation = hookTimeViolation(hook);
          if (violation !== undefined) ctx.addIssue({ code: 'custom', path: [i], message: violation });
        });
      })
      .default([]),
    // A person approves the built artifact before Deploy (AwaitApproval); none by default.
    approval: approvalSchema.default({
      required: false,
      timeoutMinutes: DEFAULT_APPROVAL_TIMEOUT_MINUTES,
      allowSelfApproval: false,
    }),
    // What the deploy role stack (infra/deploy-role.ts) grants the deploy role beyond the trust.
    deployRole: z
      .object({
        managedPolicyArns: z
          .array(
            z
              .string()
              .regex(
                IAM_POLICY_ARN,
                'must be an IAM managed policy ARN (arn:aws:iam::aws:policy/Name or arn:aws:iam::123456789012:policy/Name)',
              ),
          )
          .default([]),
        cloudFormationExecutionRoleArns: z
          .array(z.string().regex(IAM_ROLE_ARN, 'must be an IAM role ARN (arn:aws:iam::123456789012:role/name)'))
          .default([]),
      })
      .strict()
      .default({ managedPolicyArns: [], cloudFormationExecutionRoleArns: [] }),
    triggers: z.array(triggerSchema).default([]),
  })
  .strict();

export const configSchema = z
  .object({
    pipeline: z.string().regex(NAME, NAME_RULE),
    // The account the pipeline stack is deployed to: the deploy roles trust its deploy project's role.
    toolingAccount: z
      .string({
        error:
          'must be a 12-digit AWS account id in quotes ("012345678901"): unquoted, YAML reads a number and drops leading zeros',
      })
      .regex(/^\d{12}$/, 'must be a 12-digit AWS account id')
      .optional(),
    sources: z
      .record(z.string().regex(NAME, NAME_RULE), sourceSchema)
      .refine((s) => Object.keys(s).length > 0, { message: 'must declare at least one source' }),
    environments: z
      .record(z.string().regex(NAME, NAME_RULE), environmentSchema)
      .refine((e) => Object.keys(e).length > 0, { message: 'must declare at least one environment' }),
    buildspecs: z
      .object({
        build: z.string().default('buildspecs/build.yml'),
        deploy: z.string().default('buildspecs/deploy.yml'),
      })
      .strict()
      .default({ build: 'buildspecs/build.yml', deploy: 'buildspecs/deploy.yml' }),
    notifications: z
      .object({
        slack: z
          .object({
            webhookSecretName: secretNameSchema('the webhook URL itself'),
            // Approve / Reject buttons (tasks/slack-decision): both or neither.
            signingSecretName: secretNameSchema('the signing secret itself').optional(),
            approvers: z
              .record(
                z.string().regex(SLACK_USER_ID, SLACK_USER_ID_RULE),
                z.string().trim().min(1, 'must name who this Slack user is (an IAM ARN, user name or e-mail)').max(256),
              )
              .optional(),
            teamId: z
              .string()
              .regex(
                /^[TE][A-Z0-9]{2,20}$/,
                'must be a Slack workspace id: T (or E for an organization) and uppercase letters and digits',
              )
              .optional(),
          })
          .strict()
          .refine((slack) => (slack.signingSecretName === undefined) === (slack.approvers === undefined), {
            message:
              'signingSecretName and approvers go together: the Approve / Reject buttons need the signing secret to check requests and the approvers map to know who clicked',
          })
          .optional(),
      })
      .strict()
      .default({}),
  })
  .strict()
  .superRefine((config, ctx) => {
    const paths = new Map<string, string>();
    for (const [name, source] of Object.entries(config.sources)) {
      const other = paths.get(source.path);
      if (other) {
        ctx.addIssue({
          code: 'custom',
          path: ['sources', name, 'path'],
          message: `"${source.path}" is already used by source "${other}"; give each source its own folder`,
        });
      }
      paths.set(source.path, name);
      checkCloneUrl(name, source, ctx);
      checkCredentialsSecret(name, source, ctx);
      checkConnection(name, source, ctx);
    }
    for (const [name, environment] of Object.entries(config.environments))
      checkTriggers(name, environment, config, ctx);
  });

/**
 * A trigger that could never start a deployment that ValidateInput accepts is a mistake made
 * quietly: every push would be refused. Refused here instead: an unknown source, a branch pattern
 * that no branch the environment allows matches, a pattern its exclude list covers, or another
 * source whose default branch (what a push deploys it at) the environment does not allow.
 */
function checkTriggers(
  environmentName: string,
  environment: z.infer<typeof environmentSchema>,
  config: { sources: Record<string, { defaultBranch: string }> },
  ctx: z.RefinementCtx,
): void {
  const policy = environment.branches;
  environment.triggers.forEach((trigger, t) => {
    const at = ['environments', environmentName, 'triggers', t];
    if (!Object.hasOwn(config.sources, trigger.source)) {
      ctx.addIssue({
        code: 'custom',
        path: [...at, 'source'],
        message: `is not a configured source; configured sources: ${Object.keys(config.sources).join(', ')}`,
      });
      return;
    }
    trigger.branches.forEach((pattern, b) => {
      if (!policy.some((allowed) => patternsOverlap(pattern, allowed))) {
        ctx.addIssue({
          code: 'custom',
          path: [...at, 'branches', b],
          message: `can never pass the branch policy of ${environmentName} (branches: ${policy.join(', ')}): no branch matches both; change the pattern or the policy`,
        });
      } else if (trigger.exclude.some((excluded) => branchMatches(excluded, pattern))) {
        ctx.addIssue({
          code: 'custom',
          path: [...at, 'branches', b],
          message: `is excluded by the trigger's own exclude list (${trigger.exclude.join(', ')}): it can never start a deployment`,
        });
      }
    });
    for (const [other, { defaultBranch }] of Object.entries(config.sources)) {
      if (other === trigger.source || policy.some((allowed) => branchMatches(allowed, defaultBranch))) continue;
      ctx.addIssue({
        code: 'custom',
        path: [...at, 'source'],
        message: `a push deploys source "${other}" at its default branch "${defaultBranch}", which the branch policy of ${environmentName} (${policy.join(', ')}) refuses: every triggered deployment would fail`,
      });
    }
  });
}

/**
 * CodeBuild clones every provider from its HTTPS clone URL (ProjectSource `location`), and
 * ResolveSource reads branches over HTTPS: an SSH (`git@host:org/repo`, `ssh://`) or `http://`
 * address passes everything else here and fails only in the fetch build on AWS.
 */
function checkCloneUrl(name: string, source: z.infer<typeof sourceSchema>, ctx: z.RefinementCtx): void {
  const { repository } = source;
  if (source.type === 'LOCAL_GIT' || isLocalRepository(repository) || /^(https|file):\/\//i.test(repository)) return;
  // The value is not repeated: an address with a user part may hold a password.
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(repository)?.[1]?.toLowerCase();
  const kind = scheme === undefined || scheme === 'ssh' ? 'an SSH address' : `a ${scheme}:// address`;
  ctx.addIssue({
    code: 'custom',
    path: ['sources', name, 'repository'],
    message: `is ${kind}, which CodeBuild cannot fetch: it clones GitHub, GitLab, Bitbucket and CodeCommit repositories over HTTPS only; give the repository's https:// clone URL (e.g. https://github.com/acme/${name}.git)`,
  });
}

/** credentialsSecret lets ResolveSource read a private repository over HTTPS: other sources cannot use it. */
function checkCredentialsSecret(name: string, source: z.infer<typeof sourceSchema>, ctx: z.RefinementCtx): void {
  if (source.credentialsSecret === undefined) return;
  let type: SourceType;
  try {
    type = sourceTypeOf(source);
  } catch {
    return; // reported where the source type is needed
  }
  if (!HTTP_GIT_SOURCE_TYPES.has(type) || !/^https:\/\//.test(source.repository)) {
    ctx.addIssue({
      code: 'custom',
      path: ['sources', name, 'credentialsSecret'],
      message: `is for ${[...HTTP_GIT_SOURCE_TYPES].join(', ')} repositories with an https:// URL; source "${name}" is ${type} at ${source.repository}: remove it`,
    });
  }
}

/** CodeBuild reaches a CodeCommit repository with its role, and a local path not at all: a connection serves neither. */
function checkConnection(name: string, source: z.infer<typeof sourceSchema>, ctx: z.RefinementCtx): void {
  if (source.connectionArn === undefined) return;
  let type: SourceType;
  try {
    type = sourceTypeOf(source);
  } catch {
    return; // reported where the source type is needed
  }
  if (!HTTP_GIT_SOURCE_TYPES.has(type)) {
    ctx.addIssue({
      code: 'custom',
      path: ['sources', name, 'connectionArn'],
      message: `is for ${[...HTTP_GIT_SOURCE_TYPES].join(', ')} sources; source "${name}" is ${type}: remove it`,
    });
  }
}

/** Source types CodeBuild clones only through a CodeConnections connection: the account has no other credential for them. */
export const CONNECTION_ONLY_SOURCE_TYPES: ReadonlySet<SourceType> = new Set(['GITLAB', 'GITLAB_SELF_MANAGED']);

/**
 * Source types whose fetch builds take the source's own connection (StartBuild's SourceAuthOverride:
 * "applies only if the build project's source is BitBucket, GitHub, GitLab, or GitLab Self Managed").
 * GitHub Enterprise's connection can only be the account's credential for it: one per account.
 */
export const SOURCE_AUTH_OVERRIDE_TYPES: ReadonlySet<SourceType> = new Set([
  'GITHUB',
  'GITLAB',
  'GITLAB_SELF_MANAGED',
  'BITBUCKET',
]);

/** The connection a fetch build of `source` clones through (SourceAuthOverride), or null: the account's credential. */
export function sourceAuthConnectionArn(source: SourceConfig): string | null {
  return source.connectionArn !== undefined && SOURCE_AUTH_OVERRIDE_TYPES.has(sourceTypeOf(source))
    ? source.connectionArn
    : null;
}

/** Source types whose repositories speak git's smart HTTP protocol, readable with a token before the fetch. */
export const HTTP_GIT_SOURCE_TYPES: ReadonlySet<SourceType> = new Set([
  'GITHUB',
  'GITHUB_ENTERPRISE',
  'GITLAB',
  'GITLAB_SELF_MANAGED',
  'BITBUCKET',
]);

export type PipelineConfig = z.infer<typeof configSchema>;
export type SourceConfig = PipelineConfig['sources'][string];
export type EnvironmentConfig = PipelineConfig['environments'][string];
export type HookConfig = EnvironmentConfig['hooks'][number];
export type ApprovalConfig = EnvironmentConfig['approval'];

export const DEFAULT_CONFIG_PATH = 'stepdeploy.config.yml';

/** Formats a zod path the way people read it in the file: `environments.production.branches[0]`. */
export function formatPath(path: ReadonlyArray<PropertyKey>): string {
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : `${i === 0 ? '' : '.'}${String(p)}`)).join('');
}

function valueAt(root: unknown, path: ReadonlyArray<PropertyKey>): unknown {
  let v: unknown = root;
  for (const p of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<PropertyKey, unknown>)[p];
  }
  return v;
}

function describeValue(v: unknown): string {
  if (v === undefined) return 'nothing';
  const s = JSON.stringify(v);
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}

/** Validates an already-parsed config object. */
export function parseConfig(raw: unknown, source = 'config'): PipelineConfig {
  const result = configSchema.safeParse(raw);
  if (result.success) return result.data;
  const lines = result.error.issues.map((issue) => {
    const where = formatPath(issue.path) || '(top level)';
    if (issue.code === 'invalid_key') {
      return `  ${where}: the name must be ${issue.issues.map((i) => i.message).join('; ')} (got ${JSON.stringify(String(issue.path.at(-1)))})`;
    }
    const got =
      issue.code === 'unrecognized_keys'
        ? `unknown key(s) ${issue.keys.map((k) => `"${k}"`).join(', ')}`
        : mayBeCredential(issue.path, valueAt(raw, issue.path))
          ? 'value not shown: it may be a credential'
          : `got ${describeValue(valueAt(raw, issue.path))}`;
    return `  ${where}: ${issue.message} (${got})`;
  });
  throw new ConfigError(`${source} is invalid:\n${lines.join('\n')}`);
}

/** Reads and validates a config file (YAML; JSON is valid YAML too). */
export function loadConfig(path: string = DEFAULT_CONFIG_PATH): PipelineConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(
      `cannot read the config file ${path}: ${(err as Error).message}. Pass --config <path> or create ${DEFAULT_CONFIG_PATH}`,
      { cause: err },
    );
  }
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (err) {
    throw new ConfigError(`${path} is not valid YAML: ${(err as Error).message}`, { cause: err });
  }
  return parseConfig(raw, path);
}

const URL_TYPES: ReadonlyArray<[RegExp, SourceType]> = [
  [/^https:\/\/github\.com\//, 'GITHUB'],
  [/^https:\/\/gitlab\.com\//, 'GITLAB'],
  [/^https:\/\/bitbucket\.org\//, 'BITBUCKET'],
  [/^https:\/\/git-codecommit\.[a-z0-9-]+\.amazonaws\.com\//, 'CODECOMMIT'],
  [/^file:\/\//, 'LOCAL_GIT'],
];

/** The CodeBuild source type of a source: declared, inferred from a well-known host, or a local path. */
export function sourceTypeOf(source: SourceConfig): SourceType {
  if (source.type) return source.type;
  for (const [pattern, type] of URL_TYPES) if (pattern.test(source.repository)) return type;
  if (isLocalRepository(source.repository)) return 'LOCAL_GIT';
  throw new ConfigError(
    `cannot tell the source type of repository ${JSON.stringify(source.repository)}: set "type" to one of ${SOURCE_TYPES.join(', ')}`,
  );
}

export function isLocalRepository(repository: string): boolean {
  return !/^[a-z][a-z0-9+.-]*:\/\//i.test(repository) && !/^[\w.-]+@[\w.-]+:/.test(repository);
}

/** A local repository path is relative to the config file's folder. */
export function resolveRepository(source: SourceConfig, configPath: string): string {
  if (!isLocalRepository(source.repository) || isAbsolute(source.repository)) return source.repository;
  return resolve(dirname(resolve(configPath)), source.repository);
}
