import { S3Client } from '@aws-sdk/client-s3';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SFNClient } from '@aws-sdk/client-sfn';
import { z } from 'zod';
import { loadConfig } from '../../shared/config';
import { clientSettings, type Environment, requireEnv } from '../../shared/env';
import { lambdaHandler } from '../shared/lambda';
import { cachedSecret } from '../shared/secret';
import { replyPoster } from './respond';
import { handleSlackAction, type SlackDecisionDependencies } from './slack-decision';

/** The bundled config's Slack settings, the clients and the signing secret's reader, once per container. */
function dependencies(env: Environment): SlackDecisionDependencies {
  const slack = loadConfig(requireEnv(env, 'STEPDEPLOY_CONFIG_PATH')).notifications.slack;
  if (slack?.signingSecretName === undefined || slack.approvers === undefined) {
    throw new Error(
      'the bundled config has no notifications.slack.signingSecretName and approvers: deploy the stack again from a config that has them',
    );
  }
  return {
    s3: new S3Client(clientSettings(env, 'S3')),
    sfn: new SFNClient(clientSettings(env, 'SFN')),
    bucket: requireEnv(env, 'ARTIFACT_BUCKET'),
    signingSecret: cachedSecret(
      new SecretsManagerClient(clientSettings(env, 'SECRETS_MANAGER')),
      slack.signingSecretName,
      {
        what: 'the Slack signing secret',
        expected: 'a secret string',
        parse: (value) => (value === '' ? undefined : value),
        error: (message, options) => new Error(message, options),
      },
    ),
    approvers: slack.approvers,
    teamId: slack.teamId,
    reply: replyPoster(),
  };
}

/** The Lambda function URL's request (payload format 2.0). */
const functionUrlEventSchema = z.object({
  headers: z.record(z.string(), z.string()).default({}),
  body: z.string().optional(),
  isBase64Encoded: z.boolean().default(false),
  requestContext: z.object({ http: z.object({ method: z.string() }) }),
});

interface FunctionUrlResponse {
  readonly statusCode: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
}

/** A click on Approve / Reject, through the function URL. Never logs the body: it holds a response_url. */
export function createHandler(env: Environment) {
  const deps = dependencies(env);
  return async (event: unknown): Promise<FunctionUrlResponse> => {
    const request = functionUrlEventSchema.safeParse(event);
    if (!request.success) {
      return {
        statusCode: 400,
        headers: { 'content-type': 'application/json' },
        body: '{"message":"not a function URL request"}',
      };
    }
    const response = await handleSlackAction(
      {
        method: request.data.requestContext.http.method,
        headers: Object.fromEntries(Object.entries(request.data.headers).map(([k, v]) => [k.toLowerCase(), v])),
        body: Buffer.from(request.data.body ?? '', request.data.isBase64Encoded ? 'base64' : 'utf8'),
      },
      deps,
    );
    return { statusCode: response.statusCode, headers: { 'content-type': 'application/json' }, body: response.body };
  };
}

export const handler = lambdaHandler(createHandler);
