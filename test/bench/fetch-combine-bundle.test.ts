import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { bundledCombineChild } from '../../bench/fetch-combine';

/**
 * The bench's combine runs bundled as the Lambda is (infra/task-function.ts, `externalModules: []`):
 * with the pinned S3 client inside, not one found in node_modules at run time, so its memory and
 * start figures are those of the code Lambda runs.
 */
test('the combine child carries the pinned S3 client instead of requiring it', () => {
  const code = readFileSync(bundledCombineChild(), 'utf8');
  // The version the client reports (its user agent), as test/infra/pipeline-stack.test.ts reads it.
  const client = readFileSync(
    join(__dirname, '..', '..', 'node_modules', '@aws-sdk', 'client-s3', 'dist-cjs', 'index.js'),
    'utf8',
  );
  const version = /\bversion = "(\d+\.\d+\.\d+)"/.exec(client)![1]!;

  // Booleans: the bundle is a megabyte of one line, not a thing to print.
  expect(code.includes('require("@aws-sdk/client-s3")')).toBe(false);
  expect(code.includes(`"${version}"`)).toBe(true);
});
