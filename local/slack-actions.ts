import type { IncomingMessage, ServerResponse } from 'node:http';
import { join } from 'node:path';
import { SFNClient } from '@aws-sdk/client-sfn';
import type { PipelineConfig } from '../shared/config';
import { isSlackResponseUrl, replyPoster } from '../tasks/slack-decision/respond';
import { handleSlackAction, MAX_SLACK_BODY_BYTES } from '../tasks/slack-decision/slack-decision';
import { type FunctionLogSink, withFunctionLogs } from './function-logs';
import { answerFunctionUrl } from './function-url';
import { readOrMakeSecret } from './local-secret';
import { artifactsBucketName } from './names';
import { LOCAL_S3_CREDENTIALS, localS3Client } from './s3-client';

/**
 * The Slack buttons' function URL, locally: `local serve` answers the same code as the
 * slack-decision function (tasks/slack-decision) at this path, deciding through the local S3 and
 * Step Functions API. The signing secret, which Slack gives the app and AWS keeps in Secrets
 * Manager, is made on first use and kept in `.stepdeploy/slack-signing-secret` (never in the
 * repository); the approvers are the config's.
 */
export const SLACK_ACTIONS_PATH = '/slack/actions';

export function slackSigningSecretFile(home: string): string {
  return join(home, 'slack-signing-secret');
}

export interface LocalSlackActionsOptions {
  readonly config: PipelineConfig;
  readonly home: string;
  readonly endpoint: string;
  readonly region: string;
  /** What the function writes to `console` (its log group on AWS). */
  readonly logs: FunctionLogSink;
}

export interface LocalSlackActions {
  readonly handle: (req: IncomingMessage, res: ServerResponse) => void;
  close(): void;
}

/** Replies go to Slack, or to a response URL on this machine (a test's stand-in for Slack). */
function localResponseUrl(url: URL): boolean {
  return isSlackResponseUrl(url) || (url.protocol === 'http:' && url.hostname === '127.0.0.1');
}

export function localSlackActions(options: LocalSlackActionsOptions): LocalSlackActions {
  const s3 = localS3Client(options.endpoint, options.region);
  const sfn = new SFNClient({ endpoint: options.endpoint, region: options.region, credentials: LOCAL_S3_CREDENTIALS });
  const slack = options.config.notifications.slack;
  // Made at start, so that `local serve` can say where it is before the first click.
  readOrMakeSecret(slackSigningSecretFile(options.home));
  const deps = {
    s3,
    sfn,
    bucket: artifactsBucketName(options.config),
    // Read at each request: a regenerated file counts at once, as a fresh Secrets Manager read would.
    signingSecret: async () => readOrMakeSecret(slackSigningSecretFile(options.home)),
    approvers: slack?.approvers ?? {},
    teamId: slack?.teamId,
    reply: replyPoster(localResponseUrl),
  };
  const source = { functionName: `${options.config.pipeline}-slack-decision` };
  const handle = (req: IncomingMessage, res: ServerResponse): void =>
    answerFunctionUrl(
      req,
      res,
      MAX_SLACK_BODY_BYTES,
      (request) => withFunctionLogs(source, options.logs, () => handleSlackAction(request, deps)),
      (err) => {
        // A function error reaches a function URL's caller as 502, its message only in the function's logs.
        options.logs(`slack-decision failed: ${err.name}: ${err.message}`, source);
        return { statusCode: 502, body: JSON.stringify({ Message: 'Internal Server Error' }) };
      },
    );
  return {
    handle,
    close: () => {
      s3.destroy();
      sfn.destroy();
    },
  };
}
