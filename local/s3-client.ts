import { S3Client } from '@aws-sdk/client-s3';

/**
 * What a client of the local S3 (local/s3/) needs, apart from the server: code that only talks
 * to it (the bench's combine child, bundled as the Lambda is) loads the SDK and nothing of
 * s3rver's.
 */

export const LOCAL_S3_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } as const;

/**
 * An S3 client for the local S3: path-style (an IP endpoint), the fixed credentials, and checksums
 * only when required — with the SDK's default (WHEN_SUPPORTED) s3rver stores the aws-chunked
 * framing of a stream upload as data.
 */
export function localS3Client(endpoint: string, region = 'us-east-1'): S3Client {
  return new S3Client({
    endpoint,
    region,
    forcePathStyle: true,
    credentials: LOCAL_S3_CREDENTIALS,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}

/** The environment that points `new S3Client({})` and the `aws` CLI at the local S3. */
export function localS3Environment(endpoint: string): Record<string, string> {
  return {
    AWS_ENDPOINT_URL_S3: endpoint,
    AWS_ACCESS_KEY_ID: LOCAL_S3_CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: LOCAL_S3_CREDENTIALS.secretAccessKey,
    // s3rver stores aws-chunked framing as data unless checksums are only sent when required.
    AWS_REQUEST_CHECKSUM_CALCULATION: 'when_required',
    AWS_RESPONSE_CHECKSUM_VALIDATION: 'when_required',
  };
}
