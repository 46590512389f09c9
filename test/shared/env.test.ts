import { EnvironmentVariableError } from '../../shared/errors';
import { numberEnv, optionalEnv, requireEnv } from '../../shared/env';

/** One helper reads every environment variable: unset, empty, a number, and what is not one. */

const NAME = 'STEPDEPLOY_TEST_VARIABLE';

afterEach(() => {
  delete process.env[NAME];
});

describe('numberEnv', () => {
  it('reads a whole number, and takes the default when unset or empty', () => {
    const options = { default: 4200, min: 1, unit: 'seconds' };

    process.env[NAME] = '600';
    expect(numberEnv(NAME, options)).toBe(600);
    process.env[NAME] = '';
    expect(numberEnv(NAME, options)).toBe(4200);
    delete process.env[NAME];
    expect(numberEnv(NAME, options)).toBe(4200);
  });

  it.each(['70m', 'abc', '1.5', '0', '-5', 'Infinity', ' '])(
    'fails on %j naming the variable, the value and the fix (never a NaN or a silent default)',
    (value) => {
      process.env[NAME] = value;

      const read = () => numberEnv(NAME, { default: 4200, min: 1, max: 86400, unit: 'seconds' });

      expect(read).toThrow(EnvironmentVariableError);
      expect(read).toThrow(
        `${NAME} environment variable is ${JSON.stringify(value)}, not a whole number from 1 to 86400 (seconds): set it to one, or unset it for the default 4200`,
      );
    },
  );
});

describe('requireEnv and optionalEnv', () => {
  it('requireEnv names the variable that is not set; empty counts as not set', () => {
    process.env[NAME] = '';

    expect(() => requireEnv(NAME)).toThrow(new EnvironmentVariableError(`${NAME} environment variable is not set`));
    expect(optionalEnv(NAME)).toBeUndefined();
  });

  it('returns the value as it is', () => {
    process.env[NAME] = 'bucket-1';

    expect(requireEnv(NAME)).toBe('bucket-1');
    expect(optionalEnv(NAME)).toBe('bucket-1');
  });
});
