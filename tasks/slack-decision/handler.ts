import { S3Client } from '@aws-sdk/client-s3';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SFNClient } from '@aws-sdk/client-sfn';
import { loadConfig } from '../../shared/config';
import { clientSettings, type Environment, requireEnv } from '../../shared/env';
import { functionUrlEventSchema, functionUrlRequest } from '../shared/function-url';
import { lambdaHandler } from '../shared/lambda';
import { cachedSecretString } from '../shared/secret';
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
    signingSecret: cachedSecretString(
      new SecretsManagerClient(clientSettings(env, 'SECRETS_MANAGER')),
      slack.signingSecretName,
      'the Slack signing secret',
    ),
    approvers: slack.approvers,
    teamId: slack.teamId,
    reply: replyPoster(),
  };
}

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
    const response = await handleSlackAction(functionUrlRequest(request.data), deps);
    return { statusCode: response.statusCode, headers: { 'content-type': 'application/json' }, body: response.body };
  };
}

export const handler = lambdaHandler(createHandler);
