import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SFNClient } from '@aws-sdk/client-sfn';
import { clientSettings, type Environment, optionalEnv } from '../../shared/env';
import { notifyEventSchema } from '../shared/eventbridge-events';
import { lambdaHandler } from '../shared/lambda';
import { historyLookup } from './history';
import { notify, type NotifyResult } from './notify';
import { webhookUrlFromSecret } from './webhook';

/**
 * EventBridge → notify (not a state of the pipeline). Never throws: a throw would only make
 * EventBridge retry a message, and no notification problem may look like a deployment problem.
 * Without SLACK_WEBHOOK_SECRET_NAME the message goes to stdout (the local runtime's terminal).
 */
export function createHandler(env: Environment) {
  const secrets = new SecretsManagerClient(clientSettings(env, 'SECRETS_MANAGER'));
  const history = historyLookup(new SFNClient(clientSettings(env, 'SFN')));
  const secretName = optionalEnv(env, 'SLACK_WEBHOOK_SECRET_NAME');
  // Read once, then cached for the life of the container.
  const webhookUrl = secretName ? webhookUrlFromSecret(secrets, secretName) : undefined;
  return async (event: unknown): Promise<NotifyResult> => {
    const parsed = notifyEventSchema.safeParse(event);
    if (!parsed.success) {
      console.error(
        `notify: ignoring an event that is not a Step Functions or CodeBuild status change: ${parsed.error.message}`,
      );
      return { delivered: false, reason: 'not a Step Functions or CodeBuild status change event' };
    }
    return notify(parsed.data, { webhookUrl, history });
  };
}

export const handler = lambdaHandler(createHandler);
