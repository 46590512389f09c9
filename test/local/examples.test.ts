import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EXAMPLE_REPOS, EXAMPLES_DIR, prepareExampleRepositories } from '../../local/examples';
import { loadConfig } from '../../shared/config';

/**
 * The bundled example's repositories are made from examples/ on first run. Where there is no
 * examples/ (the npm package), a config that names them fails with what, where and the fix.
 */

const ROOT = join(__dirname, '..', '..');
let dir: string;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'stepdeploy-examples-'));
  copyFileSync(join(ROOT, 'stepdeploy.config.yml'), join(dir, 'stepdeploy.config.yml'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function prepare(examples: string): string[] {
  const configPath = join(dir, 'stepdeploy.config.yml');
  return prepareExampleRepositories(loadConfig(configPath), configPath, join(dir, '.stepdeploy'), examples);
}

test('makes the example repositories from examples/ on first run, and only then', () => {
  const repos = join(dir, '.stepdeploy', 'example-repos');

  expect(prepare(EXAMPLES_DIR)).toEqual(EXAMPLE_REPOS.map((repo) => join(repos, `${repo}.git`)));
  expect(
    execFileSync('git', ['--git-dir', join(repos, 'app.git'), 'branch', '--format=%(refname:short)'], {
      encoding: 'utf8',
    }),
  ).toBe('develop\nfeature/cloudformationchange\nmain\n');
  expect(prepare(EXAMPLES_DIR)).toEqual([]);
});

test('fails without examples/ (the installed package), naming the source, the path and the fix', () => {
  const configPath = join(dir, 'stepdeploy.config.yml');

  expect(() => prepare(join(dir, 'no-examples'))).toThrow(
    `sources.app.repository ".stepdeploy/example-repos/app.git" in ${configPath} names a repository of stepdeploy's bundled example (${join(dir, '.stepdeploy', 'example-repos', 'app.git')}), which only a clone of the stepdeploy repository can make (from its examples/ folder, not in the npm package); write a config for your own repositories with \`npx stepdeploy init\`, or set each source's repository to your clone (a path relative to the config file) or its URL`,
  );
  expect(existsSync(join(dir, '.stepdeploy'))).toBe(false);
});
