import type { Environment } from '../../../shared/env';
import { lambdaHandler } from '../../../tasks/shared/lambda';

/** Lambda's `handler`: one function per container, made from process.env at the first invocation. */

const NAME = 'STEPDEPLOY_TEST_LAMBDA_VARIABLE';

afterEach(() => {
  delete process.env[NAME];
});

test('makes the function once, at the first invocation, from process.env, and keeps it', async () => {
  const made: Environment[] = [];
  const handler = lambdaHandler((env) => {
    made.push(env);
    const value = env[NAME];
    return async (event: number) => `${value}:${event}`;
  });
  expect(made).toHaveLength(0);

  process.env[NAME] = 'first';
  await expect(handler(1)).resolves.toBe('first:1');
  process.env[NAME] = 'changed';
  await expect(handler(2)).resolves.toBe('first:2');

  expect(made).toEqual([process.env]);
});

test('a function that cannot be made fails that invocation, and is made again at the next', async () => {
  const handler = lambdaHandler((env) => {
    if (env[NAME] === undefined) throw new Error(`${NAME} environment variable is not set`);
    return async () => env[NAME];
  });

  await expect(handler()).rejects.toThrow(`${NAME} environment variable is not set`);
  process.env[NAME] = 'set';
  await expect(handler()).resolves.toBe('set');
});
