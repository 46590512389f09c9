/** The repository answered, and it has no such branch: fetching would fail the same way, later. */
export class SourceBranchNotFoundError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'SourceBranchNotFoundError';
  }
}

/** A source's credentialsSecret cannot be read or holds no token (logged; the repository is read without it). */
export class RepositoryCredentialsError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'RepositoryCredentialsError';
  }
}

/**
 * A GitHub branch named `pr/<number>` that could not be pinned to its commit: fetched by name,
 * CodeBuild would build pull request <number> instead (its SourceVersion reads `pr/N` so).
 */
export class AmbiguousBranchError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'AmbiguousBranchError';
  }
}
