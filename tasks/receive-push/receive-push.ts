import { createHash } from 'node:crypto';
import { branchNameViolation } from '../../shared/branch-name';
import type { PipelineConfig } from '../../shared/config';
import type { ExecutionInput } from '../../shared/contracts';
import { executionNameViolation } from '../../shared/execution-name';
import { checkExecutionInput } from '../validate-input/validate-input';
import { parseBitbucket } from './providers/bitbucket';
import { type CodeCommitEvent, parseCodeCommit } from './providers/codecommit';
import { parseGitHub } from './providers/github';
import { parseGitLab } from './providers/gitlab';
import {
  type BranchPush,
  type Headers,
  type ParsedDelivery,
  PROVIDERS,
  type Provider,
  type WebhookProvider,
} from './push';
import { signatureProblem } from './signature';
import { sourcesOf, triggeredEnvironments } from './triggers';

/**
 * The webhook receiver: one code path for GitHub, GitLab and Bitbucket webhooks (a Lambda function
 * URL on AWS, `stepdeploy local serve` locally) and CodeCommit's EventBridge events. Nothing is
 * started unless the request is authentic, is a branch push, matches a trigger and passes the same
 * input rules as ValidateInput and the CLI (checkExecutionInput). The execution name derives from
 * the delivery, so a delivery that arrives twice starts one execution.
 */

/** Over the Lambda function URL's own 6 MB request limit nothing arrives; GitHub sends up to 25 MB. */
export const MAX_WEBHOOK_BODY_BYTES = 5 * 1024 * 1024;
const WEBHOOK_PATH = /^\/webhooks\/([a-z]+)\/?$/;

export interface WebhookRequest {
  readonly method: string;
  /** The request path without the query string: `/webhooks/github`. */
  readonly path: string;
  /** Header names in lowercase. */
  readonly headers: Headers;
  readonly body: Buffer;
}

export interface WebhookResponse {
  readonly statusCode: number;
  readonly body: string;
}

export interface StartRequest {
  readonly name: string;
  readonly input: ExecutionInput;
}

export interface ReceiverDeps {
  readonly config: PipelineConfig;
  readonly configPath: string;
  /** The provider's webhook secret, or undefined when this pipeline takes no webhooks from it. */
  readonly secret: (provider: WebhookProvider) => Promise<string | undefined>;
  /** StartExecution: 'exists' when an execution of that name exists already (the delivery came before). */
  readonly startExecution: (request: StartRequest) => Promise<'started' | 'exists'>;
  /** Where each decision goes (CloudWatch Logs on Lambda, the terminal of `local serve`). */
  readonly log: (line: string) => void;
}

export interface Outcome {
  readonly started: ReadonlyArray<{ environment: string; execution: string; branch: string; commit: string }>;
  /** Executions this delivery had started already (a redelivery). */
  readonly alreadyStarted: ReadonlyArray<{ environment: string; execution: string }>;
  readonly ignored: ReadonlyArray<string>;
}

export async function receiveWebhook(request: WebhookRequest, deps: ReceiverDeps): Promise<WebhookResponse> {
  const provider = WEBHOOK_PATH.exec(request.path)?.[1];
  if (provider === undefined || !(PROVIDERS as ReadonlyArray<string>).includes(provider)) {
    return reply(404, {
      message: `no webhook at ${JSON.stringify(request.path.slice(0, 100))}; use /webhooks/github, /webhooks/gitlab or /webhooks/bitbucket`,
    });
  }
  const from = provider as WebhookProvider;
  if (request.method !== 'POST') return reply(405, { message: 'webhooks are POST requests' });
  if (request.body.length > MAX_WEBHOOK_BODY_BYTES) {
    return reply(413, { message: `the body is over ${MAX_WEBHOOK_BODY_BYTES} bytes` });
  }
  const secret = await deps.secret(from);
  if (secret === undefined) return reply(404, { message: `this pipeline takes no ${from} webhooks` });
  const refused = signatureProblem(from, request.headers, request.body, secret);
  if (refused !== undefined) {
    deps.log(`${from} webhook refused: ${refused}`);
    return reply(401, { message: refused });
  }
  let payload: unknown;
  try {
    payload = parsePayload(request);
  } catch {
    return reply(400, { message: 'the body is not a JSON payload' });
  }
  let delivery: ParsedDelivery;
  try {
    delivery = PARSERS[from](request.headers, payload);
  } catch (err) {
    deps.log(`${from} webhook: not a push payload this receiver understands: ${(err as Error).message.slice(0, 500)}`);
    return reply(400, { message: `the payload is not a ${from} push event` });
  }
  return reply(200, await deploy(from, delivery, deps));
}

const PARSERS: Readonly<Record<WebhookProvider, (headers: Headers, payload: unknown) => ParsedDelivery>> = {
  github: parseGitHub,
  gitlab: parseGitLab,
  bitbucket: parseBitbucket,
};

/** CodeCommit's repository events come through EventBridge: no signature, the rule and IAM vouch for them. */
export async function receiveCodeCommitEvent(event: CodeCommitEvent, deps: ReceiverDeps): Promise<Outcome> {
  return deploy('codecommit', parseCodeCommit(event), deps);
}

