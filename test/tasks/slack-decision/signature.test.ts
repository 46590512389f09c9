import { execFileSync } from 'node:child_process';
import { MAX_REQUEST_AGE_SECONDS, signatureProblem, timestampProblem } from '../../../tasks/slack-decision/signature';

/** Slack's own example ("Verifying requests from Slack"): a slash command body, its timestamp, secret and signature. */
const SLACK_EXAMPLE = {
  secret: '8f742231b10e8888abcd99yyyzzz85a5',
  timestamp: '1531420618',
  body:
    'token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar' +
    '&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com' +
    '%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c',
  signature: 'v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503',
};

/** A second signer that shares no code with the one under test. */
function opensslSign(timestamp: string, body: string, secret: string): string {
  const out = execFileSync('openssl', ['dgst', '-sha256', '-hmac', secret], { input: `v0:${timestamp}:${body}` });
  return `v0=${/([0-9a-f]{64})\s*$/.exec(out.toString())![1]}`;
}

describe('signatureProblem', () => {
  it("accepts Slack's documented example", () => {
    const { signature, timestamp, body, secret } = SLACK_EXAMPLE;

    expect(signatureProblem(signature, timestamp, Buffer.from(body), secret)).toBeUndefined();
  });

  it('accepts what openssl signs, in either case of hex, with a body of any bytes', () => {
    const body = 'payload=%7B%22type%22%3A%22block_actions%22%7D&x=é$(rm -rf /)`;';
    const signature = opensslSign('1700000000', body, 's3cret');

    expect(signatureProblem(signature, '1700000000', Buffer.from(body), 's3cret')).toBeUndefined();
    expect(
      signatureProblem(`v0=${signature.slice(3).toUpperCase()}`, '1700000000', Buffer.from(body), 's3cret'),
    ).toBeUndefined();
  });

  it('fails when any of secret, timestamp or body differs by one character', () => {
    const { signature, timestamp, body, secret } = SLACK_EXAMPLE;
    const mismatch = 'X-Slack-Signature does not match the body and timestamp';

    expect(signatureProblem(signature, timestamp, Buffer.from(body), `${secret.slice(0, -1)}6`)).toBe(mismatch);
    expect(signatureProblem(signature, '1531420619', Buffer.from(body), secret)).toBe(mismatch);
    expect(signatureProblem(signature, timestamp, Buffer.from(`${body} `), secret)).toBe(mismatch);
  });

  it.each([
    [undefined, 'no X-Slack-Signature header'],
    ['', 'X-Slack-Signature is not "v0=" followed by 64 hexadecimal digits'],
    ['v1=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503', 'is not "v0="'],
    ['v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b5', 'is not "v0="'],
    ['v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b50300', 'is not "v0="'],
    ['v0=z2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503', 'is not "v0="'],
    ['sha256=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503', 'is not "v0="'],
  ])('fails on a malformed signature %p', (signature, problem) => {
    const { timestamp, body, secret } = SLACK_EXAMPLE;

    expect(signatureProblem(signature, timestamp, Buffer.from(body), secret)).toContain(problem);
  });
});

describe('timestampProblem', () => {
  const now = 1_800_000_000;

  it(`accepts a timestamp up to ${MAX_REQUEST_AGE_SECONDS} s either side of now`, () => {
    expect(timestampProblem(String(now), now)).toBeUndefined();
    expect(timestampProblem(String(now - 300), now)).toBeUndefined();
    expect(timestampProblem(String(now + 300), now)).toBeUndefined();
  });

  it('fails on one older or newer than that, saying by how much', () => {
    expect(timestampProblem(String(now - 301), now)).toBe(
      'X-Slack-Request-Timestamp is 301 s from now, more than 300 s (a replayed or delayed request)',
    );
    expect(timestampProblem(String(now + 301), now)).toContain('is 301 s from now');
  });

  it.each([undefined, '', '1.5e9', '-1800000000', ' 1800000000', '1800000000;', '0x6b49d200', '9999999999999'])(
    'fails on %p, which is not a Unix time in seconds',
    (timestamp) => {
      expect(timestampProblem(timestamp, now)).toMatch(
        /^(no X-Slack-Request-Timestamp header|X-Slack-Request-Timestamp is not a Unix time in seconds)$/,
      );
    },
  );
});
