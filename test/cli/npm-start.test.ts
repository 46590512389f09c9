import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { parse, stringify } from 'yaml';
import { ExitCode } from '../../cli/exit-codes';
import { runCli } from '../../cli/main';
import { capture } from '../helpers/io';

/**
 * `npm start` as a user runs it (package.json's script: `stepdeploy start --local --wait`), on a
 * copy of the bundled example in an empty folder, so both sources are fetched by builds running
 * at once: every build log line says which build it is; Ctrl-C stops the execution with the process.
 */

const ROOT = resolve(__dirname, '..', '..');
let dir: string;

interface ExampleConfig {
  pipeline: string;
  buildspecs: { build: string; deploy: string };
}

function writeConfig(file: string, edit: (config: ExampleConfig) => void = () => undefined): string {
  const config = parse(readFileSync(join(ROOT, 'stepdeploy.config.yml'), 'utf8')) as ExampleConfig;
  config.buildspecs = { build: join(ROOT, config.buildspecs.build), deploy: join(ROOT, config.buildspecs.deploy) };
  edit(config);
  const path = join(dir, file);
  writeFileSync(path, stringify(config));
  return path;
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'stepdeploy-start-'));
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

it('labels each log line with its build (fetch builds by source, BuildTemplates, Deploy) or its task state', async () => {
  const config = writeConfig('stepdeploy.config.yml');

  const { stdout } = await promisify(execFile)('npm', ['--prefix', ROOT, 'start', '--', '--config', config], {
    cwd: dir,
    maxBuffer: 64 * 1024 * 1024,
  });

  expect(stdout).toMatch(/execution acceptance-\S+: SUCCEEDED/);
  const logLines = stdout.split('\n').filter((l) => l.includes(' │ '));
  const labels = new Set(logLines.map((l) => l.split(' │ ')[0]!.trim()));
  // ResolveSource: a Lambda task's console output, under its state as on the graph (its log group on AWS).
  expect([...labels].sort()).toEqual([
    'BuildTemplates',
    'Deploy',
    'FetchSource app',
    'FetchSource config',
    'ResolveSource',
  ]);
  expect(
    logLines.filter((l) => /^ +ResolveSource +│ source (app|config): main is [0-9a-f]{40}; /.test(l)),
  ).toHaveLength(2);
  // The label is the build's own: the line where each fetch build names its source.
  for (const source of ['app', 'config']) {
    const fetched = logLines.filter((l) => l.includes(`│ fetched ${source} at main: commit `));
    expect(fetched).toHaveLength(1);
    expect(fetched[0]!.trim()).toMatch(new RegExp(`^FetchSource ${source}\\s+│`));
  }
  // The summary: what was deployed, and where the local data is.
  expect(stdout).toMatch(/^ {2}app {8}main @ [0-9a-f]{12} {2}sources\/app\/[0-9a-f]{40}\.zip$/m);
  expect(stdout).toContain('deployment record: s3://stepdeploy-example-artifacts/deployments/acceptance/current.json');
  expect(stdout).toContain(`local data: ${join(dir, '.stepdeploy')}`);
}, 180_000);

it('on Ctrl-C stops the execution running in the process and exits 130', async () => {
  // Its template build never ends by itself: the execution is RUNNING when the signal comes.
  writeFileSync(
    join(dir, 'hanging-build.yml'),
    stringify({ version: 0.2, phases: { build: { commands: ['sleep 600'] } } }),
  );
  const config = writeConfig('hanging.config.yml', (c) => {
    c.pipeline = 'hanging';
    c.buildspecs.build = join(dir, 'hanging-build.yml');
  });
  const child = spawn(
    process.execPath,
    [join(ROOT, 'cli', 'bin.js'), 'start', '--local', '--wait', '--config', config],
    {
      cwd: dir,
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let stdout = '';
  let stderr = '';
  let interrupted = false;
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk;
    // Once: a second Ctrl-C ends the process at once, as a user expects.
    if (/▶ BuildTemplates/.test(stdout) && child.signalCode === null && !interrupted) {
      interrupted = true;
      child.kill('SIGINT');
    }
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
  });

  const code = await new Promise<number | null>((done) => child.on('close', done));

  expect(code).toBe(ExitCode.Interrupted);
  expect(stderr).toContain(
    'interrupted: the execution ran in this process and is stopped with it; redrive it to continue',
  );
  const listed = capture();
  expect(await runCli(['node', 'stepdeploy', '--config', config, '--local', 'executions', '--json'], listed)).toBe(
    ExitCode.Ok,
  );
  const [execution] = JSON.parse(listed.stdout()) as Array<{ status: string; name: string }>;
  expect(execution).toMatchObject({ status: 'ABORTED' });
}, 180_000);
