/** Medians with min and max: these machines are noisy, so one number alone says little. */

export interface Summary {
  readonly median: number;
  readonly min: number;
  readonly max: number;
  readonly runs: number;
}

export function summarize(samples: ReadonlyArray<number>): Summary {
  if (samples.length === 0) throw new Error('summarize: no samples');
  const sorted = [...samples].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  const median = sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
  return { median, min: sorted[0]!, max: sorted[sorted.length - 1]!, runs: sorted.length };
}

/** `1.23 s (min 1.10, max 1.40, n=5)` */
export function formatSeconds(s: Summary): string {
  const f = (ms: number): string => (ms / 1000).toFixed(2);
  return `${f(s.median)} s (min ${f(s.min)}, max ${f(s.max)}, n=${s.runs})`;
}

export function formatMegabytes(s: Summary): string {
  const f = (bytes: number): string => (bytes / 1024 / 1024).toFixed(0);
  return `${f(s.median)} MB (min ${f(s.min)}, max ${f(s.max)}, n=${s.runs})`;
}

export async function timed<T>(work: () => Promise<T>): Promise<{ ms: number; value: T }> {
  const start = performance.now();
  const value = await work();
  return { ms: performance.now() - start, value };
}
