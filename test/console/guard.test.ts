import type { IncomingMessage } from 'node:http';
import { refusal } from '../../console/guard';

const PORT = 4598;

function request(method: string, headers: Record<string, string>): IncomingMessage {
  return { method, headers } as unknown as IncomingMessage;
}

describe('console guard: Host and Origin', () => {
  test.each([
    ['GET', { host: '127.0.0.1:4598' }],
    ['GET', { host: 'localhost:4598', origin: 'http://localhost:4598' }],
    ['POST', { host: '127.0.0.1:4598', origin: 'http://127.0.0.1:4598', 'content-type': 'application/json' }],
    ['POST', { host: '127.0.0.1:4598', 'sec-fetch-site': 'same-origin', 'content-type': 'application/json' }],
  ])('lets %s %j through', (method, headers) => {
    expect(refusal(request(method, headers), PORT)).toBeUndefined();
  });

  test.each([
    ['GET', { host: 'evil.example:4598' }, /Host "evil.example:4598" is not this console/],
    ['GET', { host: '127.0.0.1:80' }, /Host "127.0.0.1:80"/],
    ['GET', {}, /Host ""/],
    ['GET', { host: '127.0.0.1:4598', origin: 'http://evil.example' }, /Origin "http:\/\/evil.example"/],
    ['GET', { host: '127.0.0.1:4598', origin: 'null' }, /Origin "null"/],
    ['GET', { host: '127.0.0.1:4598', 'sec-fetch-site': 'cross-site' }, /cross-site/],
    ['POST', { host: '127.0.0.1:4598', 'content-type': 'application/json' }, /no Origin/],
    [
      'POST',
      { host: '127.0.0.1:4598', origin: 'http://127.0.0.1:4598', 'content-type': 'text/plain' },
      /expected application\/json/,
    ],
  ])('fails %s %j', (method, headers, reason) => {
    expect(refusal(request(method, headers), PORT)?.reason).toMatch(reason);
  });
});
