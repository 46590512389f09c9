import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateBucketCommand, type S3Client } from '@aws-sdk/client-s3';
import S3rver from 's3rver';
import { localS3Client } from '../../local/s3';

/** A real S3 API (s3rver) on an ephemeral 127.0.0.1 port, with its data in a temp folder. */
export interface LocalS3 {
  /** A client configured the way s3rver needs (see TOOLCHAIN.md). */
  readonly client: S3Client;
  /** http://127.0.0.1:<port> */
  readonly endpoint: string;
  /** The variables that make a plain `new S3Client({})` talk to this server (for handler tests). */
  readonly env: Readonly<Record<string, string>>;
  createBucket(name: string): Promise<void>;
  /** Stops the server and deletes its data. */
  stop(): Promise<void>;
}

export interface StartS3rverOptions {
  /** Buckets to create before returning. @default [] */
  readonly buckets?: ReadonlyArray<string>;
}

export async function startS3rver(options: StartS3rverOptions = {}): Promise<LocalS3> {
  const directory = await mkdtemp(join(tmpdir(), 'stepdeploy-s3rver-'));
  const server = new S3rver({ address: '127.0.0.1', port: 0, directory, silent: true });
  const { port } = await server.run();
  const endpoint = `http://127.0.0.1:${port}`;
  const client = localS3Client(endpoint, 'eu-west-1');
  const env = {
    AWS_ENDPOINT_URL_S3: endpoint,
    AWS_REGION: 'eu-west-1',
    AWS_ACCESS_KEY_ID: 'S3RVER',
    AWS_SECRET_ACCESS_KEY: 'S3RVER',
    AWS_REQUEST_CHECKSUM_CALCULATION: 'when_required',
    AWS_RESPONSE_CHECKSUM_VALIDATION: 'when_required',
  };
  const createBucket = async (name: string): Promise<void> => {
    await client.send(new CreateBucketCommand({ Bucket: name }));
  };
  for (const bucket of options.buckets ?? []) await createBucket(bucket);
  return {
    client,
    endpoint,
    env,
    createBucket,
    stop: async () => {
      client.destroy();
      await server.close();
      await rm(directory, { recursive: true, force: true });
    },
  };
}
