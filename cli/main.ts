import { resolve } from 'node:path';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { DEFAULT_CONFIG_PATH } from '../shared/config';
import { runConsole } from './commands/console';
import { type ExecutionsOptions, runExecutions, STATUS_CHOICES } from './commands/executions';
import { runHistory } from './commands/history';
import { INIT_FLAGS_EXAMPLE, type InitOptions, runInit, type Terminal } from './commands/init';
import { type LogsOptions, runLogs } from './commands/logs';
import { type RedriveOptions, runRedrive, runStop } from './commands/redrive';
import { plannedInput, runStart, type StartOptions } from './commands/start';
import { runDecision, type DecisionOptions } from './commands/approve';
import { runRollback, type RollbackOptions } from './commands/rollback';
import { HISTORY_ENTRIES, runStatus, type StatusOptions } from './commands/status';
import { watchExecution } from './commands/watch';
import { APPROVAL_URL_ENV } from './approval-url';
import { CliError, describeServiceError } from './errors';
import { executionArnFor } from './execution-ref';
import { EXIT_CODES_HELP, ExitCode } from './exit-codes';
import { eprintln, processIo, type Io } from './io';
import {
  ARTIFACTS_BUCKET_ENV,
  type ResolveHooks,
  resolveTarget,
  STATE_MACHINE_ARN_ENV,
  type Target,
  type TargetOptions,
} from './target';

/**
 * `stepdeploy`: argument parsing and printing only; the work lives in the command modules.
 * makeProgram() builds the command tree so that tests can drive it (exitOverride, configureOutput);
 * runCli() parses, runs, and turns every error into one line and an exit code.
 */

export interface ProgramContext {
  readonly io: Io;
  /** Where `init` asks its questions. @default process.stdin and process.stdout */
  readonly terminal?: Terminal;
  /** Set by the command that ran. */
  exitCode: ExitCode;
}

interface GlobalOptions extends TargetOptions {
  readonly debug?: boolean;
}

function port(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535)
    throw new InvalidArgumentError(`must be a port number 0-65535, got ${JSON.stringify(value)}`);
  return n;
}

function limit(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 1000)
    throw new InvalidArgumentError(`must be a whole number 1-1000, got ${JSON.stringify(value)}`);
  return n;
}

function seconds(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0.05 || n > 600)
    throw new InvalidArgumentError(`must be seconds between 0.05 and 600, got ${JSON.stringify(value)}`);
  return n;
}

/** A repeatable option's values, in the order given. */
function collect(value: string, previous: ReadonlyArray<string>): string[] {
  return [...previous, value];
}

/** Choices given in any case (`--status failed`): commander checks the upper-cased value. */
function anyCase(option: Option): Option {
  const check = option.parseArg!;
  return option.argParser((value: string, previous: unknown) => check(value.toUpperCase(), previous));
}

const INTERVAL_HELP = 'seconds between refreshes (default 2 on AWS, 0.3 locally)';
const QUIET_HELP = 'do not stream the build logs of a local runtime running in this process';

/** start and redrive show the build logs of a runtime in this process (which they wait for), as `npm start` does. */
function showsRuntimeOutput(options: { readonly json?: boolean; readonly quiet?: boolean }): boolean {
  return options.json !== true && options.quiet !== true;
}

function help(examples: string): string {
  return `\nExamples:\n${examples
    .trim()
    .split('\n')
    .map((l) => `  $ ${l.trim()}`)
    .join('\n')}\n\n${EXIT_CODES_HELP}`;
}

const TARGETS_HELP = `
Targets: AWS by default (region and credentials from the default chain; the state machine from
--state-machine-arn or ${STATE_MACHINE_ARN_ENV}); --local for the local runtime (a running
\`stepdeploy local serve\` found through .stepdeploy/endpoints/<pipeline>.json beside the config, otherwise
started in this process for the duration of the command); --endpoint-url for any endpoint that
speaks the Step Functions, CodeBuild and S3 APIs.`;

