import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { prepareExampleRepositories } from '../local/examples';
import { LocalRuntime } from '../local/runtime';
import { ExitCode } from './exit-codes';

/**
 * Where a running `local serve` of one pipeline says it listens, so `--local` commands with the
 * same config find it. One file per pipeline: configs kept side by side share `.stepdeploy/`.
 */
export function endpointFile(home: string, pipeline: string): string {
  return join(home, 'endpoints', `${pipeline}.json`);
}

export interface ServeOptions {
  readonly configPath: string;
  readonly port: number;
}

/** `stepdeploy local serve`: runs until SIGINT/SIGTERM, then stops running executions and exits. */
export async function serveLocal(options: ServeOptions): Promise<void> {
  const configPath = resolve(options.configPath);
  const runtime: LocalRuntime = await LocalRuntime.start({
    configPath,
    port: options.port,
    onBuildLog: (line, buildId) => console.log(`[${runtime.buildLabel(buildId)}] ${line}`),
    listeners: [{ onStatusChange: (e) => console.log(`execution ${e.name}: ${e.status}`) }],
  });
  for (const created of prepareExampleRepositories(runtime.config, configPath, runtime.home)) {
    console.log(`created example repository ${created}`);
  }
  const file = endpointFile(runtime.home, runtime.config.pipeline);
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, `${JSON.stringify({ endpoint: runtime.endpoint, pid: process.pid, stateMachineArn: runtime.machine.stateMachineArn }, null, 2)}\n`);
  console.log(`stepdeploy local runtime on ${runtime.endpoint} (data in ${runtime.home})
  state machine: ${runtime.machine.stateMachineArn}
  artifacts bucket: ${runtime.bucket}
  try it with any AWS client (the local S3 takes only these fixed credentials):
    export AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER AWS_REGION=us-east-1
    aws stepfunctions list-executions --endpoint-url ${runtime.endpoint} --state-machine-arn ${runtime.machine.stateMachineArn}
    aws s3 ls --recursive --endpoint-url ${runtime.endpoint} s3://${runtime.bucket}
Press Ctrl-C to stop.`);
  await new Promise<void>((done) => {
    const stop = (): void => {
      console.log('stopping: running executions are stopped (redrive them later)');
      rmSync(file, { force: true });
      void runtime.close().then(done);
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  process.exitCode = ExitCode.Ok;
}
