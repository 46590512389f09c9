import { spawn, spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { type Duplex, PassThrough } from 'node:stream';
import { DEFAULT_BUILDSPECS_DIR, type InitOptions, runInit, type Terminal } from '../../cli/commands/init';
import { ExitCode } from '../../cli/exit-codes';
import { runCli } from '../../cli/main';
import { loadConfig } from '../../shared/config';
import { capture } from '../helpers/io';

const ROOT = resolve(__dirname, '..', '..');
const BIN = join(ROOT, 'cli', 'bin.js');
/** Starting tsx, and synthesizing, take seconds on a loaded machine: these bound a hang, not speed. */
const SPAWN_TIMEOUT_MS = 120_000;

const folders: string[] = [];
afterAll(() => {
  for (const dir of folders.splice(0)) rmSync(dir, { recursive: true, force: true });
});
function emptyFolder(): string {
  const dir = mkdtempSync(join(tmpdir(), 'stepdeploy-init-'));
  folders.push(dir);
  return dir;
}

/** Nobody at a terminal: what CI and a pipe give. */
const noTerminal: Terminal = { input: new PassThrough(), output: new PassThrough() };

const CONNECTION = 'arn:aws:codeconnections:eu-west-1:999999999999:connection/0a1b2c3d-4e5f-6789-abcd-ef0123456789';
const FLAGS = {
  source: ['app=https://github.com/acme/shop.git', 'config=https://gitlab.com/acme/shop-config.git'],
  env: ['acceptance=111111111111/eu-west-1', 'production=222222222222/us-east-1'],
  connection: [`config=${CONNECTION}`],
  pipeline: 'shop',
  toolingAccount: '999999999999',
};

/** FLAGS as command-line arguments. */
function flagArgs(): string[] {
  return [
    ...FLAGS.source.flatMap((s) => ['--source', s]),
    ...FLAGS.env.flatMap((e) => ['--env', e]),
    ...FLAGS.connection.flatMap((c) => ['--connection', c]),
  ];
}

async function init(options: Partial<InitOptions> & { dir: string }) {
  const io = capture();
  const code = await runInit({ source: [], env: [], ...options }, io, noTerminal);
  return { code, stdout: io.stdout() };
}

/** Runs init through the CLI, expecting a refusal: its message, and that the folder stayed empty. */
async function refused(args: ReadonlyArray<string>): Promise<string> {
  const dir = emptyFolder();
  const io = capture();
  const code = await runCli(['node', 'stepdeploy', 'init', '--dir', dir, ...args], io, noTerminal);
  expect(code).toBe(ExitCode.Usage);
  expect(readdirSync(dir)).toEqual([]);
  return io.stderr();
}

describe('init with flags', () => {
  test('writes a commented config that loads, cdk.json, the app entry and the default buildspecs', async () => {
    const dir = emptyFolder();
    const { code, stdout } = await init({ ...FLAGS, buildspecs: true, dir });
    expect(code).toBe(ExitCode.Ok);
    expect(stdout).toContain('bin/pipeline.cjs');

    const config = loadConfig(join(dir, 'stepdeploy.config.yml'));
    expect(config.pipeline).toBe('shop');
    expect(config.toolingAccount).toBe('999999999999');
    expect(config.sources).toEqual({
      app: { repository: 'https://github.com/acme/shop.git', defaultBranch: 'main', path: '.' },
      config: {
        repository: 'https://gitlab.com/acme/shop-config.git',
        defaultBranch: 'main',
        path: 'config/',
        connectionArn: CONNECTION,
      },
    });
    expect(config.environments.acceptance).toMatchObject({
      account: '111111111111',
      region: 'eu-west-1',
      deployRoleArn: 'arn:aws:iam::111111111111:role/shop-deploy',
      branches: ['*'],
    });
    expect(config.environments.production).toMatchObject({
      account: '222222222222',
      region: 'us-east-1',
      deployRoleArn: 'arn:aws:iam::222222222222:role/shop-deploy',
      branches: ['main'],
    });
    expect(config.buildspecs).toEqual({ build: 'buildspecs/build.yml', deploy: 'buildspecs/deploy.yml' });
    for (const file of ['build.yml', 'deploy.yml']) {
      expect(readFileSync(join(dir, 'buildspecs', file), 'utf8')).toBe(
        readFileSync(join(DEFAULT_BUILDSPECS_DIR, file), 'utf8'),
      );
    }
    // Every field is explained where it is set.
    const text = readFileSync(join(dir, 'stepdeploy.config.yml'), 'utf8');
    for (const field of ['pipeline:', 'toolingAccount:', 'sources:', 'environments:', 'buildspecs:']) {
      const at = text.split('\n').findIndex((line) => line.startsWith(field));
      expect(text.split('\n')[at - 1]).toMatch(/^# /);
    }
    expect(JSON.parse(readFileSync(join(dir, 'cdk.json'), 'utf8'))).toEqual({
      app: 'node bin/pipeline.cjs',
      notices: false,
      context: { 'cli-telemetry': false },
    });
    expect(readFileSync(join(dir, '.gitignore'), 'utf8')).toBe(
      "# stepdeploy: CDK's output and the local runtime's data\ncdk.out/\n.stepdeploy/\n",
    );
    expect(stdout).toContain('  .gitignore (new: cdk.out/ .stepdeploy/)');
    expect(readFileSync(join(dir, 'bin', 'pipeline.cjs'), 'utf8')).toContain("require('stepdeploy')");
  });

  test("without --buildspecs, the config names the installed package's buildspecs, found as Node finds the package", async () => {
    const project = emptyFolder();
    mkdirSync(join(project, 'node_modules', 'stepdeploy', 'buildspecs'), { recursive: true });
    writeFileSync(join(project, 'node_modules', 'stepdeploy', 'buildspecs', 'build.yml'), 'version: 0.2\n');
    const dir = join(project, 'deploy');
    await init({ ...FLAGS, dir });
    expect(loadConfig(join(dir, 'stepdeploy.config.yml')).buildspecs).toEqual({
      build: '../node_modules/stepdeploy/buildspecs/build.yml',
      deploy: '../node_modules/stepdeploy/buildspecs/deploy.yml',
    });
    expect(existsSync(join(dir, 'buildspecs'))).toBe(false);
  });

  test('without --buildspecs, buildspecs only beside the built code (dist/) are found too', async () => {
    const dir = emptyFolder();
    mkdirSync(join(dir, 'node_modules', 'stepdeploy', 'dist', 'buildspecs'), { recursive: true });
    writeFileSync(join(dir, 'node_modules', 'stepdeploy', 'dist', 'buildspecs', 'build.yml'), 'version: 0.2\n');
    await init({ ...FLAGS, dir });
    expect(loadConfig(join(dir, 'stepdeploy.config.yml')).buildspecs.build).toBe(
      'node_modules/stepdeploy/dist/buildspecs/build.yml',
    );
  });

  test('GitHub Enterprise and self-managed GitLab at hosts of their own: the type given, written, the config loads', async () => {
    const dir = emptyFolder();
    const { code } = await init({
      source: ['app=https://github.acme.example/shop/app.git', 'config=https://gitlab.acme.example/shop/config.git'],
      type: ['app=GITHUB_ENTERPRISE', 'config=GITLAB_SELF_MANAGED'],
      connection: [`config=${CONNECTION}`],
      env: FLAGS.env,
      dir,
    });

    expect(code).toBe(ExitCode.Ok);
    expect(loadConfig(join(dir, 'stepdeploy.config.yml')).sources).toEqual({
      app: {
        repository: 'https://github.acme.example/shop/app.git',
        type: 'GITHUB_ENTERPRISE',
        defaultBranch: 'main',
        path: '.',
      },
      config: {
        repository: 'https://gitlab.acme.example/shop/config.git',
        type: 'GITLAB_SELF_MANAGED',
        defaultBranch: 'main',
        path: 'config/',
        connectionArn: CONNECTION,
      },
    });
  });

  test('the pipeline name comes from the folder when not given', async () => {
    const dir = join(emptyFolder(), 'Shop_Infra');
    await init({ source: FLAGS.source, env: FLAGS.env, connection: FLAGS.connection, dir });
    expect(loadConfig(join(dir, 'stepdeploy.config.yml')).pipeline).toBe('shop-infra');
  });

  test("the app it writes synthesizes with the package: the pipeline stack and each environment account's deploy roles", async () => {
    const dir = emptyFolder();
    await init({ ...FLAGS, buildspecs: true, dir });
    // The installed package, as `npm install stepdeploy` leaves it for require(): its entry point
    // (index.ts through tsx here; the built JavaScript in the package) and aws-cdk-lib beside it.
    mkdirSync(join(dir, 'node_modules', 'stepdeploy'), { recursive: true });
    writeFileSync(
      join(dir, 'node_modules', 'stepdeploy', 'index.js'),
      `require(${JSON.stringify(require.resolve('tsx/cjs'))});\nmodule.exports = require(${JSON.stringify(join(ROOT, 'index.ts'))});\n`,
    );
    symlinkSync(join(ROOT, 'node_modules', 'aws-cdk-lib'), join(dir, 'node_modules', 'aws-cdk-lib'));
    const outdir = join(dir, 'cdk.out');
    // What `cdk synth` runs (cdk.json "app"), with bundling skipped: the templates do not depend on it.
    const app = (JSON.parse(readFileSync(join(dir, 'cdk.json'), 'utf8')) as { app: string }).app;
    const run = spawnSync('sh', ['-c', app], {
      cwd: dir,
      encoding: 'utf8',
      timeout: SPAWN_TIMEOUT_MS,
      env: {
        ...process.env,
        CDK_OUTDIR: outdir,
        CDK_CONTEXT_JSON: JSON.stringify({ 'aws:cdk:bundling-stacks': [] }),
        CDK_DEFAULT_REGION: 'eu-west-1',
      },
    });
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    expect(readdirSync(outdir).filter((f) => f.endsWith('.template.json'))).toEqual([
      'shop-deploy-roles-111111111111.template.json',
      'shop-deploy-roles-222222222222.template.json',
      'shop.template.json',
    ]);
    const resources = (file: string) =>
      Object.values(
        (JSON.parse(readFileSync(join(outdir, file), 'utf8')) as { Resources: Record<string, any> }).Resources,
      );
    expect(resources('shop.template.json').filter((r) => r.Type === 'AWS::StepFunctions::StateMachine')).toMatchObject([
      { Properties: { StateMachineName: 'shop' } },
    ]);
    expect(
      resources('shop-deploy-roles-222222222222.template.json').filter((r) => r.Type === 'AWS::IAM::Role'),
    ).toMatchObject([
      {
        Properties: {
          RoleName: 'shop-deploy',
          AssumeRolePolicyDocument: {
            Statement: [
              {
                Condition: { ArnEquals: { 'aws:PrincipalArn': 'arn:aws:iam::999999999999:role/shop-deploy-project' } },
              },
            ],
          },
        },
      },
    ]);
  });
});

/** A developer's clone: a work tree with one commit. */
function gitRepository(path: string): string {
  mkdirSync(path, { recursive: true });
  const git = (...args: string[]) =>
    spawnSync('git', args, {
      cwd: path,
      env: { ...process.env, GIT_CONFIG_GLOBAL: '/dev/null', GIT_CONFIG_NOSYSTEM: '1' },
    });
  git('init', '-q', '--initial-branch=main');
  writeFileSync(join(path, 'README.md'), 'app\n');
  git('add', '.');
  git('-c', 'user.name=t', '-c', 'user.email=t@example.com', 'commit', '-q', '-m', 'first');
  return path;
}

describe('init with a local path', () => {
  const ENV_ARGS = FLAGS.env.flatMap((e) => ['--env', e]);
  const LOCAL_FIX = (dir: string) =>
    `give the path of a clone (\`git clone <url> <path>\`; a relative path is relative to ${dir}, where the config goes) or the repository's https:// URL`;

  test('takes a clone, relative to the folder it writes into', async () => {
    const dir = join(emptyFolder(), 'infra');
    gitRepository(join(dir, '..', 'app'));

    const { code } = await init({ source: ['app=../app'], env: FLAGS.env, dir });

    expect(code).toBe(ExitCode.Ok);
    expect(loadConfig(join(dir, 'stepdeploy.config.yml')).sources.app!.repository).toBe('../app');
  });

  test('refuses a path with no folder, naming the flag, the path and the fix, writing nothing', async () => {
    const dir = emptyFolder();
    const io = capture();

    const code = await runCli(
      ['node', 'stepdeploy', 'init', '--dir', dir, '--source', 'app=../no-such-clone', ...ENV_ARGS],
      io,
      noTerminal,
    );

    expect(code).toBe(ExitCode.Usage);
    expect(io.stderr()).toBe(
      `stepdeploy: --source app=../no-such-clone: no folder at ${resolve(dir, '..', 'no-such-clone')}; ${LOCAL_FIX(dir)}\n`,
    );
    expect(readdirSync(dir)).toEqual([]);
  });

  test('refuses a folder that is not a git repository, with what git says', async () => {
    const dir = emptyFolder();
    mkdirSync(join(dir, 'not-a-clone'));
    const url = pathToFileURL(join(dir, 'not-a-clone')).href;

    const refusal = await init({ source: [`app=${url}`], env: FLAGS.env, dir }).catch((err: Error) => err.message);

    expect(refusal).toMatch(/^--source app=\S+: \S+ is not a git repository \(fatal: .+\); give the path of a clone/);
    expect(refusal).toContain(`--source app=${url}: ${join(dir, 'not-a-clone')} is not a git repository`);
    expect(readdirSync(dir)).toEqual(['not-a-clone']);
  });
});

describe('.gitignore', () => {
  test('gets only the lines it lacks, after what it had, which stays as it was', async () => {
    const dir = emptyFolder();
    // No newline at the end, and cdk.out ignored already, written another way.
    writeFileSync(join(dir, '.gitignore'), 'node_modules/\n/cdk.out');

    const { stdout } = await init({ ...FLAGS, dir });

    expect(readFileSync(join(dir, '.gitignore'), 'utf8')).toBe(
      "node_modules/\n/cdk.out\n# stepdeploy: CDK's output and the local runtime's data\n.stepdeploy/\n",
    );
    expect(stdout).toContain('  .gitignore (added: .stepdeploy/)');
  });

  test('that ignores both already is left alone', async () => {
    const dir = emptyFolder();
    writeFileSync(join(dir, '.gitignore'), '.stepdeploy\ncdk.out/\n');

    const { stdout } = await init({ ...FLAGS, dir });

    expect(readFileSync(join(dir, '.gitignore'), 'utf8')).toBe('.stepdeploy\ncdk.out/\n');
    expect(stdout).not.toContain('.gitignore');
  });

  test('is not touched when init refuses', async () => {
    const dir = emptyFolder();
    writeFileSync(join(dir, '.gitignore'), 'node_modules/\n');
    writeFileSync(join(dir, 'cdk.json'), '{}\n');

    await expect(init({ ...FLAGS, dir })).rejects.toThrow('init writes nothing: cdk.json already exists');

    expect(readFileSync(join(dir, '.gitignore'), 'utf8')).toBe('node_modules/\n');
  });
});

/**
 * Runs the repository's CDK CLI (the aws-cdk devDependency) in `dir` with a proxy that records
 * where it tries to connect: the hosts it asked for, within `waitMs` of its exit (the CLI sends
 * telemetry from a subprocess that may outlive it), or as soon as there is one.
 */
async function cdkSynthConnections(
  dir: string,
  waitMs: number,
): Promise<{ hosts: string[]; status: number | null; stderr: string }> {
  const hosts: string[] = [];
  const proxy = createServer((req, res) => {
    hosts.push(req.headers.host ?? String(req.url));
    res.destroy();
  });
  proxy.on('connect', (req: IncomingMessage, socket: Duplex) => {
    hosts.push(String(req.url));
    socket.destroy();
  });
  await new Promise<void>((listening) => proxy.listen(0, '127.0.0.1', listening));
  const proxyUrl = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
  // A stack with nothing in it: what is measured is the CLI's own calls around the app.
  writeFileSync(
    join(dir, 'empty-app.cjs'),
    "const { App, Stack } = require('aws-cdk-lib'); const app = new App(); new Stack(app, 'Empty'); app.synth();\n",
  );
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([name]) => !/^(CI|NO_PROXY|no_proxy|AWS_.*)$/.test(name)),
  );
  try {
    const result = await new Promise<{ status: number | null; stderr: string }>((done) => {
      const child = spawn(
        join(ROOT, 'node_modules', '.bin', 'cdk'),
        ['synth', '--quiet', '--app', 'node empty-app.cjs'],
        {
          cwd: dir,
          env: {
            ...env,
            // A CDK home of its own: no cached notices, no telemetry setting of this machine's user.
            CDK_HOME: join(dir, '.cdk'),
            // No credentials (jest's setup sets fake ones): with some, the CLI asks STS for the account.
            AWS_CONFIG_FILE: join(dir, 'no-aws-config'),
            AWS_SHARED_CREDENTIALS_FILE: join(dir, 'no-aws-credentials'),
            AWS_EC2_METADATA_DISABLED: 'true',
            NODE_PATH: join(ROOT, 'node_modules'),
            HTTPS_PROXY: proxyUrl,
            HTTP_PROXY: proxyUrl,
            https_proxy: proxyUrl,
            http_proxy: proxyUrl,
          },
          stdio: ['ignore', 'ignore', 'pipe'],
        },
      );
      let stderr = '';
      child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
      child.on('close', (status) => done({ status, stderr }));
    });
    for (const until = Date.now() + waitMs; hosts.length === 0 && Date.now() < until; ) {
      await new Promise((tick) => setTimeout(tick, 100));
    }
    return { ...result, hosts };
  } finally {
    proxy.close();
  }
}

