import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { dirname, join } from 'node:path';
import { SFNClient } from '@aws-sdk/client-sfn';
import type { PipelineConfig } from '../shared/config';
import { MAX_WEBHOOK_BODY_BYTES, receiveWebhook, type ReceiverDeps } from '../tasks/receive-push/receive-push';
import { PROVIDERS } from '../tasks/receive-push/push';
import { sfnStarter } from '../tasks/receive-push/start-execution';
import { readOrMakeSecret } from './local-secret';
import { WEBHOOK_PATH_PREFIX, webhookSecretFile } from './push-hook';
import { answerFunctionUrl } from './function-url';
import { LOCAL_S3_CREDENTIALS } from './s3-client';

export { WEBHOOK_PATH_PREFIX, webhookSecretFile };

/**
 * The webhooks of `local serve`: the same receiver as the Lambda function URL (tasks/receive-push),
 * starting executions through the local Step Functions API with the same SDK call. The secret is
 * generated on first use and kept in `.stepdeploy/webhook-secret` (never in the repository).
 */

/** The local webhook secret: read, or made once (readable by this user only). */
export function localWebhookSecret(home: string): string {
  return readOrMakeSecret(webhookSecretFile(home));
}

export function webhookUrls(endpoint: string): string[] {
  return PROVIDERS.map((provider) => `${endpoint}${WEBHOOK_PATH_PREFIX}${provider}`);
}

export interface LocalWebhooksOptions {
  readonly config: PipelineConfig;
  readonly configPath: string;
  readonly home: string;
  readonly endpoint: string;
  readonly stateMachineArn: string;
  readonly region: string;
  readonly log: (line: string) => void;
}

export interface LocalWebhooks {
  readonly handle: (req: IncomingMessage, res: ServerResponse) => void;
  close(): void;
}

export function localWebhooks(options: LocalWebhooksOptions): LocalWebhooks {
  const sfn = new SFNClient({ endpoint: options.endpoint, region: options.region, credentials: LOCAL_S3_CREDENTIALS });
  const deps: ReceiverDeps = {
    config: options.config,
    configPath: options.configPath,
    secret: async () => localWebhookSecret(options.home),
    startExecution: sfnStarter(sfn, options.stateMachineArn),
    log: options.log,
  };
  const handle = (req: IncomingMessage, res: ServerResponse): void =>
    answerFunctionUrl(
      req,
      res,
      MAX_WEBHOOK_BODY_BYTES,
      (request) => receiveWebhook(request, deps),
      (err) => {
        options.log(`webhook receiver: ${err.name}: ${err.message}`);
        return {
          statusCode: 500,
          body: JSON.stringify({ message: 'the receiver failed; the delivery may be retried' }),
        };
      },
    );
  return { handle, close: () => sfn.destroy() };
}

const HOOK_MARK = '# stepdeploy push hook';

/**
 * The example repositories' post-receive hook: each pushed branch goes, signed as a GitHub push
 * event, to every running `local serve` (local/post-receive.js). Rewritten when it differs, so a
 * moved checkout or another Node.js keeps working; a hook someone else wrote is left alone.
 */
export function installPushHooks(repositories: ReadonlyArray<string>, home: string): string[] {
  const script = `#!/bin/sh
${HOOK_MARK}: posts each pushed branch to the running \`stepdeploy local serve\` (README "Deploy on push").
exec ${shellQuote(process.execPath)} ${shellQuote(join(__dirname, 'post-receive.js'))} ${shellQuote(home)}
`;
  const written: string[] = [];
  for (const repository of repositories) {
    const hook = join(repository, 'hooks', 'post-receive');
    const current = existsSync(hook) ? readFileSync(hook, 'utf8') : undefined;
    if (current === script || (current !== undefined && !current.includes(HOOK_MARK))) continue;
    mkdirSync(dirname(hook), { recursive: true });
    writeFileSync(hook, script);
    chmodSync(hook, 0o755);
    written.push(hook);
  }
  return written;
}

function shellQuote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}