/** GitHub may post `application/x-www-form-urlencoded` with the JSON in `payload`. */
function parsePayload(request: WebhookRequest): unknown {
  const text = request.body.toString('utf8');
  if ((request.headers['content-type'] ?? '').startsWith('application/x-www-form-urlencoded')) {
    return JSON.parse(new URLSearchParams(text).get('payload') ?? '');
  }
  return JSON.parse(text);
}

async function deploy(provider: Provider, delivery: ParsedDelivery, deps: ReceiverDeps): Promise<Outcome> {
  if (delivery.kind === 'ignored') {
    deps.log(`${provider} delivery ignored: ${delivery.reason}`);
    return { started: [], alreadyStarted: [], ignored: [delivery.reason] };
  }
  const started: Array<Outcome['started'][number]> = [];
  const alreadyStarted: Array<Outcome['alreadyStarted'][number]> = [];
  const ignored = [...delivery.ignored];
  for (const push of delivery.pushes) {
    for (const plan of plansFor(provider, push, delivery.deliveryKey, deps, ignored)) {
      const outcome = await deps.startExecution({ name: plan.name, input: plan.input });
      if (outcome === 'exists') alreadyStarted.push({ environment: plan.input.environment, execution: plan.name });
      else
        started.push({
          environment: plan.input.environment,
          execution: plan.name,
          branch: push.branch,
          commit: push.commit,
        });
      deps.log(
        `${provider} push of ${push.branch}@${push.commit.slice(0, 12)}: ${plan.input.environment} ${outcome === 'exists' ? 'was started by this delivery already' : 'started'} as ${plan.name}`,
      );
    }
  }
  for (const reason of ignored) deps.log(`${provider} push not deployed: ${reason}`);
  return { started, alreadyStarted, ignored };
}

/** The executions one branch push starts; why not, into `ignored`. */
function plansFor(
  provider: Provider,
  push: BranchPush,
  deliveryKey: string,
  deps: ReceiverDeps,
  ignored: string[],
): StartRequest[] {
  const branch = JSON.stringify(push.branch.slice(0, 200));
  // Checked before any pattern sees it: "*" would match a name no rule allows.
  const violation = branchNameViolation(push.branch);
  if (violation !== undefined) {
    ignored.push(`branch ${escaped(branch)} ${violation}`);
    return [];
  }
  const sources = sourcesOf(push, provider, deps.config, deps.configPath);
  if (sources.length === 0) {
    ignored.push(
      `no configured ${provider} source is the repository ${escaped(JSON.stringify(push.repositoryUrls[0] ?? '(none)'))}`,
    );
    return [];
  }
  const environments = new Map<string, string[]>();
  for (const source of sources) {
    for (const environment of triggeredEnvironments(deps.config, source, push.branch)) {
      environments.set(environment, [...(environments.get(environment) ?? []), source]);
    }
  }
  if (environments.size === 0) {
    ignored.push(`no trigger of ${sources.join(', ')} takes branch ${branch}`);
    return [];
  }
  return [...environments].flatMap(([environment, pushedSources]) => {
    const input: ExecutionInput = {
      environment,
      branches: Object.fromEntries(pushedSources.map((s) => [s, push.branch])),
      commits: Object.fromEntries(pushedSources.map((s) => [s, push.commit])),
      requestedBy: requestedBy(provider, push.pusher),
    };
    const problems = checkExecutionInput(input, deps.config);
    if (problems.length > 0) {
      ignored.push(`${environment}: ${problems.join('; ')}`);
      return [];
    }
    const name = executionNameFor(environment, push, provider, deliveryKey);
    // The rule every execution name keeps (S3 keys); a derived name that broke it is a bug here.
    const nameProblem = executionNameViolation(name);
    if (nameProblem !== undefined) throw new Error(`derived execution name ${name} ${nameProblem}`);
    return [{ name, input }];
  });
}

/**
 * `<environment>-<commit 7>-<12 hex of the delivery>`: the same delivery (and branch, for a
 * Bitbucket push of several) always gives the same name, and Step Functions starts an execution
 * name once, so a redelivery or a replay starts nothing new.
 */
export function executionNameFor(
  environment: string,
  push: BranchPush,
  provider: Provider,
  deliveryKey: string,
): string {
  const digest = createHash('sha256')
    .update(JSON.stringify([provider, deliveryKey, push.branch]))
    .digest('hex');
  return `${environment}-${push.commit.slice(0, 7)}-${digest.slice(0, 12)}`;
}

/** `push by <who> (github)`: printable text only, well within ValidateInput's REQUESTED_BY_MAX_LENGTH. */
function requestedBy(provider: Provider, pusher: string): string {
  const who = [...pusher.replace(/[\p{Cc}\p{Cf}\p{Co}\p{Cs}\p{Zl}\p{Zp}]/gu, '')].slice(0, 100).join('') || 'unknown';
  return `push by ${who} (${provider})`;
}

function escaped(json: string): string {
  return json.replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

function reply(statusCode: number, body: Outcome | { message: string }): WebhookResponse {
  return { statusCode, body: JSON.stringify(body) };
}