test(
  "cdk synth in the folder init wrote makes no network call of the CDK CLI's own (notices, telemetry)",
  async () => {
    const dir = emptyFolder();
    await init({ ...FLAGS, dir });

    const synth = await cdkSynthConnections(dir, 5_000);

    expect(synth.stderr).not.toMatch(/error/i);
    expect(synth.status).toBe(0);
    expect(synth.hosts).toEqual([]);

    // The same synth with only the app in cdk.json does call out, so the proxy sees what it should.
    writeFileSync(join(dir, 'cdk.json'), JSON.stringify({ app: 'node bin/pipeline.cjs' }));
    const unconfigured = await cdkSynthConnections(dir, 30_000);
    expect(unconfigured.status).toBe(0);
    expect(unconfigured.hosts.length).toBeGreaterThan(0);
  },
  SPAWN_TIMEOUT_MS,
);

describe('init refuses', () => {
  test('to overwrite a file: it names it and writes nothing at all', async () => {
    const dir = emptyFolder();
    writeFileSync(join(dir, 'cdk.json'), '{"app": "npx ts-node bin/mine.ts"}\n');
    mkdirSync(join(dir, 'buildspecs'));
    writeFileSync(join(dir, 'buildspecs', 'deploy.yml'), 'mine\n');
    const io = capture();
    const code = await runCli(
      ['node', 'stepdeploy', 'init', '--dir', dir, '--buildspecs', ...flagArgs()],
      io,
      noTerminal,
    );
    expect(code).toBe(ExitCode.Usage);
    expect(io.stderr()).toBe(
      `stepdeploy: init writes nothing: cdk.json, buildspecs/deploy.yml already exist in ${dir}; move them away, or write into another folder with --dir\n`,
    );
    expect(readdirSync(dir).sort()).toEqual(['buildspecs', 'cdk.json']);
    expect(readdirSync(join(dir, 'buildspecs'))).toEqual(['deploy.yml']);
    expect(readFileSync(join(dir, 'cdk.json'), 'utf8')).toBe('{"app": "npx ts-node bin/mine.ts"}\n');
  });

  test('without a terminal and without flags, saying which flags to give', async () => {
    expect(await refused([])).toBe(
      'stepdeploy: init has no terminal to ask in and was given no answers as flags; give --source NAME=URL for each repository and --env NAME=ACCOUNT/REGION for each environment (and optionally --pipeline NAME, --tooling-account ACCOUNT, --buildspecs, --dir FOLDER), e.g. stepdeploy init --source app=https://github.com/acme/app.git --source config=https://github.com/acme/config.git --env acceptance=111111111111/eu-west-1 --env production=222222222222/eu-west-1\n',
    );
  });

  const ENV = ['--env', 'acceptance=111111111111/eu-west-1'];
  const SOURCE = ['--source', 'app=https://github.com/acme/app.git'];
  test.each([
    [
      'an account of 11 digits',
      [...SOURCE, '--env', 'acceptance=11111111111/eu-west-1'],
      '--env acceptance=11111111111/eu-west-1: the account "11111111111" must be a 12-digit AWS account id',
    ],
    [
      'a region that is not one',
      [...SOURCE, '--env', 'acceptance=111111111111/europe'],
      '--env acceptance=111111111111/europe: the region "europe" must be an AWS region such as eu-west-1',
    ],
    [
      'an environment without its region',
      [...SOURCE, '--env', 'acceptance=111111111111'],
      '--env acceptance=111111111111: expected NAME=ACCOUNT/REGION, e.g. --env acceptance=111111111111/eu-west-1',
    ],
    [
      'an environment name in capitals',
      [...SOURCE, '--env', 'Prod=111111111111/eu-west-1'],
      '--env Prod=111111111111/eu-west-1: the name "Prod" is not valid: lowercase letters, digits and "-", starting with a letter, at most 30 characters',
    ],
    [
      'an SSH address, giving its https:// URL',
      ['--source', 'app=git@github.com:acme/app.git', ...ENV],
      '--source app=git@github.com:acme/app.git: the repository is an SSH address, and CodeBuild clones GitHub, GitLab, Bitbucket and CodeCommit repositories from their HTTPS clone URL; give https://github.com/acme/app.git',
    ],
    [
      'an ssh:// URL, with its user shown (not a credential)',
      ['--source', 'app=ssh://git@gitlab.acme.example:2222/platform/app.git', ...ENV],
      '--source app=ssh://git@gitlab.acme.example:2222/platform/app.git: the repository is an SSH address, and CodeBuild clones GitHub, GitLab, Bitbucket and CodeCommit repositories from their HTTPS clone URL; give https://gitlab.acme.example/platform/app.git',
    ],
    [
      'an http:// URL',
      ['--source', 'app=http://git.acme.example/shop/app.git', ...ENV],
      '--source app=http://git.acme.example/shop/app.git: the repository must use https: CodeBuild clones over HTTPS; give https://git.acme.example/shop/app.git',
    ],
    [
      'a URL of a host of its own without its type',
      ['--source', 'app=https://git.acme.example/shop/app.git', ...ENV],
      '--source app=https://git.acme.example/shop/app.git: the repository is at git.acme.example, whose provider stepdeploy cannot tell from the host: give its type, GITHUB_ENTERPRISE or GITLAB_SELF_MANAGED, e.g. --type app=GITHUB_ENTERPRISE',
    ],
    [
      'a type that is not a self-hosted provider',
      ['--source', 'app=https://git.acme.example/shop/app.git', '--type', 'app=GITLAB', ...ENV],
      '--type app=GITLAB: the repository of app is at git.acme.example: its type must be GITHUB_ENTERPRISE or GITLAB_SELF_MANAGED, not "GITLAB"',
    ],
    [
      'a type that contradicts the host',
      [...SOURCE, '--type', 'app=GITHUB_ENTERPRISE', ...ENV],
      '--type app=GITHUB_ENTERPRISE: the repository of app is a GITHUB repository, not GITHUB_ENTERPRISE: leave the type out',
    ],
    [
      'a type for a source not given',
      [...SOURCE, '--type', 'config=GITHUB_ENTERPRISE', ...ENV],
      '--type config=GITHUB_ENTERPRISE: no --source is named config; sources: app',
    ],
    [
      'a self-managed GitLab repository without its connection',
      ['--source', 'app=https://gitlab.acme.example/shop/app.git', '--type', 'app=GITLAB_SELF_MANAGED', ...ENV],
      '--source app=https://gitlab.acme.example/shop/app.git: CodeBuild reaches GitLab repositories only through a CodeConnections connection; create one (README "Deploy to AWS") and give --connection app=<its ARN>',
    ],
    [
      'a source without a URL',
      ['--source', 'app', ...ENV],
      '--source app: expected NAME=URL, e.g. --source app=https://github.com/acme/app.git',
    ],
    [
      'a source given twice',
      [...SOURCE, ...SOURCE, ...ENV],
      '--source app=https://github.com/acme/app.git: source app is given twice; give each source once',
    ],
    [
      'an invalid pipeline name',
      [...SOURCE, ...ENV, '--pipeline', '1shop'],
      '--pipeline "1shop" is not a valid pipeline name: lowercase letters, digits and "-", starting with a letter, at most 30 characters; e.g. --pipeline shop',
    ],
    [
      'an invalid tooling account',
      [...SOURCE, ...ENV, '--tooling-account', '99'],
      '--tooling-account "99" must be a 12-digit AWS account id; e.g. --tooling-account 999999999999',
    ],
    [
      'a GitLab repository without its connection',
      ['--source', 'config=https://gitlab.com/acme/config.git', ...ENV],
      '--source config=https://gitlab.com/acme/config.git: CodeBuild reaches GitLab repositories only through a CodeConnections connection; create one (README "Deploy to AWS") and give --connection config=<its ARN>',
    ],
    [
      'a connection for a source not given',
      [...SOURCE, ...ENV, '--connection', `config=${CONNECTION}`],
      `--connection config=${CONNECTION}: no --source is named config; sources: app`,
    ],
    [
      'a connection that is not a connection ARN',
      [...SOURCE, ...ENV, '--connection', 'app=arn:aws:iam::999999999999:role/x'],
      '--connection app=arn:aws:iam::999999999999:role/x: the connection must be a CodeConnections connection ARN',
    ],
    ['sources without environments', SOURCE, 'init needs --env NAME=ACCOUNT/REGION for each environment, got none'],
    ['environments without sources', ENV, 'init needs --source NAME=URL for each repository, got none'],
  ])('%s, with the value and the fix, writing nothing', async (_, args, message) => {
    expect(await refused(args)).toContain(`stepdeploy: ${message}`);
  });

  describe('hostile values, which never reach a shell', () => {
    let canary: string;
    beforeEach(() => {
      canary = join(emptyFolder(), 'CANARY');
    });
    const SHELL_RULE =
      'must not contain ` $ ; | & < > \\ quotes or control characters (a shell would read them as code); give the plain URL or path';
    test.each([
      ['$(...) in a URL', (c: string) => ['--source', `app=https://github.com/acme/$(touch ${c}).git`], SHELL_RULE],
      ['a ; in a path', (c: string) => ['--source', `app=../app;touch ${c}`], SHELL_RULE],
      ['backticks in a path', (c: string) => ['--source', `app=\`touch ${c}\``], SHELL_RULE],
      [
        'a leading "-"',
        (c: string) => ['--source', `app=--upload-pack=touch ${c}`],
        'must not start with "-" (a program would read it as an option); give the plain URL or path',
      ],
      [
        "git's ext:: remote helper",
        (c: string) => ['--source', `app=ext::sh -c touch% ${c}`],
        'must not be a git remote-helper address (<transport>::...); give a URL or a path',
      ],
      ['a control character (a terminal escape), shown escaped', () => ['--source', 'app=../app\u001b[2J'], SHELL_RULE],
    ])('%s: refused with the rule, nothing run, nothing written', async (_, args, rule) => {
      const stderr = await refused([...args(canary), ...ENV]);

      expect(stderr).toContain(`: the repository ${rule}`);
      expect(stderr).not.toContain('\u001b');
      expect(existsSync(canary)).toBe(false);
    });

    test.each([
      ['a source name', (c: string) => ['--source', `$(touch ${c})=https://github.com/acme/app.git`], 'is not valid'],
      ['a type', (c: string) => [...SOURCE, '--type', `app=$(touch ${c})`], 'leave the type out'],
      [
        'an environment name',
        (c: string) => [...SOURCE, '--env', `a;touch ${c}=111111111111/eu-west-1`],
        'is not valid',
      ],
      [
        'a pipeline name',
        (c: string) => [...SOURCE, ...ENV, '--pipeline', `\`touch ${c}\``],
        'is not a valid pipeline name',
      ],
    ])('in %s: refused, nothing run, nothing written', async (_, args, reason) => {
      const stderr = await refused([...args(canary), ...(args(canary).includes('--env') ? [] : ENV)]);

      expect(stderr).toContain(reason);
      expect(existsSync(canary)).toBe(false);
    });
  });

  test('a repository URL with a token in it, without repeating the token', async () => {
    const stderr = await refused([
      '--source',
      'app=https://x-access-token:ghp_secret123@github.com/acme/app.git',
      ...ENV,
    ]);
    expect(stderr).toContain(
      '--source app=<not shown: it carries credentials>: the repository must not carry credentials',
    );
    expect(stderr).not.toContain('ghp_secret123');
  });
});

