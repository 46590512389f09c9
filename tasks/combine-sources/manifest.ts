import { z } from 'zod';
import type { CombineSourcesEvent, Manifest } from '../../shared/contracts';

/** Always the first entry of source.zip, so a redrive can read it with a few ranged GETs. */
export const MANIFEST_NAME = 'stepdeploy-manifest.json';
/** The manifest's name as a zip's directory stores it (UTF-8). */
export const MANIFEST_NAME_BYTES = Buffer.from(MANIFEST_NAME, 'utf8');

export const manifestSchema = z.object({
  environment: z.string(),
  execution: z.string(),
  requestedBy: z.string().nullable(),
  createdAt: z.string(),
  sources: z.array(
    z.object({
      name: z.string(),
      branch: z.string(),
      commit: z.string(),
      snapshotKey: z.string(),
      path: z.string(),
    }),
  ),
});

export function createManifest(event: CombineSourcesEvent, createdAt: Date): Manifest {
  return {
    environment: event.environment,
    execution: event.execution,
    requestedBy: event.requestedBy,
    createdAt: createdAt.toISOString(),
    sources: event.sources.map(({ name, branch, commit, snapshotKey, path }) => ({
      name,
      branch,
      commit,
      snapshotKey,
      path,
    })),
  };
}

function commitsOf(sources: ReadonlyArray<{ readonly name: string; readonly commit: string }>): string {
  return sources
    .map((s) => `${s.name}@${s.commit}`)
    .sort()
    .join(', ');
}

/**
 * Describes how an existing manifest differs from the sources of this event, or returns
 * undefined when it records the same commits (a redrive of the same execution).
 */
export function commitMismatch(existing: Manifest, event: CombineSourcesEvent): string | undefined {
  const had = commitsOf(existing.sources);
  const wants = commitsOf(event.sources);
  return had === wants ? undefined : `the existing artifact holds ${had}; this call asks for ${wants}`;
}
