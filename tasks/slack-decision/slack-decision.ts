import { z } from 'zod';
import type { SlackMessage } from '../notify/format';
import type { SlackResult } from '../notify/slack';
import type { SecretReader } from '../shared/secret';
import { decideApproval, type DecideApprovalDependencies } from '../decide-approval/decide-approval';
import { DecisionRefusedError } from '../decide-approval/errors';
import { APPROVAL_BLOCK_ID, APPROVE_ACTION_ID, parseButtonValue, REJECT_ACTION_ID } from './actions';
import { signatureProblem, timestampProblem } from './signature';

/**
 * slack-decision: the Approve / Reject buttons of the approval message (tasks/await-approval).
 * Slack posts each click to this function's URL (AuthType NONE: Slack cannot sign SigV4), so the
 * request's Slack signature is the authentication, checked before anything is read. Who clicked is
 * then mapped through `notifications.slack.approvers` to the identity the decision rules of
 * decide-approval judge (self-approval, superseded, no longer waiting); an unmapped Slack user
 * changes nothing. The answer goes back through the click's response_url.
 *
 * Reject does not decide here: it answers with the `stepdeploy reject` command to run, because a
 * rejection needs a reason and a Slack modal to ask for one needs a bot token (one more secret),
 * views.open within the 3-second window and a second kind of request to verify.
 */

/**
 * A click's payload carries the whole message it came from; ours is a few KB. Anything far larger
 * is refused unread (Slack's messages are at most 50 blocks of 3,000 characters).
 */
export const MAX_SLACK_BODY_BYTES = 256 * 1024;

export interface SlackHttpRequest {
  readonly method: string;
  /** Lower-case names. */
  readonly headers: Readonly<Record<string, string | undefined>>;
  /** The raw body, byte for byte as signed. */
  readonly body: Buffer;
}

export interface SlackHttpResponse {
  readonly statusCode: number;
  readonly body: string;
}

/** What is posted to a response_url: a message, and whether it replaces the clicked one or only the clicker sees it. */
export interface SlackReply extends SlackMessage {
  readonly replace_original?: boolean;
  readonly response_type?: 'ephemeral' | 'in_channel';
}

export interface SlackDecisionDependencies extends DecideApprovalDependencies {
  /** The app's signing secret; `{ fresh: true }` after a mismatch, in case it was regenerated. */
  readonly signingSecret: SecretReader<string>;
  /** Slack member id → the identity the approval rules judge (notifications.slack.approvers). */
  readonly approvers: Readonly<Record<string, string>>;
  /** Only clicks from this workspace count (notifications.slack.teamId). @default any workspace the app is in */
  readonly teamId?: string;
  /** Posts to a click's response_url; never throws (tasks/slack-decision/respond.ts). */
  readonly reply: (responseUrl: string, message: SlackReply) => Promise<SlackResult>;
  /** @default console.log */
  readonly log?: (line: string) => void;
}

/** The fields of a `block_actions` payload this function reads (Slack's reference, "block_actions payload"). */
const payloadSchema = z.object({
  type: z.string(),
  user: z.object({ id: z.string().min(1).max(64) }).loose(),
  team: z.object({ id: z.string() }).loose().nullish(),
  response_url: z.string().max(2048).optional(),
  actions: z.array(z.object({ action_id: z.string(), value: z.string().max(2000).optional() }).loose()).default([]),
  message: z
    .object({ text: z.string().optional(), blocks: z.array(z.record(z.string(), z.unknown())).optional() })
    .loose()
    .optional(),
});
type Payload = z.infer<typeof payloadSchema>;

const OK: SlackHttpResponse = { statusCode: 200, body: '' };

function refuse(statusCode: number, message: string): SlackHttpResponse {
  return { statusCode, body: JSON.stringify({ message }) };
}

