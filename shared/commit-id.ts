/** A full commit id: SHA-1 (40) or SHA-256 (64) repositories. A short id is ambiguous as a repository grows. */
export const COMMIT_ID = /^([0-9a-f]{40}|[0-9a-f]{64})$/;
export const COMMIT_ID_RULE = 'must be a full commit id: 40 (or 64) lowercase hexadecimal digits';
