/**
 * The names the example repositories' post-receive hook and the serve share, typed for the
 * TypeScript side (local/webhooks.ts): the hook itself is local/post-receive.js, plain JavaScript
 * so that a push does not wait for tsx to start, and defines them once.
 */
interface PostReceiveHook {
  readonly WEBHOOK_PATH_PREFIX: string;
  webhookSecretFile(home: string): string;
}

const hook = require('./post-receive.js') as PostReceiveHook;

export const WEBHOOK_PATH_PREFIX: string = hook.WEBHOOK_PATH_PREFIX;
export const webhookSecretFile: (home: string) => string = hook.webhookSecretFile;
