import { connect } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { BUCKET, s3server, useLocalS3 } from './helpers';

useLocalS3();

describe('local S3 connections', () => {
  test("keeps an idle keep-alive connection open past Node's default 5 s, so that a client reusing it never races its close", async () => {
    const { port } = new URL(s3server.endpoint);
    const socket = connect(Number(port), '127.0.0.1');
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    // A reset by the server ends up as 'closed by the server' below, not as an unhandled error.
    socket.on('error', () => undefined);
    let received = '';
    socket.on('data', (chunk: Buffer) => (received += chunk.toString()));
    const answers = async (count: number): Promise<void> => {
      while ((received.match(/HTTP\/1\.1 200/g) ?? []).length < count) await sleep(20);
    };
    const head = `HEAD /${BUCKET} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: keep-alive\r\n\r\n`;
    try {
      socket.write(head);
      await answers(1);
      expect(received).not.toMatch(/keep-alive: timeout=/i);
      // Idle for longer than Node's default keepAliveTimeout (5 s), which Node 20 enforces 1 s late, then used again.
      const idle = await Promise.race([
        closed.then(() => 'closed by the server'),
        sleep(6_500).then(() => 'still open'),
      ]);
      expect(idle).toBe('still open');
      socket.write(head);
      await answers(2);
    } finally {
      socket.destroy();
    }
  }, 15_000);
});
