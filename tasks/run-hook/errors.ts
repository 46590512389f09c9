/** A post-deploy hook never answered as expected within its attempts: the deployment is not healthy. */
export class HookFailedError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'HookFailedError';
  }
}
