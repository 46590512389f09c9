import type { Build } from './types';

/**
 * Error names are a contract: the local engine reports `error.name` as the state's Error and
 * `error.cause ?? error.message` as its Cause, and the ASL's Retry/Catch match those names.
 */

/** A buildspec the local runner cannot run as CodeBuild would; the message lists every problem. */
export class BuildspecError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'BuildspecError';
  }
}

/** A source that cannot be fetched (bad location, unknown branch, hostile version, bad zip). */
export class SourceError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'SourceError';
  }
}

/** Artifacts that cannot be collected, named or uploaded. */
export class ArtifactsError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'ArtifactsError';
  }
}

/**
 * A StartBuild call CodeBuild itself would refuse. Named as the `.sync` integration names the
 * service's exception (`CodeBuild.<Exception>`), so the ASL sees the same error locally.
 */
export class InvalidInputException extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'CodeBuild.InvalidInputException';
  }
}

export class ResourceNotFoundException extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'CodeBuild.ResourceNotFoundException';
  }
}

/**
 * A build that ended in any status but SUCCEEDED. The real `.sync` integration fails the state
 * with `States.TaskFailed` and the build as JSON in the Cause; this class keeps that name (not
 * its own) because the name is what the state machine sees, and puts the JSON in `cause`.
 */
export class BuildFailedError extends Error {
  readonly build: Build;

  constructor(build: Build) {
    super(describeFailure(build), { cause: JSON.stringify({ Build: build }) });
    this.name = 'States.TaskFailed';
    this.build = build;
  }
}

function describeFailure(build: Build): string {
  const failed = build.Phases.find((p) => p.PhaseStatus !== undefined && p.PhaseStatus !== 'SUCCEEDED');
  const context = failed?.Contexts?.find((c) => c.Message !== '');
  const where = failed ? ` in phase ${failed.PhaseType}` : '';
  const why = context ? `: ${context.StatusCode}: ${context.Message}` : '';
  return `build ${build.Id} ${build.BuildStatus}${where}${why} (log: ${build.Logs.DeepLink})`;
}
