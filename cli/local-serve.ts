import { existsSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { EXAMPLE_REPOS } from '../local/examples';
import { prefixLines } from '../local/function-logs';
import { LocalRuntime } from '../local/runtime';
import { SLACK_ACTIONS_PATH, slackSigningSecretFile } from '../local/slack-actions';
import { installPushHooks, localWebhookSecret, webhookSecretFile, webhookUrls } from '../local/webhooks';
import { consoleHandlerFor } from './commands/console';
import { endpointFile, writeEndpointFile } from './endpoint-file';
import { println, type Io } from './io';
import { resolveTarget, type Target } from './target';

export interface ServeOptions {
  readonly configPath: string;
  readonly port: number;
  /** Where SIGINT and SIGTERM come from. @default process */
  readonly signals?: NodeJS.EventEmitter;
}

/**
 * The console at `/` of a runtime's endpoint, beside its AWS APIs, as `local serve` shows it: returns
 * the target the console's server reads through (close it before the runtime).
 */
export async function serveConsole(runtime: LocalRuntime, configPath: string): Promise<Target> {
  const port = Number(new URL(runtime.endpoint).port);
  const target = await resolveTarget({
    config: configPath,
    endpointUrl: runtime.endpoint,
    stateMachineArn: runtime.machine.stateMachineArn,
  });
  runtime.servePages(consoleHandlerFor(target, configPath, () => port));
  return target;
}

/** `stepdeploy local serve`: runs until SIGINT/SIGTERM, then stops running executions and returns. */
export async function serveLocal(options: ServeOptions, io: Io): Promise<void> {
  const configPath = resolve(options.configPath);
  const runtime: LocalRuntime = await LocalRuntime.start({
    configPath,
    port: options.port,
    onBuildLog: (line, buildId) => println(io, `[${runtime.buildLabel(buildId)}] ${line}`),
    listeners: [{ onStatusChange: (e) => println(io, `execution ${e.name}: ${e.status}`) }],
    onWebhookLog: (line) => println(io, `[webhook] ${line}`),
    onFunctionLog: (message, source) =>
      println(io, prefixLines(`[${source.stateName ?? source.functionName}] `, message)),
  });
  for (const created of runtime.createdRepositories) println(io, `created example repository ${created}`);
  const exampleRepos = join(runtime.home, 'example-repos');
  const hooked = EXAMPLE_REPOS.map((repo) => join(exampleRepos, `${repo}.git`)).filter((r) => existsSync(r));
  for (const hook of installPushHooks(hooked, runtime.home)) println(io, `installed the push hook ${hook}`);
  const webhookSecret = localWebhookSecret(runtime.home);
  const target = await serveConsole(runtime, configPath);
  const file = endpointFile(runtime.home, runtime.config.pipeline);
  writeEndpointFile(file, {
    endpoint: runtime.endpoint,
    pid: process.pid,
    stateMachineArn: runtime.machine.stateMachineArn,
  });
  println(
    io,
    `stepdeploy local runtime on ${runtime.endpoint} (data in ${runtime.home})
  console: ${runtime.endpoint}/
  state machine: ${runtime.machine.stateMachineArn}
  artifacts bucket: ${runtime.bucket}
  try it with any AWS client (the local S3 takes only these fixed credentials):
    export AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER AWS_REGION=us-east-1
    aws stepfunctions list-executions --endpoint-url ${runtime.endpoint} --state-machine-arn ${runtime.machine.stateMachineArn}
    aws s3 ls --recursive --endpoint-url ${runtime.endpoint} s3://${runtime.bucket}
  webhooks (deploy on push; a git push to the example repositories posts to the first):
    ${webhookUrls(runtime.endpoint).join('\n    ')}
  webhook secret: ${webhookSecret} (kept in ${webhookSecretFile(runtime.home)})
  Slack Approve / Reject buttons (README "Approve from Slack"): ${runtime.endpoint}${SLACK_ACTIONS_PATH}
    signed with the secret in ${slackSigningSecretFile(runtime.home)}
Press Ctrl-C to stop.`,
  );
  const signals = options.signals ?? process;
  await new Promise<void>((done, fail) => {
    const stop = (): void => {
      // Both signals at once: the other one must not stop (and close) the runtime a second time.
      // A second Ctrl-C meets no listener, so it ends the process at once, as a user expects.
      signals.off('SIGINT', stop);
      signals.off('SIGTERM', stop);
      println(io, 'stopping: running executions are stopped (redrive them later)');
      rmSync(file, { force: true });
      target
        .close()
        .then(() => runtime.close())
        .then(done, fail);
    };
    signals.on('SIGINT', stop);
    signals.on('SIGTERM', stop);
  });
}
