import { format } from 'node:util';

/** Console methods that task code, the local runtime and libraries print with. */
const METHODS = ['log', 'info', 'debug', 'warn', 'error'] as const;
type Method = (typeof METHODS)[number];
const TO_STDERR: ReadonlySet<Method> = new Set(['warn', 'error']);

/**
 * Routes every console line through `print` until the returned function is called: while a live
 * view redraws the graph in place, what the local runtime's tasks print (in this very process)
 * must go above the graph, or the cursor-up count of the next redraw leaves stale lines behind.
 * Hand-written: ink's patch-console does the same for ink only and is ESM-only; this is six lines.
 */
export function routeConsole(print: (text: string, stream: 'stdout' | 'stderr') => void): () => void {
  const saved = Object.fromEntries(METHODS.map((m) => [m, console[m]])) as Record<Method, (...args: unknown[]) => void>;
  for (const method of METHODS) {
    console[method] = (...args: unknown[]) =>
      print(`${format(...args)}\n`, TO_STDERR.has(method) ? 'stderr' : 'stdout');
  }
  return () => {
    for (const method of METHODS) console[method] = saved[method];
  };
}
