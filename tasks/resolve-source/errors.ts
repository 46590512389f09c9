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