/** A terminal in this process: readline in terminal mode on streams, answered as each question appears. */
function fakeTerminal() {
  const input = Object.assign(new PassThrough(), { isTTY: true });
  const output = Object.assign(new PassThrough(), { isTTY: true });
  let shown = '';
  let read = 0;
  output.setEncoding('utf8').on('data', (chunk: string) => (shown += chunk));
  const waitFor = async (text: string): Promise<void> => {
    for (let i = 0; i < 500; i++) {
      const at = shown.indexOf(text, read);
      if (at >= 0) {
        read = at + text.length;
        return;
      }
      await new Promise((r) => setTimeout(r, 10));
    }
    throw new Error(`the question "${text}" was never asked; shown:\n${shown}`);
  };
  return {
    terminal: { input, output } as Terminal,
    shown: () => shown,
    /** Waits for the question, then types the answer and Enter. */
    answer: async (question: string, text: string) => {
      await waitFor(question);
      input.write(`${text}\r`);
    },
    waitFor,
    /** Keys typed without Enter. */
    type: (keys: string) => input.write(keys),
    end: () => input.end(),
  };
}

describe('init at a terminal', () => {
  test('asks each value, checks it as it is given, asks again when wrong, then writes a config that loads', async () => {
    const dir = join(emptyFolder(), 'shop');
    const tty = fakeTerminal();
    const io = capture();
    const done = runInit({ source: [], env: [], dir }, io, tty.terminal);
    await tty.answer('Pipeline name [shop]', '');
    await tty.answer('Source name [app]', '');
    await tty.answer('Repository of app', 'git@github.com:acme/shop.git');
    await tty.waitFor('the repository is an SSH address');
    await tty.waitFor('give https://github.com/acme/shop.git');
    await tty.answer('Repository of app', 'no-clone');
    await tty.waitFor(`no folder at ${join(dir, 'no-clone')}; give the path of a clone`);
    await tty.answer('Repository of app', 'https://github.com/acme/shop.git');
    await tty.answer("CodeConnections connection ARN of app, or Enter for the account's source credential", '');
    await tty.answer('Default branch of app [main]', 'trunk');
    await tty.answer('Where app lands in the combined artifact ("." is its root) [.]', '');
    await tty.answer('Another source: its name, or Enter when done', 'config');
    await tty.answer('Repository of config', 'https://gitlab.acme.example/acme/shop-config.git');
    await tty.answer('Provider of config, at gitlab.acme.example (GITHUB_ENTERPRISE or GITLAB_SELF_MANAGED)', 'gitlab');
    await tty.waitFor('its type must be GITHUB_ENTERPRISE or GITLAB_SELF_MANAGED, not "GITLAB"');
    await tty.answer('Provider of config', 'gitlab_self_managed');
    await tty.answer('CodeConnections connection ARN of config (CodeBuild reaches GitLab only through one)', '');
    await tty.waitFor('the connection must be a CodeConnections connection ARN');
    await tty.answer('CodeConnections connection ARN of config', CONNECTION);
    await tty.answer('Default branch of config [main]', '');
    await tty.answer('Where config lands in the combined artifact ("." is its root) [config/]', '.');
    await tty.waitFor('. is where app lands; give each source its own folder');
    await tty.answer('Where config lands', 'settings/');
    await tty.answer('Another source: its name, or Enter when done', '');
    await tty.answer('Environment name [acceptance]', '');
    await tty.answer('AWS account of acceptance (12 digits)', '12345');
    await tty.waitFor('the account must be a 12-digit AWS account id');
    await tty.answer('AWS account of acceptance (12 digits)', '111111111111');
    await tty.answer('Region of acceptance', 'eu-central-1');
    await tty.answer('Branches acceptance may deploy (patterns, comma-separated; * is any) [*]', 'feature/*, trunk');
    await tty.answer('Another environment: its name, or Enter when done', 'production');
    await tty.answer('AWS account of production (12 digits)', '222222222222');
    await tty.answer('Region of production [eu-central-1]', '');
    await tty.answer('Branches production may deploy (patterns, comma-separated; * is any) [trunk]', '');
    await tty.answer('Another environment: its name, or Enter when done', '');
    await tty.answer('Tooling account', '999999999999');
    await tty.answer('Copy the default buildspecs into buildspecs/ to edit them? (y/n) [n]', 'y');
    expect(await done).toBe(ExitCode.Ok);

    const config = loadConfig(join(dir, 'stepdeploy.config.yml'));
    expect(config.pipeline).toBe('shop');
    expect(config.toolingAccount).toBe('999999999999');
    expect(config.sources).toEqual({
      app: { repository: 'https://github.com/acme/shop.git', defaultBranch: 'trunk', path: '.' },
      config: {
        repository: 'https://gitlab.acme.example/acme/shop-config.git',
        type: 'GITLAB_SELF_MANAGED',
        defaultBranch: 'main',
        path: 'settings/',
        connectionArn: CONNECTION,
      },
    });
    expect(config.environments.acceptance).toMatchObject({
      account: '111111111111',
      region: 'eu-central-1',
      branches: ['feature/*', 'trunk'],
    });
    expect(config.environments.production).toMatchObject({ region: 'eu-central-1', branches: ['trunk'] });
    expect(readdirSync(join(dir, 'buildspecs')).sort()).toEqual(['build.yml', 'deploy.yml']);
  });

  test('refuses before the first question when a file is in the way', async () => {
    const dir = emptyFolder();
    writeFileSync(join(dir, 'stepdeploy.config.yml'), 'pipeline: mine\n');
    const tty = fakeTerminal();
    await expect(runInit({ source: [], env: [], dir }, capture(), tty.terminal)).rejects.toThrow(
      `init writes nothing: stepdeploy.config.yml already exists in ${dir}; move it away, or write into another folder with --dir`,
    );
    expect(tty.shown()).toBe('');
  });

  test('Ctrl-C stops it, as interrupted, and nothing is written', async () => {
    const dir = emptyFolder();
    const tty = fakeTerminal();
    const done = runInit({ source: [], env: [], dir }, capture(), tty.terminal);
    await tty.answer('Pipeline name', 'shop');
    await tty.waitFor('Source name');
    tty.type('\x03');
    await expect(done).rejects.toMatchObject({
      message: 'init interrupted; nothing was written',
      exitCode: ExitCode.Interrupted,
    });
    expect(readdirSync(dir)).toEqual([]);
  });

  test('input that ends before the last answer writes nothing', async () => {
    const dir = emptyFolder();
    const tty = fakeTerminal();
    const done = runInit({ source: [], env: [], dir }, capture(), tty.terminal);
    await tty.answer('Pipeline name', 'shop');
    await tty.waitFor('Source name');
    tty.end();
    await expect(done).rejects.toThrow('the input ended before every question was answered; nothing was written');
    expect(readdirSync(dir)).toEqual([]);
  });
});

