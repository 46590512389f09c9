import { execFileSync } from 'node:child_process';
import { createHash, createHmac, type Hash, type Hmac } from 'node:crypto';
import { SignatureV4 } from '@smithy/signature-v4';
import { LOCAL_APPROVAL_PATH, LOCAL_IDENTITY_HEADER } from '../shared/local-approval';
import { CliError, usageError } from './errors';
import { ExitCode } from './exit-codes';
import type { Target } from './target';

/**
 * Sends an approve/reject decision to the decide-approval function's URL. On AWS the request is
 * signed (SigV4, service `lambda`) with the caller's own credentials, so that Lambda tells the
 * function who decides; locally it names the git user, the identity the local runtime goes by.
 */

export const APPROVAL_URL_ENV = 'STEPDEPLOY_APPROVAL_URL';
const FUNCTION_URL = /^https:\/\/[a-z0-9]+\.lambda-url\.([a-z]{2}(?:-[a-z]+)+-\d)\.on\.aws\/?$/;

type SourceData = string | ArrayBuffer | ArrayBufferView;
type SignerCredentials = ConstructorParameters<typeof SignatureV4>[0]['credentials'];

/** SHA-256 and HMAC-SHA-256 for the signer, from node:crypto (the SDK's own hash package is not a dependency). */
class NodeSha256 {
  private hash: Hash | Hmac;
  private readonly secret?: string | Uint8Array;
  constructor(secret?: SourceData) {
    this.secret = secret === undefined ? undefined : bytes(secret);
    this.hash = this.create();
  }
  private create(): Hash | Hmac {
    return this.secret === undefined ? createHash('sha256') : createHmac('sha256', this.secret);
  }
  update(data: SourceData): void {
    this.hash.update(bytes(data));
  }
  async digest(): Promise<Uint8Array> {
    return new Uint8Array(this.hash.digest());
  }
  reset(): void {
    this.hash = this.create();
  }
}

function bytes(data: SourceData): string | Uint8Array {
  if (typeof data === 'string' || data instanceof Uint8Array) return data;
  return ArrayBuffer.isView(data)
    ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
    : new Uint8Array(data);
}

export interface DecisionBody {
  readonly action: 'approve' | 'reject';
  readonly environment: string;
  readonly execution: string;
  readonly comment?: string;
  readonly reason?: string;
}

export interface DecisionAnswer {
  readonly status: number;
  readonly body: { readonly message?: string; readonly decidedBy?: string; readonly action?: string };
}

/** The git user of the config's folder: `user.email`, else `user.name`. */
export function gitUser(cwd: string): string {
  for (const key of ['user.email', 'user.name']) {
    try {
      const value = execFileSync('git', ['config', '--get', key], { cwd, encoding: 'utf8', env: process.env }).trim();
      if (value !== '') return value;
    } catch {
      // not set: try the next one
    }
  }
  throw usageError(
    'no git user to decide as: the local runtime names approvers after git; set one with `git config --global user.email you@example.com`',
  );
}

export function approvalUrlOf(explicit: string | undefined): string {
  const url = explicit ?? (process.env[APPROVAL_URL_ENV] || undefined);
  if (url === undefined) {
    throw usageError(
      `which approval URL? pass --approval-url or set ${APPROVAL_URL_ENV} (the stack output ApprovalUrl)`,
    );
  }
  if (!FUNCTION_URL.test(url)) {
    throw usageError(
      `${JSON.stringify(url)} is not a Lambda function URL (https://<id>.lambda-url.<region>.on.aws/): use the stack output ApprovalUrl`,
    );
  }
  return url.endsWith('/') ? url : `${url}/`;
}

export async function sendDecision(
  target: Target,
  body: DecisionBody,
  options: { readonly approvalUrl?: string; readonly gitCwd: string },
): Promise<DecisionAnswer> {
  const text = JSON.stringify(body);
  let response: Response;
  try {
    if (target.kind === 'aws') {
      const url = new URL(approvalUrlOf(options.approvalUrl));
      const region = FUNCTION_URL.exec(url.href)![1]!;
      const signer = new SignatureV4({
        service: 'lambda',
        region,
        credentials: target.sfn.config.credentials as SignerCredentials,
        sha256: NodeSha256,
      });
      const signed = await signer.sign({
        method: 'POST',
        protocol: url.protocol,
        hostname: url.hostname,
        path: url.pathname,
        headers: { host: url.hostname, 'content-type': 'application/json' },
        body: text,
      });
      response = await fetch(url, { method: 'POST', headers: signed.headers, body: text });
    } else {
      if (target.endpoint === undefined) throw usageError('this target has no endpoint for approvals');
      response = await fetch(`${target.endpoint}${LOCAL_APPROVAL_PATH}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', [LOCAL_IDENTITY_HEADER]: gitUser(options.gitCwd) },
        body: text,
      });
    }
  } catch (err) {
    if (err instanceof CliError) throw err;
    throw new CliError(`the approval URL could not be reached: ${(err as Error).message}`, ExitCode.ServiceError, {
      cause: err,
    });
  }
  const answer = await response.text();
  let parsed: DecisionAnswer['body'];
  try {
    parsed = JSON.parse(answer) as DecisionAnswer['body'];
  } catch {
    parsed = { message: answer.slice(0, 300) };
  }
  return { status: response.status, body: parsed };
}
