import { AsyncLocalStorage } from 'node:async_hooks';
import { format } from 'node:util';

/**
 * A Lambda function's `console` output goes to its CloudWatch log group on AWS, never to whoever
 * invoked it. The local runtime calls the same handlers in the CLI's own process, so without this a
 * task's `console.log` would land in the CLI's stdout (and break `stepdeploy start --local --json`).
 * Each local invocation runs in an async context that names the function; `console` methods called
 * inside it go to that invocation's sink, and every other caller keeps the console it had.
 */

export interface FunctionLogSource {
  /** The task folder of the function (`resolve-source`). */
  readonly functionName: string;
  /** The state whose Task invoked it, when a state did (EventBridge targets have none). */
  readonly stateName?: string;
}

/** One call of a console method: one log event on AWS, which may hold several lines. */
export type FunctionLogSink = (message: string, source: FunctionLogSource) => void;

/** Each line of a message with a prefix, for a terminal where several builds and tasks print at once. */
export function prefixLines(prefix: string, message: string): string {
  return message
    .split('\n')
    .map((line) => `${prefix}${line}`)
    .join('\n');
}

interface Invocation {
  readonly source: FunctionLogSource;
  readonly sink: FunctionLogSink;
}

const invocations = new AsyncLocalStorage<Invocation>();
const METHODS = ['log', 'info', 'warn', 'error', 'debug'] as const;
const routers = new WeakSet<(...args: unknown[]) => void>();

/**
 * Before each invocation: wraps each `console` method not wrapped yet (a test's spy, jest's own console
 * per test file, or a restore may have replaced one since), so calls made inside an invocation are routed.
 */
function routeConsole(target: Console): void {
  for (const method of METHODS) {
    if (routers.has(target[method])) continue;
    const original = target[method].bind(target);
    const router = (...args: unknown[]): void => {
      const invocation = invocations.getStore();
      if (invocation === undefined) original(...args);
      else invocation.sink(format(...args), invocation.source);
    };
    routers.add(router);
    target[method] = router;
  }
}

/** Runs one invocation with its `console` output sent to `sink`, a message per call. */
export function withFunctionLogs<T>(
  source: FunctionLogSource,
  sink: FunctionLogSink,
  run: () => Promise<T>,
): Promise<T> {
  routeConsole(console);
  return invocations.run({ source, sink }, run);
}

/** Where function output goes when the runtime's owner names no sink: stderr, so stdout stays the CLI's. */
export const functionLogsToStderr: FunctionLogSink = (message, source) => {
  process.stderr.write(`${prefixLines(`[${source.stateName ?? source.functionName}] `, message)}\n`);
};
