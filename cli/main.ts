import '../local/quiet-sdk';
import { Command, CommanderError, InvalidArgumentError } from 'commander';
import { DEFAULT_CONFIG_PATH } from '../tasks/shared/config';
import { EXIT_CODES_HELP, ExitCode } from './exit-codes';
import { serveLocal } from './local-serve';

/**
 * `stepdeploy`: argument parsing and printing only; the work lives in the library modules.
 * makeProgram() builds the command tree so that tests can drive it (exitOverride, configureOutput).
 */

function port(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError(`must be a port number 0-65535, got ${JSON.stringify(value)}`);
  return n;
}

export function makeProgram(): Command {
  const program = new Command('stepdeploy')
    .description('Deploy with an AWS Step Functions pipeline: branches as input, a live graph, redrive of the failed step.')
    .option('--config <path>', 'pipeline config file', DEFAULT_CONFIG_PATH)
    .addHelpText('after', `\n${EXIT_CODES_HELP}`)
    .showHelpAfterError();

  const local = program.command('local').description('the embedded runtime: the same state machine on this machine, no AWS account');
  local
    .command('serve')
    .description('serve the Step Functions, CodeBuild (BatchGetBuilds) and S3 APIs on 127.0.0.1 until interrupted')
    .option('--port <n>', 'port to listen on (0 picks a free one)', port, 4599)
    .addHelpText(
      'after',
      `
Examples:
  $ stepdeploy local serve
  $ stepdeploy local serve --port 0
  $ export AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER AWS_REGION=us-east-1
  $ aws stepfunctions list-executions --endpoint-url http://127.0.0.1:4599 --state-machine-arn <arn printed at start>
  $ aws s3 ls --recursive --endpoint-url http://127.0.0.1:4599 s3://<bucket>

${EXIT_CODES_HELP}`,
    )
    .action(async (options: { port: number }, command: Command) => {
      await serveLocal({ configPath: command.optsWithGlobals<{ config: string }>().config, port: options.port });
    });
  return program;
}

export function main(argv: string[] = process.argv): void {
  const program = makeProgram();
  program.exitOverride();
  program.parseAsync(argv).catch((err: unknown) => {
    if (err instanceof CommanderError) {
      process.exitCode = err.exitCode === 0 ? ExitCode.Ok : ExitCode.Usage;
      return;
    }
    console.error(`stepdeploy: ${err instanceof Error ? err.message : String(err)}`);
    process.exitCode = ExitCode.ServiceError;
  });
}
