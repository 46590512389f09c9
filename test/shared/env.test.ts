import { EnvironmentVariableError } from '../../shared/errors';
import { clientSettings, numberEnv, optionalEnv, requireEnv } from '../../shared/env';

/** One helper reads every environment variable: unset, empty, a number, and what is not one. */

const NAME = 'STEPDEPLOY_TEST_VARIABLE';

describe('numberEnv', () => {
  it('reads a whole number, and takes the default when unset or empty', () => {
    const options = { default: 4200, min: 1, unit: 'seconds' };

    expect(numberEnv({ [NAME]: '600' }, NAME, options)).toBe(600);
    expect(numberEnv({ [NAME]: '' }, NAME, options)).toBe(4200);
    expect(numberEnv({}, NAME, options)).toBe(4200);
  });

  it.each(['70m', 'abc', '1.5', '0', '-5', 'Infinity', ' '])(
    'fails on %j naming the variable, the value and the fix (never a NaN or a silent default)',
    (value) => {
      const read = () => numberEnv({ [NAME]: value }, NAME, { default: 4200, min: 1, max: 86400, unit: 'seconds' });

      expect(read).toThrow(EnvironmentVariableError);
      expect(read).toThrow(
        `${NAME} environment variable is ${JSON.stringify(value)}, not a whole number from 1 to 86400 (seconds): set it to one, or unset it for the default 4200`,
      );
    },
  );
});

describe('requireEnv and optionalEnv', () => {
  it('requireEnv names the variable that is not set; empty counts as not set', () => {
    const env = { [NAME]: '' };

    expect(() => requireEnv(env, NAME)).toThrow(
      new EnvironmentVariableError(`${NAME} environment variable is not set`),
    );
    expect(optionalEnv(env, NAME)).toBeUndefined();
  });

  it('returns the value as it is', () => {
    const env = { [NAME]: 'bucket-1' };

    expect(requireEnv(env, NAME)).toBe('bucket-1');
    expect(optionalEnv(env, NAME)).toBe('bucket-1');
  });

  it('reads the environment it is given, never process.env', () => {
    process.env[NAME] = 'from-the-process';
    try {
      expect(optionalEnv({}, NAME)).toBeUndefined();
      expect(() => requireEnv({}, NAME)).toThrow(`${NAME} environment variable is not set`);
    } finally {
      delete process.env[NAME];
    }
  });
});

describe('clientSettings', () => {
  const lambda = {
    AWS_REGION: 'eu-west-1',
    AWS_ACCESS_KEY_ID: 'AKIAEXAMPLE',
    AWS_SECRET_ACCESS_KEY: 'secret',
    AWS_SESSION_TOKEN: 'token',
  };

  it("takes the region and the credentials Lambda sets in the function's environment", () => {
    expect(clientSettings(lambda, 'SFN')).toEqual({
      region: 'eu-west-1',
      credentials: { accessKeyId: 'AKIAEXAMPLE', secretAccessKey: 'secret', sessionToken: 'token' },
    });
  });

  it("takes the service's own endpoint over the general one, and S3's checksum settings for S3 only", () => {
    const env = {
      AWS_ENDPOINT_URL: 'http://127.0.0.1:1',
      AWS_ENDPOINT_URL_S3: 'http://127.0.0.1:2',
      AWS_REQUEST_CHECKSUM_CALCULATION: 'when_required',
      AWS_RESPONSE_CHECKSUM_VALIDATION: 'WHEN_SUPPORTED',
    };

    expect(clientSettings(env, 'S3')).toEqual({
      endpoint: 'http://127.0.0.1:2',
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_SUPPORTED',
    });
    expect(clientSettings(env, 'CODEBUILD')).toEqual({ endpoint: 'http://127.0.0.1:1' });
  });

  it('leaves to the SDK what the environment does not set: nothing at all from an empty one', () => {
    expect(clientSettings({ AWS_ACCESS_KEY_ID: 'AKIAEXAMPLE' }, 'S3')).toEqual({});
  });

  it('refuses a checksum setting the SDK does not know, naming the variable and the values', () => {
    expect(() => clientSettings({ AWS_REQUEST_CHECKSUM_CALCULATION: 'never' }, 'S3')).toThrow(
      'AWS_REQUEST_CHECKSUM_CALCULATION environment variable is "never": set it to when_supported or when_required, or unset it',
    );
  });
});
