/**
 * How the CLI reaches the decide-approval function on the local runtime (local/approval-url.ts):
 * a path of the local endpoint, and the header in which the caller names itself (the git user),
 * since the local runtime has no IAM to tell it. A contract of the CLI and local/, kept here so
 * that the CLI loads nothing of local/ for it.
 */
export const LOCAL_APPROVAL_PATH = '/stepdeploy-local/approval';
export const LOCAL_IDENTITY_HEADER = 'x-stepdeploy-local-identity';
