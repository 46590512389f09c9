import { userInfo } from 'node:os';
import { dirname } from 'node:path';
import { gitUser } from '../approval-url';
import { StartExecutionCommand } from '@aws-sdk/client-sfn';
import { loadConfig, type PipelineConfig } from '../../shared/config';
import { checkExecutionInput } from '../../tasks/validate-input/validate-input';
import { usageError } from '../errors';
import { executionName } from '../execution-name';
import { checkExecutionName } from '../execution-ref';
import { ExitCode } from '../exit-codes';
import { eprintln, println, type Io } from '../io';
import type { Target } from '../target';
import { printSummary } from './summary';
import { watchExecution } from './watch';

export interface StartOptions {
  readonly env?: string;
  readonly branch?: ReadonlyArray<string>;
  /** `SOURCE=COMMIT`: deploy that commit, which must still be its branch's head (a CI job's pushed commit). */
  readonly commit?: ReadonlyArray<string>;
  readonly name?: string;
  readonly wait?: boolean;
  readonly json?: boolean;
  readonly requestedBy?: string;
  readonly interval?: number;
  /** Leave out the in-process runtime's build logs. */
  readonly quiet?: boolean;
}

export interface StartInput {
  readonly environment: string;
  readonly branches?: Record<string, string>;
  readonly commits?: Record<string, string>;
  readonly requestedBy?: string;
  /** `rollback`: the earlier execution whose build deploys again. */
  readonly redeploy?: string;
}

/** `--branch app=develop config=main` → `{ app: 'develop', config: 'main' }`. */
export function parseBranches(pairs: ReadonlyArray<string>): Record<string, string> {
  return parsePairs('--branch', 'BRANCH', 'app=develop', pairs);
}

/** `--commit app=<full id>` → `{ app: '<full id>' }`; the ids are checked with the input's rules. */
export function parseCommits(pairs: ReadonlyArray<string>): Record<string, string> {
  return parsePairs('--commit', 'COMMIT', 'app=$GITHUB_SHA', pairs);
}

function parsePairs(
  flag: string,
  value: string,
  example: string,
  pairs: ReadonlyArray<string>,
): Record<string, string> {
  const parsed: Record<string, string> = {};
  for (const pair of pairs) {
    const at = pair.indexOf('=');
    if (at <= 0 || at === pair.length - 1)
      throw usageError(`${flag} takes SOURCE=${value}, got ${JSON.stringify(pair)} (e.g. ${flag} ${example})`);
    const source = pair.slice(0, at);
    if (Object.hasOwn(parsed, source))
      throw usageError(
        `${flag} names source "${source}" twice (${parsed[source]} and ${pair.slice(at + 1)}): give one ${value.toLowerCase()} per source`,
      );
    parsed[source] = pair.slice(at + 1);
  }
  return parsed;
}

/**
 * Who asks: the git user (e-mail), which is the name `approve` decides under locally and, with
 * IAM Identity Center, often the role session name on AWS, so that allowSelfApproval: false can
 * recognise the requester; else the OS user.
 */
function defaultRequestedBy(cwd: string): string | undefined {
  try {
    return gitUser(cwd);
  } catch {
    // no git user: the OS user below
  }
  try {
    return userInfo().username || undefined;
  } catch {
    return undefined;
  }
}

/**
 * Without --env: on the local runtime the example's environment (acceptance, or the config's
 * first), as `npm start` deploys it; on AWS nothing is guessed, the environment must be named.
 */
function environmentOf(options: StartOptions, config: PipelineConfig, local: boolean): string {
  if (options.env !== undefined) return options.env;
  const environments = Object.keys(config.environments);
  if (local && environments.length > 0) return environments.includes('acceptance') ? 'acceptance' : environments[0]!;
  throw usageError(
    `start needs --env <environment>, one of: ${environments.join(', ') || '(none in the config)'} (only --local picks acceptance by default)`,
  );
}

/**
 * The input, checked with the same rules and messages as the ValidateInput state before anything
 * is started, so a bad branch or policy costs no execution (and no 90 days of history).
 */
export function plannedInput(options: StartOptions, configPath: string, local = false): StartInput {
  const config = loadConfig(configPath);
  const environment = environmentOf(options, config, local);
  const requestedBy = options.requestedBy ?? defaultRequestedBy(dirname(configPath));
  const input: StartInput = {
    environment,
    branches: parseBranches(options.branch ?? []),
    ...(options.commit !== undefined ? { commits: parseCommits(options.commit) } : {}),
    ...(requestedBy ? { requestedBy } : {}),
  };
  const problems = checkExecutionInput(input, config);
  if (problems.length > 0) {
    const policy = problems.some((p) => p.includes(` is not allowed in ${environment};`))
      ? `\n(the branch policy is environments.${environment}.branches in ${configPath})`
      : '';
    throw usageError(`invalid input, nothing was started:\n  ${problems.join('\n  ')}${policy}`);
  }
  return input;
}

/** `rollback`'s input, checked with the ValidateInput rules before anything is started. */
export function plannedRedeployInput(
  options: { readonly env: string; readonly requestedBy?: string },
  redeploy: string,
  configPath: string,
): StartInput {
  const config = loadConfig(configPath);
  const requestedBy = options.requestedBy ?? defaultRequestedBy(dirname(configPath));
  const input: StartInput = { environment: options.env, redeploy, ...(requestedBy ? { requestedBy } : {}) };
  const problems = checkExecutionInput(input, config);
  if (problems.length > 0) throw usageError(`invalid input, nothing was started:\n  ${problems.join('\n  ')}`);
  return input;
}

export async function runStart(
  target: Target,
  input: StartInput,
  options: StartOptions,
  io: Io,
  targetFlags: string,
): Promise<ExitCode> {
  const name = options.name !== undefined ? checkExecutionName(options.name) : executionName(input.environment);
  const stateMachineArn = await target.stateMachineArn();
  const started = await target.sfn.send(
    new StartExecutionCommand({ stateMachineArn, name, input: JSON.stringify(input) }),
  );
  const executionArn = started.executionArn!;
  const consoleUrl = target.consoleUrl(executionArn);
  if (options.json) {
    println(
      io,
      JSON.stringify({
        executionArn,
        name,
        startDate: started.startDate,
        input,
        ...(consoleUrl ? { consoleUrl } : {}),
      }),
    );
  } else {
    println(io, `started ${name} on ${target.description}`);
    println(io, `  ${executionArn}`);
  }
  let wait = options.wait === true;
  if (!wait && target.kind === 'in-process') {
    // The runtime lives in this process: returning now would stop the execution with it.
    eprintln(
      io,
      'the local runtime runs in this process, so start waits for the end (to start without waiting, run `stepdeploy local serve` in another terminal)',
    );
    wait = true;
  }
  if (!wait) {
    if (!options.json) {
      if (consoleUrl) println(io, `  console: ${consoleUrl}`);
      println(io, `follow it: stepdeploy watch ${name}${targetFlags}`);
    }
    return ExitCode.Ok;
  }
  const code = await watchExecution(target, executionArn, io, {
    json: options.json,
    targetFlags,
    interval: options.interval,
  });
  if (!options.json && code !== ExitCode.Interrupted) await printSummary(target, executionArn, io);
  return code;
}
