import { z } from 'zod';

/**
 * A Lambda function URL's request (payload format 2.0), as the functions behind one read it:
 * header names in lowercase, the body as the bytes that were sent (a signature is over those).
 */
export const functionUrlEventSchema = z.object({
  headers: z.record(z.string(), z.string()).default({}),
  body: z.string().optional(),
  isBase64Encoded: z.boolean().default(false),
  requestContext: z.object({ http: z.object({ method: z.string() }) }),
});

export interface FunctionUrlRequest {
  readonly method: string;
  /** Lowercase names. */
  readonly headers: Readonly<Record<string, string>>;
  /** The raw body, byte for byte as sent. */
  readonly body: Buffer;
}

export function functionUrlRequest(event: z.infer<typeof functionUrlEventSchema>): FunctionUrlRequest {
  return {
    method: event.requestContext.http.method,
    headers: Object.fromEntries(Object.entries(event.headers).map(([k, v]) => [k.toLowerCase(), v])),
    body: Buffer.from(event.body ?? '', event.isBase64Encoded ? 'base64' : 'utf8'),
  };
}
