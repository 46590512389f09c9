import { S3Client } from '@aws-sdk/client-s3';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { z } from 'zod';
import { SOURCE_TYPES } from '../../shared/config';
import { clientSettings, type Environment, optionalEnv, requireEnv } from '../../shared/env';
import { EXECUTION_NAME } from '../../shared/execution-name';
import { lambdaHandler } from '../shared/lambda';
import { parseEvent } from '../shared/parse-event';
import { postToSlack } from '../notify/slack';
import { webhookUrlFromSecret } from '../notify/webhook';
import {
  approvalTimedOut,
  requestApproval,
  type ApprovalTimedOutResult,
  type AwaitApprovalSubmitted,
} from './await-approval';

const environment = z.string().regex(/^[a-z][a-z0-9-]{0,29}$/);
const execution = z.string().regex(EXECUTION_NAME);
const source = z.object({ name: z.string().min(1), branch: z.string().min(1), commit: z.string().min(1) });

const eventSchema = z.discriminatedUnion('kind', [
  z
    .object({
      kind: z.literal('request'),
      taskToken: z.string().min(1),
      environment,
      execution,
      startedAt: z.iso.datetime(),
      redriveCount: z.number().int().min(0),
      requestedBy: z.string().nullable(),
      timeoutSeconds: z.number().int().min(1),
      allowSelfApproval: z.boolean(),
      redeployOf: execution.nullable(),
      repositories: z.array(
        z.object({ name: z.string().min(1), repository: z.string().min(1), sourceType: z.enum(SOURCE_TYPES) }).loose(),
      ),
      sources: z.array(source.loose()).min(1),
    })
    .strict(),
  z.object({ kind: z.literal('timed-out'), environment, execution, redriveCount: z.number().int().min(0) }).strict(),
]);

/** AwaitApproval (`kind: request`) and ApprovalTimedOut (`kind: timed-out`). Never logs the event: it holds the task token. */
export function createHandler(env: Environment) {
  const s3 = new S3Client(clientSettings(env, 'S3'));
  const secrets = new SecretsManagerClient(clientSettings(env, 'SECRETS_MANAGER'));
  const secretName = optionalEnv(env, 'SLACK_WEBHOOK_SECRET_NAME');
  const webhook = secretName ? webhookUrlFromSecret(secrets, secretName) : undefined;
  /** Set by the stack where tasks/slack-decision answers the buttons (notifications.slack.signingSecretName). */
  const slackButtons = optionalEnv(env, 'SLACK_APPROVAL_BUTTONS') === 'true';
  return async (event: unknown): Promise<AwaitApprovalSubmitted | ApprovalTimedOutResult> => {
    const parsed = parseEvent(eventSchema, event, 'AwaitApproval');
    const deps = {
      s3,
      bucket: requireEnv(env, 'ARTIFACT_BUCKET'),
      slack: webhook
        ? async (message: Parameters<typeof postToSlack>[1]) => postToSlack(await webhook(), message)
        : undefined,
      slackButtons,
    };
    if (parsed.kind === 'timed-out') return approvalTimedOut(parsed, deps);
    const { kind: _kind, ...request } = parsed;
    return requestApproval(request, deps);
  };
}

export const handler = lambdaHandler(createHandler);
