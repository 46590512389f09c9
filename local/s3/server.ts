import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createLocalS3Handler, type LocalS3Options, type RequestHandler } from './handler';

export interface LocalS3 {
  /** `http://127.0.0.1:PORT`: an IP makes the SDK use path-style addressing. */
  readonly endpoint: string;
  readonly port: number;
  close(): Promise<void>;
}

/**
 * Listens on 127.0.0.1 (never another interface: it has fixed, public credentials). An idle
 * keep-alive connection is never closed by the server, only by its client (or closeServer): with
 * Node's default of 5 s, a client that sent its next request on a connection just as the server
 * closed it got "socket hang up", which the SDK cannot retry when the body is a stream
 * (RELIABILITY.md, "socket hang up").
 */
export async function listenLocal(
  handler: RequestHandler,
  port = 0,
): Promise<{ server: Server; port: number; endpoint: string }> {
  const server = createServer({ keepAliveTimeout: 0 }, handler);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  const actual = (server.address() as AddressInfo).port;
  return { server, port: actual, endpoint: `http://127.0.0.1:${actual}` };
}

export function closeServer(server: Server): Promise<void> {
  return new Promise<void>((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  });
}

export async function startLocalS3(options: LocalS3Options): Promise<LocalS3> {
  const { server, port, endpoint } = await listenLocal(await createLocalS3Handler(options), options.port);
  return { endpoint, port, close: () => closeServer(server) };
}
