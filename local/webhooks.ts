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
  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    readAtMost(req, MAX_WEBHOOK_BODY_BYTES)
      .then((body) =>
        body === undefined
          ? { statusCode: 413, body: JSON.stringify({ message: `the body is over ${MAX_WEBHOOK_BODY_BYTES} bytes` }) }
          : receiveWebhook(
              {
                method: req.method ?? 'GET',
                path: new URL(req.url ?? '/', 'http://127.0.0.1').pathname,
                headers: Object.fromEntries(
                  Object.entries(req.headers).map(([k, v]) => [k, Array.isArray(v) ? v.join(', ') : v]),
                ),
                body,
              },
              deps,
            ),
      )
      .catch((err: unknown) => {
        options.log(`webhook receiver: ${(err as Error).name}: ${(err as Error).message}`);
        return {
          statusCode: 500,
          body: JSON.stringify({ message: 'the receiver failed; the delivery may be retried' }),
        };
      })
      .then(({ statusCode, body }) => {
        res.writeHead(statusCode, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
        res.end(body);
      });
  };
  return { handle, close: () => sfn.destroy() };
}

/** The body, or undefined as soon as it passes `limit` bytes (the rest is not read into memory). */
export function readAtMost(req: IncomingMessage, limit: number): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        req.removeAllListeners('data');
        req.resume();
        resolve(undefined);
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
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