export async function handleSlackAction(
  request: SlackHttpRequest,
  deps: SlackDecisionDependencies,
): Promise<SlackHttpResponse> {
  const log = deps.log ?? ((line: string) => console.log(line));
  if (request.method !== 'POST') return refuse(405, 'use POST');
  if (request.body.length > MAX_SLACK_BODY_BYTES) return refuse(413, `the body is over ${MAX_SLACK_BODY_BYTES} bytes`);
  const now = (deps.now ?? (() => new Date()))();
  const timestamp = request.headers['x-slack-request-timestamp'];
  const tooOld = timestampProblem(timestamp, Math.floor(now.getTime() / 1000));
  if (tooOld !== undefined) {
    log(`slack-decision: refused: ${tooOld}`);
    return refuse(401, tooOld);
  }
  const forged = await signatureCheck(request, timestamp!, deps);
  if (forged !== undefined) {
    log(`slack-decision: refused: ${forged}`);
    return refuse(401, forged);
  }

  const payload = parsePayload(request.body);
  if (payload === undefined) return refuse(400, 'the body is not a Slack interaction (payload=<JSON>)');
  // Other interactions (shortcuts, other apps' buttons) are acknowledged and left alone.
  const action = payload.actions.find((a) => a.action_id === APPROVE_ACTION_ID || a.action_id === REJECT_ACTION_ID);
  if (payload.type !== 'block_actions' || action === undefined) return OK;
  const teamId = payload.team?.id;
  if (deps.teamId !== undefined && teamId !== deps.teamId) {
    log(`slack-decision: refused: a click from workspace ${JSON.stringify(teamId)}, not ${deps.teamId}`);
    return refuse(403, 'this workspace may not decide deployments of this pipeline');
  }
  const target = parseButtonValue(action.value ?? '');
  if (target === undefined) return refuse(400, 'the button value is not <environment>/<execution>');

  const respond = async (message: SlackReply): Promise<void> => {
    if (payload.response_url === undefined) return;
    const sent = await deps.reply(payload.response_url, message);
    if (!sent.ok) log(`slack-decision: the reply was not delivered: ${sent.reason}`);
  };
  const userId = payload.user.id;
  const who = mention(userId);
  const identity = Object.hasOwn(deps.approvers, userId) ? deps.approvers[userId] : undefined;
  if (identity === undefined) {
    log(`slack-decision: ${JSON.stringify(userId)} is not in notifications.slack.approvers: nothing done`);
    await respond(
      ephemeral(
        `${who} is not an approver of this pipeline (notifications.slack.approvers): nothing was done. ` +
          `Ask for your Slack member id to be added, or decide with \`stepdeploy approve ${target.execution}\`.`,
      ),
    );
    return OK;
  }
  if (action.action_id === REJECT_ACTION_ID) {
    await respond(
      ephemeral(
        `A rejection needs a reason, kept in the execution history. Run:\n` +
          `\`stepdeploy reject ${target.execution} --reason "<why>"\``,
      ),
    );
    return OK;
  }

  const decidedBy = `${identity} via Slack (${userId})`;
  try {
    await decideApproval(
      { action: 'approve', environment: target.environment, execution: target.execution, text: null },
      identity,
      deps,
      decidedBy,
    );
    await respond(
      approvedMessage(
        payload,
        `:white_check_mark: Approved by ${escapeMrkdwn(identity)} (${who}): ${target.execution} deploys to ${target.environment} now`,
      ),
    );
  } catch (err) {
    if (!(err instanceof DecisionRefusedError)) {
      log(
        `slack-decision: ${target.environment}/${target.execution} failed: ${(err as Error).name}: ${(err as Error).message}`,
      );
      await respond(
        ephemeral(
          `Could not decide (${escapeMrkdwn((err as Error).name)}): nothing changed. Try again, or run \`stepdeploy approve ${target.execution}\`.`,
        ),
      );
      return OK;
    }
    log(`slack-decision: refused ${target.environment}/${target.execution} for ${decidedBy}: ${err.message}`);
    await respond(ephemeral(`Not approved: ${escapeMrkdwn(err.message)}`));
  }
  return OK;
}

/** Checked with the cached secret, and once more with a fresh read when it does not match (a regenerated secret). */
async function signatureCheck(
  request: SlackHttpRequest,
  timestamp: string,
  deps: SlackDecisionDependencies,
): Promise<string | undefined> {
  const signature = request.headers['x-slack-signature'];
  const secret = await deps.signingSecret();
  const problem = signatureProblem(signature, timestamp, request.body, secret);
  if (problem === undefined || signature === undefined) return problem;
  const fresh = await deps.signingSecret({ fresh: true });
  return fresh === secret ? problem : signatureProblem(signature, timestamp, request.body, fresh);
}

/** Slack posts `payload=<JSON>` form-encoded. */
function parsePayload(body: Buffer): Payload | undefined {
  const raw = new URLSearchParams(body.toString('utf8')).get('payload');
  if (raw === null) return undefined;
  try {
    const parsed = payloadSchema.safeParse(JSON.parse(raw));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

/** `<@U…>` makes Slack show the member's name; anything else is shown as text. */
function mention(userId: string): string {
  return /^[UW][A-Z0-9]{2,20}$/.test(userId) ? `<@${userId}>` : escapeMrkdwn(JSON.stringify(userId));
}

/** Slack wants &, < and > escaped in mrkdwn: identities, refusals and ids are data. */
function escapeMrkdwn(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function section(text: string): Record<string, unknown> {
  return { type: 'section', text: { type: 'mrkdwn', text } };
}

/** Only the person who clicked sees it; the request stays as it was, for another approver. */
function ephemeral(text: string): SlackReply {
  return { response_type: 'ephemeral', replace_original: false, text, blocks: [section(text)] };
}

/** The request as it was, its buttons replaced by who approved it: nobody clicks a decided request again. */
function approvedMessage(payload: Payload, line: string): SlackReply {
  const kept = (payload.message?.blocks ?? []).filter(
    (block) => !(block.type === 'actions' && block.block_id === APPROVAL_BLOCK_ID),
  );
  return { replace_original: true, text: line, blocks: [...kept, section(line)] };
}
