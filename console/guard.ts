import type { IncomingMessage } from 'node:http';

/**
 * Who may talk to the console: only pages it served itself, on 127.0.0.1. A foreign `Host` is a
 * DNS-rebinding attempt (a hostile site's name resolved to 127.0.0.1) and a foreign `Origin` a
 * cross-site request (CSRF): both are refused before anything is read or started. A state-changing
 * request must also say where it comes from (`Origin`, or `Sec-Fetch-Site: same-origin`) and carry
 * JSON, which no cross-site HTML form can send.
 */

export type Refusal = { readonly status: 403 | 415; readonly reason: string };

const LOOPBACK_NAMES = ['127.0.0.1', 'localhost'];

export function allowedHosts(port: number): string[] {
  return LOOPBACK_NAMES.map((name) => `${name}:${port}`);
}

/** A foreign Host, Origin or cross-site fetch: refused on every request of the port, AWS API calls included. */
export function foreignRefusal(req: IncomingMessage, port: number): Refusal | undefined {
  const hosts = allowedHosts(port);
  const host = req.headers.host;
  if (host === undefined || !hosts.includes(host.toLowerCase()))
    return { status: 403, reason: `Host ${JSON.stringify(host ?? '')} is not this console (${hosts.join(' or ')})` };
  const origin = req.headers.origin;
  if (origin !== undefined && !hosts.some((h) => origin.toLowerCase() === `http://${h}`))
    return { status: 403, reason: `Origin ${JSON.stringify(origin)} is not this console` };
  const site = req.headers['sec-fetch-site'];
  if (site !== undefined && site !== 'same-origin' && site !== 'none')
    return { status: 403, reason: `cross-site request (Sec-Fetch-Site: ${site})` };
  return undefined;
}

/** The console's own requests: on top of the above, a write must come from its page, as JSON. */
export function refusal(req: IncomingMessage, port: number): Refusal | undefined {
  const foreign = foreignRefusal(req, port);
  if (foreign) return foreign;
  const { origin } = req.headers;
  const site = req.headers['sec-fetch-site'];
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    if (origin === undefined && site !== 'same-origin')
      return { status: 403, reason: 'a request that changes something must come from the console page (no Origin)' };
    const type = req.headers['content-type'] ?? '';
    if (!/^application\/json\b/i.test(type))
      return { status: 415, reason: `expected application/json, got ${JSON.stringify(type)}` };
  }
  return undefined;
}