const haveScript = spawnSync('script', ['--version'], { encoding: 'utf8' }).status === 0;
if (!haveScript) console.warn('script (util-linux) is not on PATH: the pseudo-terminal test of init was SKIPPED');

(haveScript ? test : test.skip)(
  'the stepdeploy command in a pseudo-terminal asks, and what it writes loads',
  async () => {
    const dir = join(emptyFolder(), 'payments');
    // script(1) gives the command a pseudo-terminal for stdin and stdout, as a person's shell does.
    const child = spawn('script', ['-qfec', `${process.execPath} ${BIN} init --dir ${dir}`, '/dev/null'], {
      cwd: ROOT,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let shown = '';
    let read = 0;
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (shown += chunk));
    const exited = new Promise<number | null>((r) => child.on('exit', r));
    const answer = async (question: string, text: string) => {
      const deadline = Date.now() + SPAWN_TIMEOUT_MS;
      while (shown.indexOf(question, read) < 0) {
        if (Date.now() > deadline) throw new Error(`never asked "${question}"; shown:\n${shown}`);
        await new Promise((r) => setTimeout(r, 20));
      }
      read = shown.indexOf(question, read) + question.length;
      child.stdin!.write(`${text}\r`);
    };
    await answer('Pipeline name [payments]', '');
    await answer('Source name [app]', '');
    await answer('Repository of app', 'https://github.com/acme/payments.git');
    await answer('CodeConnections connection ARN of app', '');
    await answer('Default branch of app [main]', '');
    await answer('Where app lands', '');
    await answer('Another source', '');
    await answer('Environment name [acceptance]', '');
    await answer('AWS account of acceptance', '111111111111');
    await answer('Region of acceptance', 'eu-west-1');
    await answer('Branches acceptance may deploy', '');
    await answer('Another environment', '');
    await answer('Tooling account', '');
    await answer('Copy the default buildspecs', '');
    expect(await exited).toBe(0);
    expect(shown).toContain('Wrote into');
    const config = loadConfig(join(dir, 'stepdeploy.config.yml'));
    expect(config.toolingAccount).toBeUndefined();
    expect(Object.keys(config.environments)).toEqual(['acceptance']);
  },
  SPAWN_TIMEOUT_MS,
);
