/** current.json kept changing under this write (many deployments of one environment finishing together). */
export class CurrentRecordContendedError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'CurrentRecordContendedError';
  }
}
