import type { IncomingMessage, ServerResponse } from 'node:http';

/**
 * A function URL of the stack, answered by `local serve`: the body read up to the limit the
 * function checks (413 over it, the rest not read into memory), the request handed over as the
 * function's logic takes it (method, path, header names in lowercase as Node gives them, raw body),
 * and its answer written as JSON. A throw becomes `failure(err)`, as the function's own error would.
 */

export interface LocalFunctionRequest {
  readonly method: string;
  /** Without the query string. */
  readonly path: string;
  readonly headers: Readonly<Record<string, string | undefined>>;
  readonly body: Buffer;
}

export interface LocalFunctionResponse {
  readonly statusCode: number;
  readonly body: string;
}

export function answerFunctionUrl(
  req: IncomingMessage,
  res: ServerResponse,
  limit: number,
  call: (request: LocalFunctionRequest) => Promise<LocalFunctionResponse>,
  failure: (err: Error) => LocalFunctionResponse,
): void {
  readAtMost(req, limit)
    .then((body) =>
      body === undefined
        ? { statusCode: 413, body: JSON.stringify({ message: `the body is over ${limit} bytes` }) }
        : call({
            method: req.method ?? 'GET',
            path: new URL(req.url ?? '/', 'http://127.0.0.1').pathname,
            headers: Object.fromEntries(
              Object.entries(req.headers).map(([k, v]) => [k, Array.isArray(v) ? v.join(', ') : v]),
            ),
            body,
          }),
    )
    .catch((err: unknown) => failure(err as Error))
    .then(({ statusCode, body }) => {
      res.writeHead(statusCode, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
      res.end(body);
    });
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
