import { type ChildProcess, execFile, spawn } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parse } from 'yaml';

/**
 * The package as a platform team uses it (issue 23): `npm run build && npm pack`, the tarball
 * installed into an empty folder, `npx stepdeploy init` with flags, the CDK app init wrote
 * synthesized offline, and a local deployment of two git repositories made here — every command
 * from the installed package, which has no TypeScript sources, tsx, TypeScript or esbuild.
 * Slow (a build, an install, a synth): one file, generous timeouts.
 */

const ROOT = resolve(__dirname, '..', '..');
const PACKAGE = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
  name: string;
  version: string;
  devDependencies: Record<string, string>;
};
/** A build and an npm install on a loaded 2-core machine take minutes; these bound a hang. */
const SLOW_MS = 20 * 60_000;

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * The environment of a user with no AWS setting (jest's setup sets a fake region and credentials)
 * and no git identity of their own beyond the one given here.
 */
function userEnv(): NodeJS.ProcessEnv {
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('AWS_')));
  return {
    ...env,
    AWS_CONFIG_FILE: '/nonexistent',
    AWS_SHARED_CREDENTIALS_FILE: '/nonexistent',
    AWS_EC2_METADATA_DISABLED: 'true',
    GIT_CONFIG_GLOBAL: '/dev/null',
    GIT_CONFIG_NOSYSTEM: '1',
    GIT_AUTHOR_NAME: 'Platform Team',
    GIT_AUTHOR_EMAIL: 'platform@example.com',
    GIT_COMMITTER_NAME: 'Platform Team',
    GIT_COMMITTER_EMAIL: 'platform@example.com',
  };
}

function run(
  command: string,
  args: ReadonlyArray<string>,
  cwd: string,
  env: NodeJS.ProcessEnv = userEnv(),
): Promise<Run> {
  return new Promise((done, fail) => {
    execFile(command, args, { cwd, env, maxBuffer: 64 * 1024 * 1024, timeout: SLOW_MS }, (error, stdout, stderr) => {
      if (error && typeof error.code !== 'number') fail(error);
      else done({ code: error ? (error.code as number) : 0, stdout, stderr });
    });
  });
}

async function succeed(
  command: string,
  args: ReadonlyArray<string>,
  cwd: string,
  env?: NodeJS.ProcessEnv,
): Promise<Run> {
  const result = await run(command, args, cwd, env);
  if (result.code !== 0) {
    throw new Error(`${command} ${args.join(' ')} exited ${result.code}:\n${result.stdout}\n${result.stderr}`);
  }
  return result;
}

interface Packed {
  readonly filename: string;
  readonly size: number;
  readonly unpackedSize: number;
  readonly files: ReadonlyArray<{ readonly path: string }>;
}

/**
 * `npx stepdeploy ARGS` in the user's folder: the installed command (`--no`: never one fetched from
 * the registry; `--`: npx leaves options such as --help to the command).
 */
function npxStepdeploy(...args: string[]): Promise<Run> {
  return succeed('npx', ['--no', '--', 'stepdeploy', ...args], user);
}

let work: string;
let packed: Packed;
let user: string;
const repositories: Record<'app' | 'config', string> = { app: '', config: '' };

/** A work-tree repository (a developer's clone) with one commit of `files`. */
async function makeRepository(name: string, files: Record<string, string>, executable: string[] = []): Promise<string> {
  const dir = join(work, 'repos', name);
  mkdirSync(dir, { recursive: true });
  await succeed('git', ['init', '-q', '--initial-branch=main'], dir);
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(join(dir, path, '..'), { recursive: true });
    writeFileSync(join(dir, path), content);
  }
  for (const path of executable) chmodSync(join(dir, path), 0o755);
  await succeed('git', ['add', '--all'], dir);
  await succeed('git', ['commit', '-q', '-m', `${name}: first version`], dir);
  return dir;
}

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'stepdeploy-package-'));
  await succeed('npm', ['run', 'build'], ROOT);
  // prepack ran the build just above.
  const pack = await succeed('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', work], ROOT);
  [packed] = JSON.parse(pack.stdout) as [Packed];

  // An empty folder, a CDK app's usual two dependencies at the versions this repository tests with.
  user = join(work, 'platform-infra');
  mkdirSync(user);
  const started = Date.now();
  await succeed(
    'npm',
    [
      'install',
      '--prefer-offline',
      '--no-audit',
      '--no-fund',
      join(work, packed.filename),
      `aws-cdk-lib@${PACKAGE.devDependencies['aws-cdk-lib']}`,
      `constructs@${PACKAGE.devDependencies.constructs}`,
    ],
    user,
  );
  // The figures the closing note of issue 23 asks for, in the CI log.
  console.log(
    `stepdeploy ${PACKAGE.version}: ${(packed.size / 1e6).toFixed(1)} MB packed, ${(packed.unpackedSize / 1e6).toFixed(1)} MB unpacked, installed in ${((Date.now() - started) / 1000).toFixed(0)} s`,
  );

  repositories.app = await makeRepository(
    'app',
    {
      'stepdeploy/build':
        '#!/usr/bin/env bash\nset -euo pipefail\nmkdir -p out\ncp config/settings.json out/\necho "$1" > out/environment\n',
      'stepdeploy/deploy':
        '#!/usr/bin/env bash\nset -euo pipefail\ntarget="$STEPDEPLOY_LOCAL_HOME/deployed/$1"\nmkdir -p "$target"\ncp out/* "$target/"\necho "deployed to $target"\n',
    },
    ['stepdeploy/build', 'stepdeploy/deploy'],
  );
  repositories.config = await makeRepository('config', { 'settings.json': '{"replicas": 2}\n' });
}, SLOW_MS);

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

