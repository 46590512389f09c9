import { resolve } from 'node:path';
import { ConsoleBackend } from '../../console/backend';
import { createConsoleHandler, listenConsole } from '../../console/server';
import { ExitCode } from '../exit-codes';
import { println, type Io } from '../io';
import type { Target } from '../target';

/**
 * `stepdeploy console`: the deployment console for the target (AWS by default) on 127.0.0.1. This
 * process holds the SDK clients and the credentials; the page only gets the JSON built from them.
 */
export async function runConsole(
  target: Target,
  configPath: string,
  options: { readonly port: number; readonly approvalUrl?: string; readonly signals?: NodeJS.EventEmitter },
  io: Io,
): Promise<ExitCode> {
  const backend = new ConsoleBackend(target, resolve(configPath), { approvalUrl: options.approvalUrl });
  const { url, server } = await listenConsole(backend, options.port, {
    target: target.description,
    pollMs: target.pollMs,
  });
  println(io, `stepdeploy console for ${target.description}: ${url}`);
  println(io, 'open it in a browser on this machine; Ctrl-C to stop');
  const signals = options.signals ?? process;
  await new Promise<void>((done) => {
    const stop = (): void => {
      signals.off('SIGINT', stop);
      signals.off('SIGTERM', stop);
      server.closeAllConnections();
      server.close(() => done());
    };
    signals.on('SIGINT', stop);
    signals.on('SIGTERM', stop);
  });
  return ExitCode.Ok;
}

/** The same page at `/` of a `local serve` endpoint, beside the AWS APIs it answers. */
export function consoleHandlerFor(target: Target, configPath: string, port: () => number) {
  return createConsoleHandler(new ConsoleBackend(target, resolve(configPath)), {
    port,
    target: target.description,
    pollMs: target.pollMs,
  });
}
