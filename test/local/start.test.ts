import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { parse, stringify } from 'yaml';

/**
 * `npm start` as a user runs it, on a copy of the bundled example in an empty folder (so both
 * sources are fetched by builds running at once): every build log line says which build it is.
 */

const ROOT = resolve(__dirname, '..', '..');
let dir: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'stepdeploy-start-'));
  const config = parse(readFileSync(join(ROOT, 'stepdeploy.config.yml'), 'utf8'));
  config.buildspecs = { build: join(ROOT, config.buildspecs.build), deploy: join(ROOT, config.buildspecs.deploy) };
  writeFileSync(join(dir, 'stepdeploy.config.yml'), stringify(config));
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

it('labels each build log line with its build: the fetch builds by source, then BuildTemplates and Deploy', async () => {
  const { stdout } = await promisify(execFile)(
    process.execPath,
    [
      join(ROOT, 'node_modules', 'tsx', 'dist', 'cli.mjs'),
      join(ROOT, 'local', 'start.ts'),
      '--config',
      join(dir, 'stepdeploy.config.yml'),
    ],
    {
      cwd: dir,
      maxBuffer: 64 * 1024 * 1024,
    },
  );

  expect(stdout).toMatch(/execution acceptance-\S+: SUCCEEDED/);
  const logLines = stdout.split('\n').filter((l) => l.includes(' │ '));
  const labels = new Set(logLines.map((l) => l.split(' │ ')[0]!.trim()));
  expect([...labels].sort()).toEqual(['BuildTemplates', 'Deploy', 'FetchSource app', 'FetchSource config']);
  // The label is the build's own: the line where each fetch build names its source.
  for (const source of ['app', 'config']) {
    const fetched = logLines.filter((l) => l.includes(`│ fetched ${source} at main: commit `));
    expect(fetched).toHaveLength(1);
    expect(fetched[0]!.trim()).toMatch(new RegExp(`^FetchSource ${source}\\s+│`));
  }
}, 180_000);
