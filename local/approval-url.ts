import type { IncomingMessage, ServerResponse } from 'node:http';
import { LOCAL_APPROVAL_PATH, LOCAL_IDENTITY_HEADER } from '../shared/local-approval';

/**
 * The decide-approval function's URL, locally: a path of the local endpoint instead of
 * `https://<id>.lambda-url.<region>.on.aws/`. On AWS the function URL (AuthType AWS_IAM) tells the
 * function who signed the request; the local runtime has no IAM, so the caller names itself in a
 * header (the CLI sends the git user) and this front end turns it into the same
 * `requestContext.authorizer.iam`. Without the header it answers 403, as an unsigned request to an
 * AWS_IAM URL gets.
 */
export { LOCAL_APPROVAL_PATH, LOCAL_IDENTITY_HEADER };
const LOCAL_ACCOUNT = '000000000000';

/** The IAM-user-like ARN the local runtime gives a git user (IAM user names allow the characters of an e-mail). */
export function localIdentityArn(user: string): string {
  return `arn:aws:iam::${LOCAL_ACCOUNT}:user/${user.replace(/[^\w+=,.@-]/g, '_')}`;
}

type FunctionUrlHandler = (
  event: unknown,
) => Promise<{ statusCode: number; headers?: Record<string, string>; body?: string }>;

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function send(res: ServerResponse, statusCode: number, body: string, contentType = 'application/json'): void {
  res.writeHead(statusCode, { 'Content-Type': contentType, 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}

/** Answers one request to the local function URL with the function's response (payload format 2.0). */
export async function serveApprovalUrl(
  req: IncomingMessage,
  res: ServerResponse,
  handler: () => FunctionUrlHandler,
): Promise<void> {
  const identity = req.headers[LOCAL_IDENTITY_HEADER];
  if (typeof identity !== 'string' || identity.trim() === '') {
    send(res, 403, JSON.stringify({ Message: `Forbidden: no identity (the ${LOCAL_IDENTITY_HEADER} header)` }));
    return;
  }
  const body = await readBody(req);
  const userArn = localIdentityArn(identity.trim());
  const event = {
    version: '2.0',
    rawPath: '/',
    rawQueryString: '',
    headers: { 'content-type': String(req.headers['content-type'] ?? '') },
    requestContext: {
      accountId: LOCAL_ACCOUNT,
      http: { method: req.method ?? 'GET', path: '/', protocol: 'HTTP/1.1', sourceIp: '127.0.0.1', userAgent: '' },
      authorizer: {
        iam: {
          accessKey: 'LOCAL',
          accountId: LOCAL_ACCOUNT,
          callerId: identity.trim(),
          userArn,
          userId: identity.trim(),
        },
      },
      requestId: '',
      time: new Date().toISOString(),
      timeEpoch: Date.now(),
    },
    body,
    isBase64Encoded: false,
  };
  try {
    const response = await handler()(event);
    send(res, response.statusCode, response.body ?? '', response.headers?.['content-type'] ?? 'application/json');
  } catch (err) {
    // A function error reaches a function URL's caller as 502, its message only in the function's logs.
    console.error(`decide-approval failed: ${(err as Error).message}`);
    send(res, 502, JSON.stringify({ Message: 'Internal Server Error' }));
  }
}
