/**
 * What every provider's push event comes down to. A delivery is one request from a git host (or
 * one CodeCommit EventBridge event); it may carry several branch pushes (Bitbucket groups them).
 */

export const PROVIDERS = ['github', 'gitlab', 'bitbucket'] as const;
/** The providers that reach the receiver over HTTP, each at `/webhooks/<provider>`. */
export type WebhookProvider = (typeof PROVIDERS)[number];
export type Provider = WebhookProvider | 'codecommit';

export interface BranchPush {
  /** Every URL (or local path) the payload gives for the repository; matched against the config's sources. */
  readonly repositoryUrls: ReadonlyArray<string>;
  /** The branch name as pushed (refs/heads/ removed), not yet checked. */
  readonly branch: string;
  /** The commit the branch now points to, not yet checked. */
  readonly commit: string;
  /** Who pushed, as the provider names them (untrusted text). */
  readonly pusher: string;
}

export type ParsedDelivery =
  | {
      readonly kind: 'pushes';
      /** Stays the same when the provider delivers the same event again: the execution names derive from it. */
      readonly deliveryKey: string;
      readonly pushes: ReadonlyArray<BranchPush>;
      /** Why parts of the delivery start nothing (a tag or a deletion among Bitbucket's changes). */
      readonly ignored: ReadonlyArray<string>;
    }
  | { readonly kind: 'ignored'; readonly reason: string };

/** git's all-zero object id: the "new" side of a deleted ref. */
export const ZERO_COMMIT = /^0+$/;

export type Headers = Readonly<Record<string, string | undefined>>;
