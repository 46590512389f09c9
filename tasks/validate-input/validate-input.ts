import { branchMatches, branchNameViolation } from '../../shared/branch-name';
import { COMMIT_ID, COMMIT_ID_RULE } from '../../shared/commit-id';
import { resolveRepository, sourceAuthConnectionArn, sourceTypeOf, type PipelineConfig } from '../../shared/config';
import type { ExecutionInput, Plan, PlannedSource } from '../../shared/contracts';
import { executionNameViolation, suggestExecutionName } from '../../shared/execution-name';
import { InvalidInputError } from './errors';

/**
 * The execution input contract (DESIGN.md "Execution input"). Every problem is reported at once
 * as `<field>: <value> <rule>`, so that a person fixes the whole input in one go, and nothing here
 * runs a shell or git: the checks are what makes the input safe to hand to them later.
 */

/** Step Functions refuses an execution input over 256 KiB (its UTF-8 JSON). */
export const MAX_INPUT_BYTES = 256 * 1024;
export const REQUESTED_BY_MAX_LENGTH = 200;
const INPUT_KEYS = ['environment', 'branches', 'commits', 'requestedBy', 'redeploy'];

const SHOWN_MAX = 100;

type InputObject = Record<string, unknown>;

/** Returns every problem with the input (empty when it is valid); the CLI checks before it starts. */
export function checkExecutionInput(input: unknown, config: PipelineConfig): string[] {
  const size = Buffer.byteLength(JSON.stringify(input) ?? '', 'utf8');
  // Checked first: listing the problems of a huge input would only make a huge message.
  if (size > MAX_INPUT_BYTES) {
    return [`(input): ${size} bytes is over the Step Functions input limit of ${MAX_INPUT_BYTES} bytes`];
  }
  if (!isObject(input)) {
    return [
      problem('(input)', input, 'must be a JSON object such as {"environment":"acceptance","branches":{"app":"main"}}'),
    ];
  }
  return [
    ...unknownKeyProblems(input),
    ...environmentProblems(input.environment, config),
    ...branchProblems(input, config),
    ...commitProblems(input.commits, config),
    ...requestedByProblems(input.requestedBy),
    ...redeployProblems(input),
  ];
}

/** ValidateInput: checks the input and resolves it into the plan the rest of the execution follows. */
export function validateInput(input: unknown, execution: string, config: PipelineConfig, configPath: string): Plan {
  const problems = [...executionNameProblems(execution), ...checkExecutionInput(input, config)];
  if (problems.length > 0) throw new InvalidInputError(problems);
  return planFor(input as ExecutionInput, execution, config, configPath);
}

function planFor(input: ExecutionInput, execution: string, config: PipelineConfig, configPath: string): Plan {
  const environment = config.environments[input.environment]!;
  const sources = Object.entries(config.sources).map(
    ([name, source]): PlannedSource => ({
      name,
      branch: ownString(input.branches, name) ?? source.defaultBranch,
      repository: resolveRepository(source, configPath),
      sourceType: sourceTypeOf(source),
      path: source.path,
      credentialsSecret: source.credentialsSecret ?? null,
      commit: ownString(input.commits, name) ?? null,
      connectionArn: sourceAuthConnectionArn(source),
    }),
  );
  return {
    environment: input.environment,
    execution,
    requestedBy: input.requestedBy ?? null,
    account: environment.account,
    region: environment.region,
    deployRoleArn: environment.deployRoleArn,
    variables: environment.variables,
    sources,
    hooks: environment.hooks,
    approval: {
      required: environment.approval.required,
      // Step Functions takes whole seconds; the config allows fractions of a minute (tests).
      timeoutSeconds: Math.max(1, Math.round(environment.approval.timeoutMinutes * 60)),
      allowSelfApproval: environment.approval.allowSelfApproval,
    },
    decision: null,
    redeployOf: input.redeploy ?? null,
  };
}

/**
 * Step Functions took the name already, so this execution cannot be renamed: the fix is a new
 * execution. Caught here, before any build, rather than in CombineConfigAndCode after the fetches.
 */
