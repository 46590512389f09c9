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

/**
 * The input pinned a commit (a push's deployment) that is no longer its branch's head: deploying it
 * could ship a commit the branch never had, or an old one over a newer push. The newer push's
 * own deployment ships the branch as it is now.
 */
export class SourceBranchMovedError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'SourceBranchMovedError';
  }
}
