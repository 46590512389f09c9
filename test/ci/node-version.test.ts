import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { minVersion, satisfies } from 'semver';

/**
 * The Node.js line the project supports is said in three places that must agree: package.json
 * `engines`, the README, and the Node that CI (`.ci/run`) runs the tests on. And a fresh install on
 * the oldest supported Node must show no EBADENGINE warning: every locked package accepts it.
 */

const ROOT = join(__dirname, '..', '..');
const read = (path: string): string => readFileSync(join(ROOT, path), 'utf8');
const pkg = JSON.parse(read('package.json')) as { engines: { node: string } };
const lock = JSON.parse(read('package-lock.json')) as {
  packages: Record<string, { engines?: { node?: string } | string[]; optional?: boolean }>;
};
const oldest = minVersion(pkg.engines.node)!.version;

it('CI runs the tests on a Node that package.json supports, and the README names the same line', () => {
  const pinned = /^NODE_VERSION=(\S+)$/m.exec(read('.ci/run'))?.[1];
  expect(pinned).toBeDefined();
  expect(satisfies(pinned!, pkg.engines.node)).toBe(true);
  expect(read('.ci/run')).toContain(`>= ${oldest.split('.')[0]}`);
  expect(read('README.md')).toContain(`Needs Node.js ${oldest.split('.')[0]} or later`);
});

it('every locked package accepts the oldest supported Node, so npm ci warns no EBADENGINE there', () => {
  const refusing = Object.entries(lock.packages)
    .filter(
      ([path, entry]) =>
        path !== '' &&
        !Array.isArray(entry.engines) &&
        entry.engines?.node !== undefined &&
        !satisfies(oldest, entry.engines.node),
    )
    .map(([path, entry]) => `${path} requires node ${(entry.engines as { node: string }).node}`);
  expect(refusing).toEqual([]);
});
