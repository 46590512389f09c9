import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { mockClient } from 'aws-sdk-client-mock';
import 'aws-sdk-client-mock-jest';
import { cachedSecret } from '../../../tasks/shared/secret';

const sm = mockClient(SecretsManagerClient);

beforeEach(() => {
  sm.reset();
});

function reader(now: () => number) {
  return cachedSecret(new SecretsManagerClient({}), 'stepdeploy/slack-signing', {
    what: 'the Slack signing secret',
    expected: 'a secret string',
    parse: (value) => (value === '' ? undefined : value),
    error: (message, options) => new Error(message, options),
    ttlMs: 60_000,
    minRefreshMs: 10_000,
    now,
  });
}

describe('cachedSecret', () => {
  it('reads once per ttl; a fresh read reads again (a rotated secret), but at most once per minRefreshMs', async () => {
    sm.on(GetSecretValueCommand)
      .resolvesOnce({ SecretString: 'old' })
      .resolvesOnce({ SecretString: 'rotated' })
      .resolves({ SecretString: 'third' });
    let now = 0;
    const secret = reader(() => now);

    expect(await secret()).toBe('old');
    now = 5_000;
    expect(await secret()).toBe('old');
    expect(await secret({ fresh: true })).toBe('old');
    expect(sm).toHaveReceivedCommandTimes(GetSecretValueCommand, 1);
    now = 10_000;
    expect(await secret({ fresh: true })).toBe('rotated');
    now = 15_000;
    expect(await secret({ fresh: true })).toBe('rotated');
    expect(await secret()).toBe('rotated');
    expect(sm).toHaveReceivedCommandTimes(GetSecretValueCommand, 2);
    now = 70_000;
    expect(await secret()).toBe('third');
    expect(sm).toHaveReceivedCommandWith(GetSecretValueCommand, { SecretId: 'stepdeploy/slack-signing' });
  });

  it('fails naming the secret and the error, never a value', async () => {
    sm.on(GetSecretValueCommand).rejects(Object.assign(new Error('denied'), { name: 'AccessDeniedException' }));

    await expect(reader(() => 0)()).rejects.toThrow(
      'cannot read the Slack signing secret stepdeploy/slack-signing: AccessDeniedException',
    );
  });
});
