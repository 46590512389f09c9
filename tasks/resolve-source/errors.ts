/** The repository answered, and it has no such branch: fetching would fail the same way, later. */
export class SourceBranchNotFoundError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'SourceBranchNotFoundError';
  }
}