it('packs the built package only: JavaScript, declarations, Lambda bundles, buildspecs, README, LICENSE', () => {
  const paths = packed.files.map((f) => f.path);
  const outside = paths.filter(
    (p) => !/^(dist|buildspecs)\//.test(p) && !['package.json', 'README.md', 'LICENSE'].includes(p),
  );
  expect(outside).toEqual([]);
  // TypeScript only as declarations; no test, benchmark, example or fixture.
  expect(paths.filter((p) => /\.ts$/.test(p) && !/\.d\.ts$/.test(p))).toEqual([]);
  expect(paths.filter((p) => /(^|\/)(test|bench|examples|fixtures)\//.test(p))).toEqual([]);
  const tasks = readdirSync(join(ROOT, 'tasks')).filter((t) => existsSync(join(ROOT, 'tasks', t, 'handler.ts')));
  expect(tasks.filter((t) => !paths.includes(`dist/lambda/${t}/index.js`))).toEqual([]);
  expect(paths).toEqual(
    expect.arrayContaining([
      'dist/index.js',
      'dist/index.d.ts',
      'dist/cli/bin.js',
      'dist/console/page.js',
      'dist/workflows/deploy-pipeline.asl.json',
      'buildspecs/build.yml',
      'buildspecs/deploy.yml',
      'LICENSE',
    ]),
  );
  // 3.8 MB packed, 14.2 MB unpacked (11 bundles of ~1.2 MB, no source maps) when this was written: a
  // doubling means something was packed that should not be.
  expect(packed.size).toBeLessThan(7 * 1024 * 1024);
  expect(packed.unpackedSize).toBeLessThan(27 * 1024 * 1024);
});

it(
  'installs into an empty folder with no tsx, TypeScript or esbuild, and runs the command',
  async () => {
    const modules = join(user, 'node_modules');
    expect(
      ['tsx', 'typescript', 'esbuild', 'preact', '@dagrejs/dagre'].filter((m) => existsSync(join(modules, m))),
    ).toEqual([]);

    const help = await npxStepdeploy('--help');

    expect(help.stdout).toMatch(/^Usage: stepdeploy \[options\] \[command\]/);
    expect(help.stdout).toMatch(/^ {2}init /m);
  },
  SLOW_MS,
);

it(
  'init writes the config and a CDK app, which synthesizes offline with the bundled handlers',
  async () => {
    const init = await npxStepdeploy(
      'init',
      '--pipeline',
      'platform',
      '--source',
      'app=../repos/app',
      '--source',
      `config=${pathToFileURL(repositories.config).href}`,
      '--env',
      'acceptance=111111111111/eu-west-1',
      '--tooling-account',
      '999999999999',
    );
    const config = parse(readFileSync(join(user, 'stepdeploy.config.yml'), 'utf8'));
    expect(config).toMatchObject({
      pipeline: 'platform',
      sources: { app: { repository: '../repos/app' }, config: { repository: pathToFileURL(repositories.config).href } },
      // The installed package's own buildspecs, named where npm put them.
      buildspecs: { build: 'node_modules/stepdeploy/buildspecs/build.yml' },
    });
    expect(existsSync(join(user, config.buildspecs.build))).toBe(true);
    expect(init.stdout).not.toContain('install stepdeploy in this folder');
    const app = JSON.parse(readFileSync(join(user, 'cdk.json'), 'utf8')).app as string;

    // What `cdk synth` runs: the app command of cdk.json with the output folder in CDK_OUTDIR.
    const [node, ...entry] = app.split(' ');
    expect(node).toBe('node');
    await succeed(process.execPath, entry, user, { ...userEnv(), CDK_OUTDIR: join(user, 'cdk.out') });

    const template = JSON.parse(readFileSync(join(user, 'cdk.out', 'platform.template.json'), 'utf8')) as {
      Resources: Record<string, { Type: string; Properties: Record<string, any> }>;
    };
    const resources = Object.values(template.Resources);
    expect(resources.filter((r) => r.Type === 'AWS::StepFunctions::StateMachine')).toHaveLength(1);
    const functions = resources.filter((r) => r.Type === 'AWS::Lambda::Function');
    expect(functions.length).toBeGreaterThanOrEqual(10);
    const installed = join(user, 'node_modules', 'stepdeploy', 'dist', 'lambda');
    const bundles = new Map(
      readdirSync(installed).map((task) => [readFileSync(join(installed, task, 'index.js'), 'utf8'), task]),
    );
    const deployed = functions.map((f) => {
      expect(f.Properties).toMatchObject({ Handler: 'index.handler', Runtime: 'nodejs22.x' });
      const asset = join(user, 'cdk.out', `asset.${String(f.Properties.Code.S3Key).replace(/\.zip$/, '')}`);
      return { task: bundles.get(readFileSync(join(asset, 'index.js'), 'utf8')), asset };
    });
    // Every function's code is one of the package's bundles, byte for byte; validate-input's carries the config.
    expect(deployed.filter((d) => d.task === undefined)).toEqual([]);
    const validateInput = deployed.find((d) => d.task === 'validate-input')!;
    expect(readFileSync(join(validateInput.asset, 'stepdeploy.config.yml'), 'utf8')).toBe(
      readFileSync(join(user, 'stepdeploy.config.yml'), 'utf8'),
    );
  },
  SLOW_MS,
);

it(
  'start --local deploys the two repositories with the config init wrote',
  async () => {
    const started = await npxStepdeploy('start', '--local', '--wait', '--env', 'acceptance');

    expect(started.stdout).toMatch(/execution acceptance-\S+: SUCCEEDED/);
    const deployed = join(user, '.stepdeploy', 'deployed', 'acceptance');
    expect(readFileSync(join(deployed, 'settings.json'), 'utf8')).toBe('{"replicas": 2}\n');
    expect(readFileSync(join(deployed, 'environment'), 'utf8')).toBe('acceptance\n');
    for (const [name, dir] of Object.entries(repositories)) {
      const commit = (await succeed('git', ['rev-parse', 'HEAD'], dir)).stdout.trim();
      expect(started.stdout).toMatch(new RegExp(`^ {2}${name} +main @ ${commit.slice(0, 12)} `, 'm'));
    }
  },
  SLOW_MS,
);

it(
  "a config copied from stepdeploy's repository, naming its example repositories, fails with the fix, not ENOENT",
  async () => {
    // The package has no examples/ to make the example repositories from.
    const copied = join(user, 'copied');
    mkdirSync(copied);
    writeFileSync(join(copied, 'stepdeploy.config.yml'), readFileSync(join(ROOT, 'stepdeploy.config.yml')));

    const started = await run(
      'npx',
      [
        '--no',
        '--',
        'stepdeploy',
        'start',
        '--local',
        '--wait',
        '--env',
        'acceptance',
        '--config',
        'copied/stepdeploy.config.yml',
      ],
      user,
    );

    expect(started.stderr).toContain(
      `stepdeploy: sources.app.repository ".stepdeploy/example-repos/app.git" in ${join(copied, 'stepdeploy.config.yml')} names a repository of stepdeploy's bundled example`,
    );
    expect(started.stderr).toContain('write a config for your own repositories with `npx stepdeploy init`');
    expect(started.stderr).not.toContain('ENOENT');
    expect(started.code).toBe(2);
    expect(existsSync(join(copied, '.stepdeploy', 'example-repos'))).toBe(false);
  },
  SLOW_MS,
);

it(
  'local serve serves the console page built into the package',
  async () => {
    // The installed command itself (what npx runs), so that the signal reaches it.
    const server: ChildProcess = spawn(
      join(user, 'node_modules', '.bin', 'stepdeploy'),
      ['local', 'serve', '--port', '0'],
      {
        cwd: user,
        env: userEnv(),
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let stdout = '';
    server.stdout!.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    const closed = new Promise((done) => server.on('close', done));
    try {
      const started = Date.now();
      let endpoint: string | undefined;
      while (endpoint === undefined) {
        if (server.exitCode !== null || Date.now() - started > SLOW_MS)
          throw new Error(`local serve did not start:\n${stdout}`);
        await new Promise((tick) => setTimeout(tick, 200));
        endpoint = /^stepdeploy local runtime on (http:\/\/127\.0\.0\.1:\d+) /m.exec(stdout)?.[1];
      }

      const response = await fetch(`${endpoint}/console/app.js`);

      expect(response.status).toBe(200);
      expect(await response.text()).toBe(
        readFileSync(join(user, 'node_modules', 'stepdeploy', 'dist', 'console', 'page.js'), 'utf8'),
      );
    } finally {
      server.kill('SIGTERM');
      await closed;
    }
  },
  SLOW_MS,
);
