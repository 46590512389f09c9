import { join } from 'node:path';
import { ExitCode } from '../../cli/exit-codes';
import { processIo } from '../../cli/io';
import { main, runCli } from '../../cli/main';

/** The writer every command uses unless a test passes its own: the process's stdout and stderr. */

const CONFIG = join(__dirname, '..', '..', 'stepdeploy.config.yml');
const BAD_NAME = [
  'node',
  'stepdeploy',
  '--config',
  CONFIG,
  '--region',
  'eu-west-1',
  'start',
  '--env',
  'acceptance',
  '--name',
  'a/b',
];
const BAD_NAME_LINE =
  'stepdeploy: --name "a/b" is not a valid execution name: it must be 1-80 letters, digits, "_" or "-" (it becomes part of S3 keys), e.g. --name a_b\n';

let stdout: jest.SpyInstance;
let stderr: jest.SpyInstance;
beforeEach(() => {
  stdout = jest.spyOn(process.stdout, 'write').mockImplementation(() => true);
  stderr = jest.spyOn(process.stderr, 'write').mockImplementation(() => true);
});
afterEach(() => {
  stdout.mockRestore();
  stderr.mockRestore();
});

const written = (spy: jest.SpyInstance): string[] => spy.mock.calls.map(([text]) => String(text));

it('runCli prints help to stdout and an error line to stderr through processIo by default', async () => {
  const help = await runCli(['node', 'stepdeploy', '--help']);
  const bad = await runCli(BAD_NAME);

  expect([help, bad]).toEqual([ExitCode.Ok, ExitCode.Usage]);
  expect(written(stdout).join('')).toMatch(
    /^Usage: stepdeploy \[options\] \[command\][\s\S]*Exit codes:\n {2}0 {4}success/,
  );
  expect(written(stderr)).toContain(BAD_NAME_LINE);
  expect(written(stdout).join('')).not.toContain('is not a valid execution name');
});

it('main sets process.exitCode from the command', async () => {
  const before = process.exitCode;
  try {
    main(BAD_NAME);
    for (let i = 0; process.exitCode === before && i < 100; i++) await new Promise((tick) => setTimeout(tick, 20));

    expect(process.exitCode).toBe(ExitCode.Usage);
    expect(written(stderr)).toContain(BAD_NAME_LINE);
  } finally {
    process.exitCode = before;
  }
});

it('processIo tells a terminal and reads its width at each use', () => {
  const io = processIo();
  const columns = Object.getOwnPropertyDescriptor(process.stdout, 'columns');
  try {
    Object.defineProperty(process.stdout, 'columns', { value: 91, configurable: true });
    expect(io.columns).toBe(91);
    Object.defineProperty(process.stdout, 'columns', { value: 120, configurable: true });
    expect(io.columns).toBe(120);
  } finally {
    if (columns) Object.defineProperty(process.stdout, 'columns', columns);
    else delete (process.stdout as { columns?: number }).columns;
  }
  expect(io.isTTY).toBe(process.stdout.isTTY === true);
});
