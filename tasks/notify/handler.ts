import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SFNClient } from '@aws-sdk/client-sfn';
import { optionalEnv } from '../../shared/env';
import { notifyEventSchema } from '../shared/eventbridge-events';
import { historyLookup } from './history';
import { notify, type NotifyResult } from './notify';
import { webhookUrlFromSecret } from './webhook';

const secrets = new SecretsManagerClient({});
const sfn = new SFNClient({});
const history = historyLookup(sfn);

/** One cached reader per secret name, for the life of the container. */
const webhooks = new Map<string, () => Promise<string>>();

function webhookFor(secretName: string): () => Promise<string> {
  let webhook = webhooks.get(secretName);
  if (webhook === undefined) {
    webhook = webhookUrlFromSecret(secrets, secretName);
    webhooks.set(secretName, webhook);
  }
  return webhook;
}

/**
 * EventBridge → notify (not a state of the pipeline). Never throws: a throw would only make
 * EventBridge retry a message, and no notification problem may look like a deployment problem.
 * Without SLACK_WEBHOOK_SECRET_NAME the message goes to stdout (the local runtime's terminal).
 */
export async function handler(event: unknown): Promise<NotifyResult> {
  const parsed = notifyEventSchema.safeParse(event);
  if (!parsed.success) {
    console.error(
      `notify: ignoring an event that is not a Step Functions or CodeBuild status change: ${parsed.error.message}`,
    );
    return { delivered: false, reason: 'not a Step Functions or CodeBuild status change event' };
  }
  const secretName = optionalEnv('SLACK_WEBHOOK_SECRET_NAME');
  return notify(parsed.data, {
    webhookUrl: secretName ? webhookFor(secretName) : undefined,
    history,
  });
}
