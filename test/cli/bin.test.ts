import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { ListStateMachinesCommand, SFNClient } from '@aws-sdk/client-sfn';
import { parse, stringify } from 'yaml';
import { ExitCode } from '../../cli/exit-codes';
import { endpointFile } from '../../cli/endpoint-file';
import { LOCAL_S3_CREDENTIALS } from '../../local/s3';

/**
 * The `stepdeploy` binary as a user runs it (cli/bin.js: tsx, the real stdout/stderr writer,
 * process.exitCode): one line and the documented exit code for each kind of bad call, and
 * `local serve` starting, answering and stopping on a signal. No AWS call: the region-less case
 * has IMDS disabled, the others fail before a request or go to 127.0.0.1.
 */

const ROOT = resolve(__dirname, '..', '..');
const BIN = join(ROOT, 'cli', 'bin.js');
const CONFIG = join(ROOT, 'stepdeploy.config.yml');
const MACHINE = 'arn:aws:states:eu-west-1:111111111111:stateMachine:shop';
/** Starting tsx and the SDK takes seconds on a loaded machine; these bound a hang, not speed. */
const SPAWN_TIMEOUT_MS = 90_000;

/**
 * The environment of a user with no AWS setting at all: nothing inherited from jest's setup (fake
 * region and credentials, the SDK warning switch), no config files, no instance metadata.
 */
function bareEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('AWS_')));
  return {
    ...env,
    AWS_CONFIG_FILE: '/nonexistent',
    AWS_SHARED_CREDENTIALS_FILE: '/nonexistent',
    AWS_EC2_METADATA_DISABLED: 'true',
    ...extra,
  };
}

interface Run {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

function start(
  args: ReadonlyArray<string>,
  options: { env?: NodeJS.ProcessEnv; cwd?: string } = {},
): { child: ChildProcess; done: Promise<Run>; stdout: () => string } {
  const child = spawn(process.execPath, [BIN, ...args], {
    cwd: options.cwd ?? ROOT,
    env: options.env ?? bareEnv(),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const timer = setTimeout(() => child.kill('SIGKILL'), SPAWN_TIMEOUT_MS);
  const done = new Promise<Run>((resolveRun, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolveRun({ code, signal, stdout, stderr });
    });
  });
  return { child, done, stdout: () => stdout };
}

function stepdeploy(...args: string[]): Promise<Run> {
  return start(args).done;
}

async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((listening) => server.listen(0, '127.0.0.1', listening));
  const { port } = server.address() as { port: number };
  await new Promise((closed) => server.close(closed));
  return port;
}

describe('bad calls: one line on stderr, nothing on stdout, the documented exit code', () => {
  // Each spawn is seconds of tsx start-up: they run side by side.
  let runs: Record<string, Run>;
  let port: number;

  beforeAll(async () => {
    port = await closedPort();
    const cases: Record<string, string[]> = {
      name: [
        '--config',
        CONFIG,
        '--region',
        'eu-west-1',
        '--state-machine-arn',
        MACHINE,
        'start',
        '--env',
        'acceptance',
        '--name',
        'hotfix/42',
      ],
      arn: [
        '--config',
        CONFIG,
        '--region',
        'eu-west-1',
        '--state-machine-arn',
        MACHINE,
        'watch',
        'arn:aws:states:eu-west-1:111111111111:stateMachine:shop',
      ],
      region: ['--config', CONFIG, 'executions'],
      both: ['--config', CONFIG, '--local', '--endpoint-url', 'http://127.0.0.1:4599', 'executions'],
      machine: ['--config', CONFIG, '--region', 'eu-west-1', '--state-machine-arn', 'shop', 'redrive', 'run-1'],
      unreachable: ['--config', CONFIG, '--endpoint-url', `http://127.0.0.1:${port}`, 'executions'],
    };
    const names = Object.keys(cases);
    const results = await Promise.all(names.map((name) => stepdeploy(...cases[name]!)));
    runs = Object.fromEntries(names.map((name, i) => [name, results[i]!]));
  }, SPAWN_TIMEOUT_MS + 10_000);

  it.each([
    [
      'name',
      ExitCode.Usage,
      '--name "hotfix/42" is not a valid execution name: it must be 1-80 letters, digits, "_" or "-" (it becomes part of S3 keys), e.g. --name hotfix_42',
    ],
    [
      'arn',
      ExitCode.Usage,
      '"arn:aws:states:eu-west-1:111111111111:stateMachine:shop" is not an execution ARN (arn:aws:states:<region>:<account>:execution:<state machine>:<name>); or pass just the execution name',
    ],
    ['region', ExitCode.Usage, 'no AWS region: set AWS_REGION (or a profile with a region), or pass --region'],
    ['both', ExitCode.Usage, "option '--local' cannot be used with option '--endpoint-url <url>' (see --help)"],
    [
      'machine',
      ExitCode.Usage,
      '--state-machine-arn "shop" is not a state machine ARN (arn:aws:states:<region>:<account>:stateMachine:<name>): use the stack output StateMachineArn',
    ],
  ])('%s: exit %i', (name, code, message) => {
    expect(runs[name]).toEqual({ code, signal: null, stdout: '', stderr: `stepdeploy: ${message}\n` });
  });

  it('an endpoint that refuses: exit 3 naming the endpoint and what to check', () => {
    expect(runs.unreachable).toEqual({
      code: ExitCode.ServiceError,
      signal: null,
      stdout: '',
      stderr: `stepdeploy: cannot reach http://127.0.0.1:${port} (ECONNREFUSED); is the endpoint right and is it running? (\`stepdeploy local serve\`)\n`,
    });
  });
});

