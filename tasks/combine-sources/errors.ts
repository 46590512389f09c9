/**
 * CombineConfigAndCode's errors. Their names are a contract: they reach the execution as the
 * state's error, and none of them is retried (a retry would fail the same way).
 */

/** source.zip already exists for this execution but records other commits: never overwrite it. */
export class ArtifactConflictError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'ArtifactConflictError';
  }
}

/** Two sources (or one source twice) would write the same path in the combined artifact. */
export class PathCollisionError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'PathCollisionError';
  }
}

/** A snapshot entry would land outside the artifact (absolute path, `..`, escaping symlink). */
export class UnsafeEntryError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'UnsafeEntryError';
  }
}

/** A snapshot is missing or is not a readable zip. */
export class SnapshotError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'SnapshotError';
  }
}

/** An environment variable of the environment's config would replace one stepdeploy sets. */
export class VariableConflictError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'VariableConflictError';
  }
}
