import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SFNClient } from '@aws-sdk/client-sfn';
import { z } from 'zod';
import { loadConfig } from '../../shared/config';
import { clientSettings, type Environment, optionalEnv, requireEnv } from '../../shared/env';
import { functionUrlEventSchema, functionUrlRequest } from '../shared/function-url';
import { lambdaHandler } from '../shared/lambda';
import { cachedSecretString } from '../shared/secret';
import { codeCommitEventSchema } from './providers/codecommit';
import { PROVIDERS, type WebhookProvider } from './push';
import { receiveCodeCommitEvent, receiveWebhook, type ReceiverDeps } from './receive-push';
import { sfnStarter } from './start-execution';

/** The receiver's config, state machine and secret readers, once per container. */
function receiverDeps(env: Environment): ReceiverDeps {
  const sfn = new SFNClient(clientSettings(env, 'SFN'));
  const secrets = new SecretsManagerClient(clientSettings(env, 'SECRETS_MANAGER'));
  const configPath = requireEnv(env, 'STEPDEPLOY_CONFIG_PATH');
  const config = loadConfig(configPath);
  const stateMachineArn = requireEnv(env, 'STATE_MACHINE_ARN');

  /** Secret NAMES by provider (the stack's secrets); the values are read at run time, cached per container. */
  const secretNames = z
    .partialRecord(z.enum(PROVIDERS), z.string().min(1))
    .parse(JSON.parse(optionalEnv(env, 'WEBHOOK_SECRET_NAMES') ?? '{}'));
  const readers = new Map<WebhookProvider, () => Promise<string>>(
    Object.entries(secretNames).map(([provider, name]) => [
      provider as WebhookProvider,
      cachedSecretString(secrets, name, `the ${provider} webhook secret`),
    ]),
  );

  return {
    config,
    configPath,
    secret: async (provider) => readers.get(provider)?.(),
    startExecution: sfnStarter(sfn, stateMachineArn),
    log: (line) => console.log(line),
  };
}

/** The function URL's request, with its path (the provider's name is the last part). */
const webhookEventSchema = functionUrlEventSchema.extend({ rawPath: z.string() });

/**
 * The receiver: webhooks over its function URL, CodeCommit repository events from EventBridge.
 * A webhook's answer is its HTTP response (a 5xx makes GitLab and Bitbucket retry, with the same
 * execution names); a CodeCommit event that cannot be handled throws, so EventBridge retries it.
 */
export function createHandler(env: Environment) {
  const deps = receiverDeps(env);
  return (event: unknown) => receive(event, deps);
}

export const handler = lambdaHandler(createHandler);

async function receive(event: unknown, deps: ReceiverDeps): Promise<unknown> {
  const codeCommit = codeCommitEventSchema.safeParse(event);
  if (codeCommit.success) return receiveCodeCommitEvent(codeCommit.data, deps);
  const request = webhookEventSchema.parse(event);
  const response = await receiveWebhook({ ...functionUrlRequest(request), path: request.rawPath }, deps).catch(
    (err: unknown) => {
      console.error(`webhook receiver: ${(err as Error).name}: ${(err as Error).message}`);
      return { statusCode: 500, body: JSON.stringify({ message: 'the receiver failed; the delivery may be retried' }) };
    },
  );
  return { statusCode: response.statusCode, headers: { 'content-type': 'application/json' }, body: response.body };
}