function executionNameProblems(execution: string): string[] {
  const rule = executionNameViolation(execution);
  if (rule === undefined) return [];
  return [
    problem(
      '(execution name)',
      execution,
      `${rule}; start a new execution with such a name, e.g. ${suggestExecutionName(execution)}`,
    ),
  ];
}

function unknownKeyProblems(input: InputObject): string[] {
  return Object.keys(input)
    .filter((key) => !INPUT_KEYS.includes(key))
    .map((key) =>
      problem(fieldPath('', key), input[key], `is not part of the input; allowed keys: ${INPUT_KEYS.join(', ')}`),
    );
}

function environmentProblems(environment: unknown, config: PipelineConfig): string[] {
  if (typeof environment === 'string' && Object.hasOwn(config.environments, environment)) return [];
  const known = Object.keys(config.environments).join(', ');
  const rule = environment === undefined ? 'is required' : 'is not a configured environment';
  return [problem('environment', environment, `${rule}; one of: ${known}`)];
}

function branchProblems(input: InputObject, config: PipelineConfig): string[] {
  const { branches } = input;
  if (branches !== undefined && !isObject(branches)) {
    return [problem('branches', branches, 'must be an object of source name to branch name, e.g. {"app":"main"}')];
  }
  const given = branches ?? {};
  const policy = policyOf(input.environment, config);
  const explicit = Object.entries(given).flatMap(([source, branch]) =>
    givenBranchProblems(source, branch, config, policy),
  );
  // A redeploy deploys the branches of the execution it names, checked when that one started.
  const defaults = Object.entries(config.sources)
    .filter(([source]) => input.redeploy === undefined && !Object.hasOwn(given, source))
    .flatMap(([source, { defaultBranch }]) => defaultBranchProblems(source, defaultBranch, policy));
  return [...explicit, ...defaults];
}

interface BranchPolicy {
  readonly environment: string;
  readonly patterns: ReadonlyArray<string>;
}

/** The environment's allowed branch patterns; none when the environment is itself wrong. */
function policyOf(environment: unknown, config: PipelineConfig): BranchPolicy | undefined {
  if (typeof environment !== 'string' || !Object.hasOwn(config.environments, environment)) return undefined;
  return { environment, patterns: config.environments[environment]!.branches };
}

function givenBranchProblems(source: string, branch: unknown, config: PipelineConfig, policy?: BranchPolicy): string[] {
  const field = fieldPath('branches', source);
  if (!Object.hasOwn(config.sources, source)) {
    return [
      problem(
        field,
        branch,
        `is for an unknown source "${source}"; configured sources: ${Object.keys(config.sources).join(', ')}`,
      ),
    ];
  }
  if (typeof branch !== 'string') return [problem(field, branch, 'must be a string (a branch name)')];
  const rule = branchRuleBroken(branch, policy);
  return rule === undefined ? [] : [problem(field, branch, rule)];
}

/**
 * An omitted source deploys its default branch, which must pass the same rules: otherwise leaving
 * a source out would deploy `develop` to an environment that only takes `main`.
 */
function defaultBranchProblems(source: string, branch: string, policy?: BranchPolicy): string[] {
  const rule = branchRuleBroken(branch, policy);
  if (rule === undefined) return [];
  const field = fieldPath('branches', source);
  return [problem(field, branch, `(the default branch of source "${source}") ${rule}; name a branch for ${field}`)];
}

function branchRuleBroken(branch: string, policy?: BranchPolicy): string | undefined {
  const violation = branchNameViolation(branch);
  // A name that is not a branch cannot be matched against patterns meaningfully: "*" would let it in.
  if (violation !== undefined) return violation;
  if (policy === undefined || policy.patterns.some((pattern) => branchMatches(pattern, branch))) return undefined;
  return `is not allowed in ${policy.environment}; allowed: ${policy.patterns.join(', ')}`;
}

/**
 * `commits` pins a source to the commit a push brought (a trigger's deployment): ResolveSource then
 * deploys that commit only while it is still its branch's head, so the branch policy holds for it.
 */