/** The flags that point at the same target, to repeat in hints (`stepdeploy redrive X --local`). */
function targetFlags(globals: GlobalOptions): string {
  const flags: string[] = [];
  if (globals.local) flags.push('--local');
  if (globals.endpointUrl) flags.push(`--endpoint-url ${globals.endpointUrl}`);
  if (globals.stateMachineArn) flags.push(`--state-machine-arn ${globals.stateMachineArn}`);
  if (globals.config !== DEFAULT_CONFIG_PATH) flags.push(`--config ${globals.config}`);
  return flags.map((f) => ` ${f}`).join('');
}

export function makeProgram(context: ProgramContext = { io: processIo(), exitCode: ExitCode.Ok }): Command {
  const { io } = context;
  const program = new Command('stepdeploy')
    .description(
      'Deploy with an AWS Step Functions pipeline: branches as input, a live graph, redrive of the failed step.',
    )
    // Before the subcommands: they inherit these settings.
    .exitOverride()
    .configureHelp({ showGlobalOptions: true })
    .configureOutput({
      writeOut: io.out,
      writeErr: io.err,
      // Commander's own errors (unknown option, conflicting options, a bad value) read as ours: one line.
      outputError: (text, write) => write(`stepdeploy: ${text.trimEnd().replace(/^error: /, '')} (see --help)\n`),
    })
    .option('--config <path>', 'pipeline config file', DEFAULT_CONFIG_PATH)
    .addOption(
      new Option(
        '--local',
        'use the local runtime (a running `stepdeploy local serve`, or one started in this process)',
      ).conflicts('endpointUrl'),
    )
    .option(
      '--endpoint-url <url>',
      'send Step Functions, CodeBuild and S3 calls to this endpoint (e.g. a `local serve` on another port)',
    )
    .option('--state-machine-arn <arn>', `the pipeline's state machine on AWS (or ${STATE_MACHINE_ARN_ENV})`)
    .option('--region <region>', 'AWS region (default: the AWS SDK default chain, e.g. AWS_REGION or the profile)')
    .option('--bucket <name>', `artifacts bucket, for status on AWS (or ${ARTIFACTS_BUCKET_ENV})`)
    .option('--debug', 'on errors, print the stack and the service details')
    .addHelpText('after', `${TARGETS_HELP}\n\n${EXIT_CODES_HELP}`);

  /** Runs `fn` with a resolved target, which is closed afterwards (an in-process runtime stops with it). */
  const withTarget = async (
    command: Command,
    fn: (target: Target, globals: GlobalOptions) => Promise<ExitCode>,
    prepare?: (globals: GlobalOptions) => void,
    hooks: Omit<ResolveHooks, 'note'> = {},
  ): Promise<void> => {
    const globals = command.optsWithGlobals<GlobalOptions>();
    prepare?.(globals);
    const target = await resolveTarget(globals, { ...hooks, note: (line) => eprintln(io, line) });
    try {
      context.exitCode = await fn(target, globals);
    } catch (err) {
      throw describeServiceError(err, { endpoint: globals.endpointUrl ?? target.description });
    } finally {
      await target.close();
    }
  };
  const arnOf = async (target: Target, execution: string): Promise<string> =>
    executionArnFor(await target.stateMachineArn(), execution);

  program
    .command('start')
    .description('start a deployment: this environment, these branches (validated before anything starts)')
    .option(
      '--env <environment>',
      'environment to deploy, from the config (required on AWS; with --local the default is acceptance, or the first)',
    )
    .option(
      '--branch <SOURCE=BRANCH...>',
      'branch per source, e.g. app=develop (sources left out take their default branch)',
    )
    .option(
      '--commit <SOURCE=COMMIT...>',
      "full commit id per source, e.g. app=$GITHUB_SHA: deploys that commit, and fails (SourceBranchMovedError) if it is no longer its branch's head",
    )
    .option(
      '--name <name>',
      'execution name, 1-80 of [A-Za-z0-9_-] (default <env>-<UTC time>-<random>); the idempotency key',
    )
    .option('--requested-by <text>', 'who or why, kept in the execution input (default: your user name)')
    .option('--wait', 'follow the execution like `watch` and exit non-zero if it fails')
    .option('--json', 'print the started execution as JSON (with --wait, then one history event per line)')
    .option('--interval <seconds>', INTERVAL_HELP, seconds)
    .option('--quiet', QUIET_HELP)
    .addHelpText(
      'after',
      help(`
        stepdeploy start --local --wait
        stepdeploy start --local --env acceptance --branch app=develop --wait
        stepdeploy start --env acceptance --branch app=feature/cloudformationchange config=develop --state-machine-arn arn:aws:states:eu-west-1:111111111111:stateMachine:shop
        stepdeploy start --env production --branch app=main --name production-release-42 --requested-by "release 42" --wait
        stepdeploy start --env acceptance --branch "app=$BRANCH" --commit "app=$GITHUB_SHA" --wait`),
    )
    .action(async (options: StartOptions, command: Command) => {
      let input: ReturnType<typeof plannedInput> | undefined;
      await withTarget(
        command,
        (target, globals) => runStart(target, input!, options, io, targetFlags(globals)),
        // Validated before the target is resolved: invalid input starts no runtime and calls nothing.
        (globals) => {
          input = plannedInput(options, resolve(globals.config), globals.local === true);
        },
        { runtimeOutput: showsRuntimeOutput(options) },
      );
    });

  program
    .command('watch')
    .argument('<execution>', 'execution name or ARN')
    .description(
      'follow an execution live: the graph from the deployed definition, each state with status and duration, the running build',
    )
    .option('--json', 'one history event per line (and BuildProgress lines for running builds)')
    .option('--interval <seconds>', INTERVAL_HELP, seconds)
    .addHelpText(
      'after',
      help(`
      stepdeploy watch acceptance-20261129T031500-k3x9qa --local
      stepdeploy watch arn:aws:states:eu-west-1:111111111111:execution:shop:acceptance-20261129T031500-k3x9qa
      stepdeploy watch acceptance-20261129T031500-k3x9qa --local --json | jq -c 'select(.type == "TaskFailed")'`),
    )
    .action(async (execution: string, options: { json?: boolean; interval?: number }, command: Command) => {
      await withTarget(command, async (target, globals) =>
        watchExecution(target, await arnOf(target, execution), io, { ...options, targetFlags: targetFlags(globals) }),
      );
    });

  program
    .command('logs')
    .argument('<execution>', 'execution name or ARN')
    .description(
      'the build logs of the CodeBuild steps of an execution, read from CloudWatch Logs (locally: from the local endpoint)',
    )
    .option('--state <name>', 'only this state (e.g. BuildTemplates, Deploy, FetchSources)')
    .option('--follow', 'go on printing new builds and lines until the execution and its builds end')
    .option('--json', 'the builds as JSON with their log text (with --follow: one JSON line per log line)')
    .option('--interval <seconds>', INTERVAL_HELP, seconds)
    .addHelpText(
      'after',
      help(`
      stepdeploy logs acceptance-20261129T031500-k3x9qa --local --state BuildTemplates
      stepdeploy logs acceptance-20261129T031500-k3x9qa --state Deploy --follow`),
    )
    .action(async (execution: string, options: Omit<LogsOptions, 'signal'>, command: Command) => {
      await withTarget(command, async (target) => {
        const interrupted = new AbortController();
        const onSignal = (): void => interrupted.abort();
        process.once('SIGINT', onSignal);
        try {
          const code = await runLogs(
            target,
            await arnOf(target, execution),
            { ...options, signal: interrupted.signal },
            io,
          );
          return interrupted.signal.aborted ? ExitCode.Interrupted : code;
        } finally {
          process.removeListener('SIGINT', onSignal);
        }
      });
    });

  program
    .command('redrive')
    .argument('<execution>', 'execution name or ARN (FAILED, TIMED_OUT or ABORTED)')
    .description('retry a failed execution from the state that failed; earlier states do not run again')
    .option('--wait', 'follow it like `watch` and exit non-zero if it fails again')
    .option('--json', 'print the redrive as JSON (with --wait, then one history event per line)')
    .option('--interval <seconds>', INTERVAL_HELP, seconds)
    .option('--quiet', QUIET_HELP)
    .addHelpText(
      'after',
      help(`
      stepdeploy redrive acceptance-20261129T031500-k3x9qa --local
      stepdeploy redrive acceptance-20261129T031500-k3x9qa --wait`),
    )
    .action(async (execution: string, options: RedriveOptions, command: Command) => {
      await withTarget(
        command,
        async (target, globals) =>
          runRedrive(target, await arnOf(target, execution), options, io, targetFlags(globals)),
        undefined,
        { runtimeOutput: showsRuntimeOutput(options) },
      );
    });

  program
    .command('stop')
    .argument('<execution>', 'execution name or ARN')
    .description('stop a running execution (its running build stops too); redrive continues it later')
    .option('--cause <text>', 'why, kept in the execution history')
    .option('--json', 'print the result as JSON')
    .addHelpText(
      'after',
      help(`
      stepdeploy stop acceptance-20261129T031500-k3x9qa --local
      stepdeploy stop acceptance-20261129T031500-k3x9qa --cause "wrong branch"`),
    )
    .action(async (execution: string, options: { cause?: string; json?: boolean }, command: Command) => {
      await withTarget(command, async (target) => runStop(target, await arnOf(target, execution), options, io));
    });

  program
    .command('executions')
    .description('list executions, newest first, with environment and branches')
    .option('--env <environment>', 'only this environment')
    .addOption(
      anyCase(
        new Option('--status <status>', 'only this status; WAITING: running and waiting for approval').choices(
          STATUS_CHOICES,
        ),
      ),
    )
    .option('--limit <n>', 'at most this many (1-1000)', limit, 20)
    .option('--json', 'as a JSON array')
    .addHelpText(
      'after',
      help(`
      stepdeploy executions --local
      stepdeploy executions --env production --status FAILED --limit 5
      stepdeploy executions --status waiting
      stepdeploy executions --local --json`),
    )
    .action(async (options: ExecutionsOptions, command: Command) => {
      await withTarget(command, (target) => runExecutions(target, options, io));
    });

  program
    .command('history')
    .argument('<execution>', 'execution name or ARN')
    .description("an execution's history events (GetExecutionHistory), one per line")
    .option('--json', 'the events as a JSON array')
    .addHelpText(
      'after',
      help(`
      stepdeploy history acceptance-20261129T031500-k3x9qa --local
      stepdeploy history acceptance-20261129T031500-k3x9qa --json`),
    )
    .action(async (execution: string, options: { json?: boolean }, command: Command) => {
      await withTarget(command, async (target) => runHistory(target, await arnOf(target, execution), options, io));
    });

  program
    .command('status')
    .description("what is deployed where: per environment, each source's branch and commit, when, by which execution")
    .option('--env <environment>', 'only this environment')
    .option(
      '--history',
      "each environment's deployments, newest first, with rollbacks (to the build of X) and approvals (who, comment)",
    )
    .option(
      '--limit <n>',
      `with --history: at most this many per environment (1-1000, default ${HISTORY_ENTRIES})`,
      limit,
    )
    .option('--json', 'as JSON')
    .addHelpText(
      'after',
      help(`
      stepdeploy status --local
      stepdeploy status --env production --history --local
      stepdeploy status --env production --bucket shop-artifacts-111111111111 --json`),
    )
    .action(async (options: StatusOptions, command: Command) => {
      await withTarget(command, (target, globals) => runStatus(target, resolve(globals.config), options, io));
    });

  program
    .command('rollback')
    .description(
      'deploy again the build of an earlier deployment of an environment (default: the one before the current): no fetch, no build; same lease, approval and hooks',
    )
    .requiredOption('--env <environment>', 'environment to roll back (from the config)')
    .option(
      '--to <execution>',
      'the earlier execution whose build to deploy (default: the deployment before the current one)',
    )
    .option('--name <name>', 'execution name, 1-80 of [A-Za-z0-9_-] (default <env>-<UTC time>-<random>)')
    .option('--requested-by <text>', 'who or why, kept in the execution input (default: your git e-mail)')
    .option('--wait', 'follow the execution like `watch` and exit non-zero if it fails')
    .option('--json', 'print the started execution as JSON')
    .option('--interval <seconds>', INTERVAL_HELP, seconds)
    .addHelpText(
      'after',
      help(`
        stepdeploy rollback --env production --wait
        stepdeploy rollback --env acceptance --to acceptance-20261129T031500-k3x9qa --local`),
    )
    .action(async (options: RollbackOptions, command: Command) => {
      await withTarget(command, (target, globals) =>
        runRollback(target, options, resolve(globals.config), io, targetFlags(globals)),
      );
    });

  for (const action of ['approve', 'reject'] as const) {
    const command = program
      .command(action)
      .argument('<execution>', 'execution name or ARN, waiting at AwaitApproval')
      .description(
        action === 'approve'
          ? 'approve a deployment waiting at AwaitApproval: it continues to Deploy (who approved goes into the history and the deployment record)'
          : 'reject a deployment waiting at AwaitApproval: it ends FAILED (ApprovalRejectedError); a redrive asks again',
      );
    if (action === 'approve') command.option('--comment <text>', 'why, kept with the approval');
    else command.requiredOption('--reason <text>', 'why, kept in the execution history');
    command
      .option(
        '--approval-url <url>',
        `the approval function's URL on AWS (or ${APPROVAL_URL_ENV}; the stack output ApprovalUrl)`,
      )
      .option('--json', 'print the decision as JSON')
      .addHelpText(
        'after',
        help(
          action === 'approve'
            ? `
      stepdeploy approve production-20261129T031500-k3x9qa --local
      stepdeploy approve production-20261129T031500-k3x9qa --comment "release 42, checked with QA"`
            : `
      stepdeploy reject production-20261129T031500-k3x9qa --reason "wrong branch" --local
      stepdeploy reject production-20261129T031500-k3x9qa --reason "freeze until Monday"`,
        ),
      )
      .action(async (execution: string, options: DecisionOptions, command: Command) => {
        await withTarget(command, async (target, globals) =>
          runDecision(target, await arnOf(target, execution), action, options, resolve(globals.config), io),
        );
      });
  }

  program
    .command('console')
    .description(
      'serve the deployment console (graph, executions, environments, start/redrive/stop, approve/reject/rollback) on 127.0.0.1 until interrupted',
    )
    .option('--port <n>', 'port to listen on (0 picks a free one)', port, 4598)
    .option(
      '--approval-url <url>',
      `where the Approve and Reject buttons send decisions on AWS (or ${APPROVAL_URL_ENV}; the stack output ApprovalUrl)`,
    )
    .addHelpText(
      'after',
      help(`
        stepdeploy console --state-machine-arn arn:aws:states:eu-west-1:111111111111:stateMachine:shop --bucket shop-artifacts
        stepdeploy console --local --port 0`),
    )
    .action(async (options: { port: number; approvalUrl?: string }, command: Command) => {
      await withTarget(command, (target, globals) => runConsole(target, globals.config, options, io));
    });

  program
    .command('init')
    .description(
      'write stepdeploy.config.yml (commented), cdk.json and a CDK app that builds the pipeline with the DeploymentPipeline construct; asks at a terminal unless given flags; never overwrites a file',
    )
    .option(
      '--source <NAME=URL>',
      'a git repository: its name and https:// clone URL or local path (repeat per source; the first lands at ".")',
      collect,
      [],
    )
    .option(
      '--env <NAME=ACCOUNT/REGION>',
      "an environment: its name, AWS account and region (repeat per environment; the first may deploy any branch, the others the first source's default branch)",
      collect,
      [],
    )
    .option(
      '--connection <NAME=ARN>',
      'the CodeConnections connection a source is cloned through (required for GitLab; repeat per source)',
      collect,
      [],
    )
    .option(
      '--type <NAME=TYPE>',
      'the provider of a source at a host of its own: GITHUB_ENTERPRISE or GITLAB_SELF_MANAGED (repeat per source)',
      collect,
      [],
    )
    .option('--pipeline <name>', 'the pipeline name (default: from the folder name)')
    .option('--tooling-account <account>', 'the account of the pipeline stack (default: none, set it later)')
    .option(
      '--buildspecs',
      "copy the default buildspecs into buildspecs/ to edit (default: use the installed package's)",
    )
    .option('--dir <folder>', 'the folder to write into', '.')
    .addHelpText(
      'after',
      help(`
        stepdeploy init
        ${INIT_FLAGS_EXAMPLE}
        stepdeploy init --source app=../app --env acceptance=111111111111/eu-west-1 --buildspecs --dir deploy`),
    )
    .action(async (options: InitOptions) => {
      context.exitCode = await runInit(
        options,
        io,
        context.terminal ?? { input: process.stdin, output: process.stdout },
      );
    });

  const local = program
    .command('local')
    .description('the embedded runtime: the same state machine on this machine, no AWS account');
  local
    .command('serve')
    .description(
      'serve the Step Functions, CodeBuild, CloudWatch Logs (build logs) and S3 APIs, and the console page at /, on 127.0.0.1 until interrupted',
    )
    .option('--port <n>', 'port to listen on (0 picks a free one)', port, 4599)
    .addHelpText(
      'after',
      help(`
        stepdeploy local serve
        stepdeploy local serve --port 0
        export AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER AWS_REGION=us-east-1
        aws stepfunctions list-executions --endpoint-url http://127.0.0.1:4599 --state-machine-arn <arn printed at start>
        aws s3 ls --recursive --endpoint-url http://127.0.0.1:4599 s3://<bucket>`),
    )
    .action(async (options: { port: number }, command: Command) => {
      // Loaded here: the other commands never load the local runtime.
      const { serveLocal } = require('./local-serve') as typeof import('./local-serve');
      await serveLocal({ configPath: command.optsWithGlobals<{ config: string }>().config, port: options.port }, io);
    });
  return program;
}

