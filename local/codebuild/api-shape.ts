import type { Build } from './types';

const TIME_KEYS = new Set(['startTime', 'endTime']);

/**
 * A Build as the CodeBuild API itself serializes it (BatchGetBuilds over awsJson1_1): camelCase
 * keys and epoch-second timestamps, where the `.sync` result uses PascalCase and milliseconds.
 * The local API answers BatchGetBuilds with this, so `@aws-sdk/client-codebuild` parses it.
 */
export function toCodeBuildApiBuild(build: Build): Record<string, unknown> {
  return convert(build) as Record<string, unknown>;
}

function convert(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(convert);
  if (typeof value !== 'object' || value === null) return value;
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value)) {
    const k = key.charAt(0).toLowerCase() + key.slice(1);
    out[k] = TIME_KEYS.has(k) && typeof v === 'number' ? v / 1000 : convert(v);
  }
  return out;
}