describe('local serve', () => {
  let dir: string;

  beforeEach(() => {
    // The bundled example in a folder of its own: serve makes the example repositories and .stepdeploy/ there.
    dir = mkdtempSync(join(tmpdir(), 'stepdeploy-serve-'));
    const config = parse(readFileSync(CONFIG, 'utf8'));
    config.buildspecs = { build: join(ROOT, config.buildspecs.build), deploy: join(ROOT, config.buildspecs.deploy) };
    writeFileSync(join(dir, 'stepdeploy.config.yml'), stringify(config));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  async function serving(): Promise<{
    child: ChildProcess;
    done: Promise<Run>;
    stdout: () => string;
    endpoint: string;
  }> {
    const server = start(['local', 'serve', '--port', '0'], { cwd: dir });
    const started = Date.now();
    let endpoint: string | undefined;
    while (endpoint === undefined) {
      if (server.child.exitCode !== null || Date.now() - started > SPAWN_TIMEOUT_MS)
        throw new Error(`local serve did not start:\n${(await server.done).stderr}`);
      await new Promise((tick) => setTimeout(tick, 100));
      endpoint = /^stepdeploy local runtime on (http:\/\/127\.0\.0\.1:\d+) /m.exec(server.stdout())?.[1];
    }
    return { ...server, endpoint };
  }

  it.each(['SIGINT', 'SIGTERM'] as const)(
    'starts on a free port, answers the APIs, and on %s stops: exit 0, endpoint.json removed',
    async (signal) => {
      const server = await serving();
      const file = endpointFile(join(dir, '.stepdeploy'), 'stepdeploy-example');
      const sfn = new SFNClient({ endpoint: server.endpoint, region: 'us-east-1', credentials: LOCAL_S3_CREDENTIALS });
      try {
        const { stateMachines } = await sfn.send(new ListStateMachinesCommand({}));
        expect(stateMachines!.map((m) => m.stateMachineArn)).toEqual([
          'arn:aws:states:us-east-1:000000000000:stateMachine:stepdeploy-example',
        ]);
        expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual({
          endpoint: server.endpoint,
          pid: server.child.pid,
          stateMachineArn: stateMachines![0]!.stateMachineArn,
        });
      } finally {
        sfn.destroy();
      }

      server.child.kill(signal);
      const run = await server.done;

      expect({ code: run.code, signal: run.signal, stderr: run.stderr }).toEqual({ code: 0, signal: null, stderr: '' });
      expect(run.stdout).toMatch(
        /Press Ctrl-C to stop\.\nstopping: running executions are stopped \(redrive them later\)\n$/,
      );
      expect(existsSync(file)).toBe(false);
      await expect(fetch(server.endpoint)).rejects.toMatchObject({ cause: { code: 'ECONNREFUSED' } });
    },
    2 * SPAWN_TIMEOUT_MS,
  );

  it(
    'is found by a --local command through endpoint.json',
    async () => {
      const server = await serving();
      try {
        const listed = await start(['--local', 'executions', '--json'], { cwd: dir }).done;

        expect(listed).toEqual({ code: 0, signal: null, stdout: '[]\n', stderr: '' });
      } finally {
        server.child.kill('SIGTERM');
        await server.done;
      }
    },
    3 * SPAWN_TIMEOUT_MS,
  );
});

describe('start --local --json in this process', () => {
  let dir: string;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'stepdeploy-json-'));
    const config = parse(readFileSync(CONFIG, 'utf8'));
    config.buildspecs = { build: join(ROOT, config.buildspecs.build), deploy: join(ROOT, config.buildspecs.deploy) };
    writeFileSync(join(dir, 'stepdeploy.config.yml'), stringify(config));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it(
    "keeps stdout one JSON document per line: the tasks' own output goes to stderr under their state",
    async () => {
      const run = await start(['--local', 'start', '--env', 'acceptance', '--json', '--wait'], { cwd: dir }).done;

      expect(run.code).toBe(ExitCode.Ok);
      const lines = run.stdout.trimEnd().split('\n');
      const notJson = lines.filter((line) => {
        try {
          JSON.parse(line);
          return false;
        } catch {
          return true;
        }
      });
      expect(notJson).toEqual([]);
      expect(JSON.parse(lines.at(-1)!)).toMatchObject({ type: 'ExecutionSucceeded' });
      // ResolveSource's line about each source (console.log in a Lambda: its log group on AWS).
      expect(run.stderr).toMatch(/^\[ResolveSource\] source app: main is [0-9a-f]{40}; /m);
    },
    2 * SPAWN_TIMEOUT_MS,
  );
});

it(
  'ends quietly when the reader closes the pipe first (`stepdeploy --help | head -1`): exit 0, no EPIPE stack',
  async () => {
    const child = spawn(process.execPath, [BIN, '--help'], {
      cwd: ROOT,
      env: bareEnv(),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    // The reader goes away before the first write: every write of the help text meets EPIPE.
    child.stdout!.destroy();
    let stderr = '';
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const code = await new Promise<number | null>((closed) => child.on('close', closed));

    expect({ code, stderr }).toEqual({ code: ExitCode.Ok, stderr: '' });
  },
  SPAWN_TIMEOUT_MS,
);