function debugDetails(err: unknown): string {
  const parts: string[] = [];
  let current: unknown = err;
  while (current instanceof Error) {
    parts.push(current.stack ?? String(current));
    const metadata = (current as { $metadata?: unknown }).$metadata;
    if (metadata) parts.push(`$metadata: ${JSON.stringify(metadata)}`);
    const details = (current as { details?: string }).details;
    if (details) parts.push(details);
    current = current.cause;
  }
  return parts.join('\n');
}

/** Parses argv (as process.argv: node, script, args…), runs the command, returns its exit code. */
export async function runCli(
  argv: ReadonlyArray<string>,
  io: Io = processIo(),
  terminal?: Terminal,
): Promise<ExitCode> {
  const context: ProgramContext = { io, terminal, exitCode: ExitCode.Ok };
  const program = makeProgram(context);
  try {
    await program.parseAsync([...argv]);
    return context.exitCode;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? ExitCode.Ok : ExitCode.Usage;
    const error =
      err instanceof CliError
        ? err
        : err instanceof Error && err.name === 'ConfigError'
          ? new CliError(err.message, ExitCode.Usage, { cause: err })
          : describeServiceError(err);
    eprintln(io, `stepdeploy: ${error.message}`);
    if (argv.includes('--debug')) eprintln(io, debugDetails(error));
    return error.exitCode;
  }
}

export function main(argv: string[] = process.argv): void {
  // `stepdeploy executions | head`: the reader has what it wanted once it closes the pipe. End quietly,
  // as a command killed by SIGPIPE would, instead of an unhandled EPIPE error and its stack.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') throw err;
    process.exit(ExitCode.Ok);
  });
  void runCli(argv).then((code) => {
    process.exitCode = code;
  });
}
