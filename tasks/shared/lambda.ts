import type { Environment } from '../../shared/env';

/**
 * Every task handler module exports `createHandler(env)`: one instance of the function, its SDK
 * clients and caches made from `env`, its own environment. The local runtime makes one per
 * runtime from that runtime's environment; Lambda calls the module's `handler`, made here.
 */

/**
 * The `handler` Lambda calls: the function made from process.env at the first invocation (the
 * cold start) and kept for the container's life. Made then rather than at import, so that loading
 * the module reads no environment (the local runtime and tests load it for `createHandler`), and a
 * missing variable fails that invocation with its EnvironmentVariableError, then the next.
 */
export function lambdaHandler<A extends unknown[], R>(
  create: (env: Environment) => (...args: A) => Promise<R>,
): (...args: A) => Promise<R> {
  let made: ((...args: A) => Promise<R>) | undefined;
  return async (...args) => {
    made ??= create(process.env);
    return made(...args);
  };
}
