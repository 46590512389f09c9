import { GetObjectCommand, NoSuchKey, type S3Client } from '@aws-sdk/client-s3';
import type { AwsClientStub } from 'aws-sdk-client-mock';

/** GetObject answers each key of `map` with its value as JSON (ETag "e1"), any other key with S3's NoSuchKey. */
export function serveJsonObjects(s3Mock: AwsClientStub<S3Client>, map: Record<string, unknown>): void {
  s3Mock.on(GetObjectCommand).callsFake((input: { Key: string }) => {
    if (!(input.Key in map)) throw new NoSuchKey({ message: 'The specified key does not exist.', $metadata: {} });
    return { ETag: '"e1"', Body: { transformToString: async () => JSON.stringify(map[input.Key]) } };
  });
}
