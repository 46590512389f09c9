import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { stringify } from 'yaml';
import { checkLocalRepositories } from '../../local/local-repositories';
import { LocalRuntime } from '../../local/runtime';
import { loadConfig } from '../../shared/config';

/**
 * The local runtime in a user's repository: sources are their clones (a path relative to the
 * config file, or a file:// URL), and a path that is not a git repository, or a buildspec that is
 * not there, fails the start naming the setting and the fix.
 */

const ROOT = join(__dirname, '..', '..');
let dir: string;

function git(cwd: string, ...args: string[]): void {
  execFileSync('git', args, {
    cwd,
    stdio: 'ignore',
    env: { ...process.env, GIT_CONFIG_GLOBAL: '/dev/null', GIT_CONFIG_NOSYSTEM: '1' },
  });
}

/** A work tree (not bare) with one commit, as a developer's clone is. */
function clone(name: string): string {
  const path = join(dir, name);
  mkdirSync(path, { recursive: true });
  git(path, 'init', '-q', '--initial-branch=main');
  writeFileSync(join(path, 'README.md'), name);
  git(path, 'add', '.');
  git(path, '-c', 'user.name=t', '-c', 'user.email=t@example.com', 'commit', '-q', '-m', 'first');
  return path;
}

function writeConfig(sources: Record<string, string>, buildspecs?: Record<string, string>): string {
  const path = join(dir, 'infra', 'stepdeploy.config.yml');
  mkdirSync(join(dir, 'infra'), { recursive: true });
  writeFileSync(
    path,
    stringify({
      pipeline: 'shop',
      sources: Object.fromEntries(
        Object.entries(sources).map(([name, repository], i) => [
          name,
          { repository, path: i === 0 ? '.' : `${name}/` },
        ]),
      ),
      environments: {
        acceptance: {
          account: '111111111111',
          region: 'eu-west-1',
          deployRoleArn: 'arn:aws:iam::111111111111:role/deploy',
          branches: ['*'],
        },
      },
      ...(buildspecs ? { buildspecs } : {}),
    }),
  );
  return path;
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'stepdeploy-user-repos-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

it('takes clones given as a path relative to the config file and as a file:// URL', async () => {
  clone('app');
  const config = clone('config');
  const path = writeConfig({ app: '../app', config: pathToFileURL(config).href });

  await expect(checkLocalRepositories(loadConfig(path), path)).resolves.toBeUndefined();
});

it('fails naming the source, the folder and the fix when a configured path is not a git repository', async () => {
  clone('app');
  // A folder inside another repository's work tree: git's fetch does not look upwards, nor does the check.
  mkdirSync(join(dir, 'app', 'config'));
  const path = writeConfig({ app: '../app', config: '../app/config' });

  await expect(checkLocalRepositories(loadConfig(path), path)).rejects.toThrow(
    `sources.config.repository "../app/config" in ${path}: ${join(dir, 'app', 'config')} is not a git repository (fatal: '${join(dir, 'app', 'config')}' does not appear to be a git repository); set it to a git repository on this machine (a clone: \`git clone <url> <path>\`; a relative path is relative to the config file) or to the repository URL`,
  );
});

it('fails naming the source when a configured path does not exist', async () => {
  clone('app');
  const path = writeConfig({ app: '../app', config: 'file:///nonexistent/config.git' });

  await expect(checkLocalRepositories(loadConfig(path), path)).rejects.toThrow(
    `sources.config.repository "file:///nonexistent/config.git" in ${path}: no folder at /nonexistent/config.git; set it to a git repository`,
  );
});

it('fails the start, before it listens, when a local repository is not a git repository', async () => {
  mkdirSync(join(dir, 'app'));
  const path = writeConfig({ app: '../app' });

  await expect(LocalRuntime.start({ configPath: path })).rejects.toMatchObject({
    name: 'ConfigError',
    message: expect.stringContaining(`sources.app.repository "../app" in ${path}: ${join(dir, 'app')} is not a git`),
  });
});

it('fails the start naming the setting when a buildspec of the config is not there', async () => {
  clone('app');
  // buildspecs.build is there, the default buildspecs/deploy.yml beside the config is not.
  cpSync(join(ROOT, 'buildspecs', 'build.yml'), join(dir, 'infra', 'build.yml'));
  const path = writeConfig({ app: '../app' }, { build: 'build.yml' });

  await expect(LocalRuntime.start({ configPath: path })).rejects.toThrow(
    `buildspecs.deploy in ${path}: cannot read buildspec ${join(dir, 'infra', 'buildspecs', 'deploy.yml')} (ENOENT); create it (\`stepdeploy init\` can write the default buildspecs) or point buildspecs.deploy at an existing file`,
  );
});