function commitProblems(commits: unknown, config: PipelineConfig): string[] {
  if (commits === undefined) return [];
  if (!isObject(commits)) {
    return [
      problem('commits', commits, 'must be an object of source name to full commit id, e.g. {"app":"<40 hex digits>"}'),
    ];
  }
  return Object.entries(commits).flatMap(([source, commit]) => {
    const field = fieldPath('commits', source);
    if (!Object.hasOwn(config.sources, source)) {
      return [
        problem(
          field,
          commit,
          `is for an unknown source "${source}"; configured sources: ${Object.keys(config.sources).join(', ')}`,
        ),
      ];
    }
    if (typeof commit === 'string' && COMMIT_ID.test(commit)) return [];
    return [problem(field, commit, COMMIT_ID_RULE)];
  });
}

// Control, format (e.g. bidirectional overrides), private-use, surrogate and line/paragraph separators:
// requestedBy is shown in the console, Slack and the terminal, where these hide or reorder text.
const UNPRINTABLE = /[\p{Cc}\p{Cf}\p{Co}\p{Cs}\p{Zl}\p{Zp}]/u;

function requestedByProblems(requestedBy: unknown): string[] {
  if (requestedBy === undefined) return [];
  if (typeof requestedBy !== 'string')
    return [problem('requestedBy', requestedBy, 'must be a string (short free text)')];
  const length = [...requestedBy].length;
  if (length === 0 || length > REQUESTED_BY_MAX_LENGTH) {
    return [problem('requestedBy', requestedBy, `must be 1 to ${REQUESTED_BY_MAX_LENGTH} characters (got ${length})`)];
  }
  const bad = UNPRINTABLE.exec(requestedBy);
  if (bad === null) return [];
  return [problem('requestedBy', requestedBy, `must be printable text; contains ${codePoint(bad[0])}`)];
}

/** A redeploy names one earlier execution and deploys its branches: naming branches too would say two things. */
function redeployProblems(input: InputObject): string[] {
  if (input.redeploy === undefined) return [];
  if (typeof input.redeploy !== 'string' || executionNameViolation(input.redeploy) !== undefined) {
    return [
      problem(
        'redeploy',
        input.redeploy,
        'must be the name of an earlier execution of this environment (1-80 letters, digits, "_" or "-")',
      ),
    ];
  }
  // A redeploy deploys the build of that execution, with its branches and commits.
  return (['branches', 'commits'] as const)
    .filter((field) => input[field] !== undefined)
    .map((field) =>
      problem(
        field,
        input[field],
        `cannot be given with redeploy: a redeploy deploys the build of that execution, with its ${field}`,
      ),
    );
}

function problem(field: string, value: unknown, rule: string): string {
  return `${field}: ${show(value)} ${rule}`;
}

/**
 * The value as JSON, with everything outside printable ASCII escaped, so that a look-alike
 * (Cyrillic "а"), an invisible or a control character is visible in the message; long values are cut.
 */
function show(value: unknown): string {
  if (value === undefined) return '(missing)';
  const json =
    typeof value === 'string' && value.length > SHOWN_MAX
      ? `${JSON.stringify(value.slice(0, SHOWN_MAX))}... (${value.length} characters)`
      : cut(JSON.stringify(value));
  return json.replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

function cut(json: string): string {
  return json.length > SHOWN_MAX ? `${json.slice(0, SHOWN_MAX)}...` : json;
}

/** `branches.app`, or `branches["odd key"]` when the key would not read as one name. */
function fieldPath(parent: string, key: string): string {
  if (/^[A-Za-z_][A-Za-z0-9_-]*$/.test(key)) return parent === '' ? key : `${parent}.${key}`;
  return `${parent}[${show(key)}]`;
}

function codePoint(c: string): string {
  return `U+${c.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}`;
}

function isObject(value: unknown): value is InputObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Own properties only: a source named "constructor" must not read Object.prototype.constructor. */
function ownString(record: Readonly<Record<string, string>> | undefined, key: string): string | undefined {
  return record !== undefined && Object.hasOwn(record, key) ? record[key] : undefined;
}
