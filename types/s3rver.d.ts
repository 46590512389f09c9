// s3rver 3.7 ships no type declarations; this covers what stepdeploy uses.
declare module 's3rver' {
  import type { IncomingMessage, ServerResponse } from 'node:http';
  import type { AddressInfo } from 'node:net';

  interface S3rverOptions {
    address?: string;
    port?: number;
    directory?: string;
    silent?: boolean;
    resetOnClose?: boolean;
    allowMismatchedSignatures?: boolean;
    vhostBuckets?: boolean;
    configureBuckets?: Array<{ name: string; configs?: Array<string | Buffer> }>;
  }

  interface FilesystemStore {
    existsObject(bucket: string, key: string): Promise<boolean>;
    getMetadata(bucket: string, key: string): Promise<Record<string, string | number>>;
    getBucket(bucket: string): Promise<{ name: string } | null>;
    putBucket(bucket: string): Promise<unknown>;
  }

  class S3rver {
    constructor(options?: S3rverOptions);
    readonly store: FilesystemStore;
    run(): Promise<AddressInfo>;
    close(): Promise<void>;
    /** Koa's handler: its promise settles when s3rver's middleware (the store's work) has ended. */
    callback(): (req: IncomingMessage, res: ServerResponse) => Promise<void>;
    configureBuckets(): Promise<void>;
  }
  export = S3rver;
}
