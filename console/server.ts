import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { CliError } from '../cli/errors';
import { ExitCode } from '../cli/exit-codes';
import type { ConsoleBackend } from './backend';
import { pageBundle } from './bundle';
import { foreignRefusal, type Refusal, refusal } from './guard';
import type { FormOptions, StartRequest } from './api-types';

/**
 * The console's HTTP side: the page at `/` (HTML, one bundled script, one stylesheet, all from
 * this process: nothing from a CDN) and its JSON API under `/console/api/`. The page renders every
 * string as text; the headers forbid anything else to run (CSP: scripts only from here, no inline
 * script, no framing).
 */

/** Handles a request if it is the console's; false when it is not (the local endpoint's AWS APIs). */
export type ConsoleHandler = (req: IncomingMessage, res: ServerResponse) => boolean;

const SECURITY_HEADERS = {
  'Content-Security-Policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'X-Content-Type-Options': 'nosniff',
  'X-Frame-Options': 'DENY',
  'Referrer-Policy': 'no-referrer',
  'Cache-Control': 'no-store',
};

const INDEX = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>stepdeploy console</title>
<link rel="stylesheet" href="/console/app.css">
</head>
<body>
<div id="app"></div>
<script src="/console/app.js"></script>
</body>
</html>
`;

const MAX_BODY_BYTES = 64 * 1024;

function send(res: ServerResponse, status: number, type: string, body: string | Buffer): void {
  res.writeHead(status, { ...SECURITY_HEADERS, 'Content-Type': type, 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}

function json(res: ServerResponse, status: number, value: unknown): void {
  send(res, status, 'application/json; charset=utf-8', JSON.stringify(value));
}

async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) throw new BadRequest(`request body over ${MAX_BODY_BYTES} bytes`);
    chunks.push(chunk as Buffer);
  }
  try {
    const value = JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
    if (value !== null && typeof value === 'object' && !Array.isArray(value)) return value as Record<string, unknown>;
  } catch {
    // answered below
  }
  throw new BadRequest('the body must be a JSON object');
}

class BadRequest extends Error {
  override readonly name = 'BadRequest';
}

function requiredString(value: unknown, field: string): string {
  if (typeof value !== 'string' || value === '') throw new BadRequest(`${field} is required`);
  return value;
}

/** One line for the page: the service's error name and message, never a stack or request details. */
function serviceMessage(err: unknown): string {
  const e = err as { name?: string; message?: string };
  return `${e.name ?? 'Error'}: ${e.message ?? String(err)}`;
}

export interface ConsoleServerOptions {
  /** The port the page is served on (Host and Origin must name it). */
  readonly port: () => number;
  /** Where the calls go, shown in the page header. */
  readonly target: string;
  /** How often the page refreshes what is running. */
  readonly pollMs: number;
}

export function createConsoleHandler(backend: ConsoleBackend, options: ConsoleServerOptions): ConsoleHandler {
  const css = readFileSync(join(__dirname, 'page', 'style.css'));
  const routes: Record<string, (req: IncomingMessage, url: URL) => Promise<unknown>> = {
    'GET /console/api/options': async (): Promise<FormOptions> => ({
      ...backend.formOptions(),
      target: options.target,
      pollMs: options.pollMs,
    }),
    'GET /console/api/environments': () => backend.environments(),
    'GET /console/api/executions': async (_req, url) =>
      backend.executions({
        environment: url.searchParams.get('environment') || undefined,
        status: url.searchParams.get('status') || undefined,
      }),
    'GET /console/api/execution': async (_req, url) =>
      backend.execution(requiredString(url.searchParams.get('arn'), 'arn')),
    'GET /console/api/build-log': async (_req, url) =>
      backend.buildLog(
        requiredString(url.searchParams.get('id'), 'id'),
        Math.max(0, Number.parseInt(url.searchParams.get('from') ?? '0', 10) || 0),
      ),
    'POST /console/api/validate': async (req) => backend.start((await readJson(req)) as StartRequest, true),
    'POST /console/api/start': async (req) => backend.start((await readJson(req)) as StartRequest, false),
    'POST /console/api/redrive': async (req) => {
      await backend.redrive(requiredString((await readJson(req)).executionArn, 'executionArn'));
      return {};
    },
    'POST /console/api/approve': async (req) => {
      const body = await readJson(req);
      return backend.decide({
        executionArn: requiredString(body.executionArn, 'executionArn'),
        action: 'approve',
        ...(typeof body.comment === 'string' && body.comment.trim() !== '' ? { comment: body.comment } : {}),
      });
    },
    'POST /console/api/reject': async (req) => {
      const body = await readJson(req);
      return backend.decide({
        executionArn: requiredString(body.executionArn, 'executionArn'),
        action: 'reject',
        reason: requiredString(typeof body.reason === 'string' ? body.reason.trim() : undefined, 'reason'),
      });
    },
    'POST /console/api/rollback': async (req) => {
      const body = await readJson(req);
      return backend.rollback({
        environment: requiredString(body.environment, 'environment'),
        ...(body.to !== undefined ? { to: requiredString(body.to, 'to') } : {}),
      });
    },
    'POST /console/api/stop': async (req) => {
      const body = await readJson(req);
      await backend.stop(
        requiredString(body.executionArn, 'executionArn'),
        typeof body.cause === 'string' ? body.cause : undefined,
      );
      return {};
    },
  };

  const refuse = (res: ServerResponse, refused: Refusal): true => {
    send(res, refused.status, 'text/plain; charset=utf-8', `refused: ${refused.reason}\n`);
    return true;
  };
  return (req, res) => {
    const foreign = foreignRefusal(req, options.port());
    if (foreign) return refuse(res, foreign);
    // Signed calls and calls with a target header are AWS API calls (the local endpoint's).
    if (req.headers.authorization !== undefined || req.headers['x-amz-target'] !== undefined) return false;
    const url = new URL(req.url ?? '/', 'http://console');
    if (url.pathname !== '/' && !url.pathname.startsWith('/console/')) return false;
    const refused = refusal(req, options.port());
    if (refused) return refuse(res, refused);
    if (req.method === 'GET' && url.pathname === '/') send(res, 200, 'text/html; charset=utf-8', INDEX);
    else if (req.method === 'GET' && url.pathname === '/console/app.css')
      send(res, 200, 'text/css; charset=utf-8', css);
    else if (req.method === 'GET' && url.pathname === '/console/app.js')
      pageBundle().then(
        (js) => send(res, 200, 'text/javascript; charset=utf-8', js),
        (err: unknown) =>
          send(res, 500, 'text/plain; charset=utf-8', `the page could not be built: ${serviceMessage(err)}\n`),
      );
    else {
      const route = routes[`${req.method} ${url.pathname}`];
      if (!route) json(res, 404, { error: `no such page: ${req.method} ${url.pathname}` });
      else
        route(req, url).then(
          (value) => json(res, 200, value),
          (err: unknown) => {
            if (err instanceof BadRequest) json(res, 400, { error: err.message });
            // The CLI's own refusals (a decision refused, nothing to roll back): their one line as it is.
            else if (err instanceof CliError)
              json(res, err.exitCode === ExitCode.Usage ? 400 : 409, { error: err.message });
            else json(res, 502, { error: serviceMessage(err) });
          },
        );
    }
    return true;
  };
}

/** `stepdeploy console`: the console on its own server, 127.0.0.1 only. */
export async function listenConsole(
  backend: ConsoleBackend,
  port: number,
  shown: Omit<ConsoleServerOptions, 'port'>,
): Promise<{ readonly url: string; readonly server: Server }> {
  let actual = port;
  const handle = createConsoleHandler(backend, { ...shown, port: () => actual });
  const server = createServer((req, res) => {
    if (!handle(req, res)) json(res, 404, { error: 'not a console page' });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  actual = (server.address() as AddressInfo).port;
  return { url: `http://127.0.0.1:${actual}/`, server };
}
