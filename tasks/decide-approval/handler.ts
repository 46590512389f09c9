import { S3Client } from '@aws-sdk/client-s3';
import { SFNClient } from '@aws-sdk/client-sfn';
import { z } from 'zod';
import { clientSettings, type Environment, requireEnv } from '../../shared/env';
import { EXECUTION_NAME, EXECUTION_NAME_RULE } from '../../shared/execution-name';
import { lambdaHandler } from '../shared/lambda';
import { decideApproval, type Decision, type DecideApprovalDependencies } from './decide-approval';
import { DecisionRefusedError } from './errors';

/** Shown in the execution history, Slack and terminals: printable text only, and short. */
const TEXT_MAX_LENGTH = 500;
const UNPRINTABLE = /[\p{Cc}\p{Cf}\p{Co}\p{Cs}\p{Zl}\p{Zp}]/u;
const text = z
  .string()
  .min(1)
  .max(TEXT_MAX_LENGTH, `must be at most ${TEXT_MAX_LENGTH} characters`)
  .refine((t) => !UNPRINTABLE.test(t), 'must be printable text (no control or invisible characters)');

const bodySchema = z.discriminatedUnion('action', [
  z
    .object({
      action: z.literal('approve'),
      environment: z.string().regex(/^[a-z][a-z0-9-]{0,29}$/, 'must be an environment name'),
      execution: z.string().regex(EXECUTION_NAME, EXECUTION_NAME_RULE),
      comment: text.optional(),
    })
    .strict(),
  z
    .object({
      action: z.literal('reject'),
      environment: z.string().regex(/^[a-z][a-z0-9-]{0,29}$/, 'must be an environment name'),
      execution: z.string().regex(EXECUTION_NAME, EXECUTION_NAME_RULE),
      reason: text,
    })
    .strict(),
]);

/**
 * The part of a function URL request (payload format 2.0) this function reads. With AuthType
 * AWS_IAM, Lambda puts the signer's identity in `requestContext.authorizer.iam`; a request that
 * reached the function without it did not come through such a URL and is refused.
 */
const requestSchema = z.object({
  requestContext: z.object({
    http: z.object({ method: z.string() }).loose(),
    authorizer: z
      .object({ iam: z.object({ userArn: z.string().min(1) }).loose() })
      .loose()
      .optional(),
  }),
  body: z.string().optional(),
  isBase64Encoded: z.boolean().optional(),
});

export interface FunctionUrlResponse {
  readonly statusCode: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
}

function respond(statusCode: number, body: Record<string, unknown>): FunctionUrlResponse {
  return { statusCode, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) };
}

export function createHandler(env: Environment) {
  const s3 = new S3Client(clientSettings(env, 'S3'));
  const sfn = new SFNClient(clientSettings(env, 'SFN'));
  return (event: unknown) => decide(event, () => ({ s3, sfn, bucket: requireEnv(env, 'ARTIFACT_BUCKET') }));
}

export const handler = lambdaHandler(createHandler);

async function decide(event: unknown, deps: () => DecideApprovalDependencies): Promise<FunctionUrlResponse> {
  const request = requestSchema.safeParse(event);
  if (!request.success) return respond(400, { message: 'not a function URL request' });
  const callerArn = request.data.requestContext.authorizer?.iam.userArn;
  if (!callerArn) {
    return respond(403, { message: 'no IAM identity: call this function through its URL, signed (AWS_IAM auth)' });
  }
  if (request.data.requestContext.http.method !== 'POST') return respond(405, { message: 'use POST' });
  let decision: Decision;
  try {
    const raw = request.data.body ?? '';
    const json = JSON.parse(request.data.isBase64Encoded ? Buffer.from(raw, 'base64').toString('utf8') : raw);
    const body = bodySchema.parse(json);
    decision = {
      action: body.action,
      environment: body.environment,
      execution: body.execution,
      text: body.action === 'approve' ? (body.comment ?? null) : body.reason,
    };
  } catch (err) {
    const issues =
      err instanceof z.ZodError
        ? err.issues.map((i) => `${i.path.join('.') || '(body)'}: ${i.message}`).join('; ')
        : 'not JSON';
    return respond(400, {
      message: `the request body must be {"action":"approve"|"reject","environment","execution","comment"|"reason"}: ${issues}`,
    });
  }
  try {
    const result = await decideApproval(decision, callerArn, deps());
    return respond(200, { ...result });
  } catch (err) {
    if (err instanceof DecisionRefusedError) return respond(err.statusCode, { message: err.message });
    throw err;
  }
}
