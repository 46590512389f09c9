import { PathCollisionError } from '../../../tasks/combine-sources/errors';
import { PathRegistry } from '../../../tasks/combine-sources/path-registry';

describe('PathRegistry', () => {
  it('refuses a file written twice, naming the path and both owners', () => {
    const registry = new PathRegistry();
    registry.claimFile('config/app.yml', 'source "config"');

    expect(() => registry.claimFile('config/app.yml', 'source "app"')).toThrow(
      new PathCollisionError(
        '"config/app.yml" in the combined artifact is written by both source "config" and source "app" (already a file); ' +
          'give the sources distinct paths in stepdeploy.config.yml or remove the file from one of them',
      ),
    );
    expect(() => registry.claimFile('config/app.yml', 'source "config"')).toThrow(
      'written by source "config" twice (already a file)',
    );
  });

  it('refuses a file where a folder is, and a folder or a parent where a file is', () => {
    const registry = new PathRegistry();
    registry.claimFile('lib/x/y.rb', 'source "app"');
    registry.claimFile('README', 'source "app"');

    expect(() => registry.claimFile('lib/x', 'source "config"')).toThrow(
      '"lib/x" in the combined artifact is written by both source "app" and source "config" (already a folder)',
    );
    expect(() => registry.claimFolder('README', 'source "config"')).toThrow(
      '"README" in the combined artifact is written by both source "app" and source "config" (already a file)',
    );
    expect(() => registry.claimFile('README/notes.txt', 'source "config"')).toThrow(
      '"README" in the combined artifact is written by both source "app" and source "config" (already a file)',
    );
  });

  it('merges folders: a folder claimed again, or first made by a file inside it, answers false', () => {
    const registry = new PathRegistry();

    expect(registry.claimFolder('shared', 'source "app"')).toBe(true);
    expect(registry.claimFolder('shared', 'source "config"')).toBe(false);
    registry.claimFile('lib/a/b.txt', 'source "app"');
    expect(registry.claimFolder('lib/a', 'source "config"')).toBe(false);
    expect(registry.claimFolder('lib/a/c', 'source "config"')).toBe(true);
  });

  it('compares names exactly, UTF-8 included: no look-alike or prefix is taken for another', () => {
    const registry = new PathRegistry();
    registry.claimFile('café/menu.txt', 'source "app"');

    // "cafe\u0301" is another byte sequence than "caf\u00e9": two paths, as in a zip.
    expect(() => registry.claimFile('cafe\u0301/menu.txt', 'source "config"')).not.toThrow();
    expect(() => registry.claimFile('café/menu.tx', 'source "config"')).not.toThrow();
    expect(() => registry.claimFile('café/menu.txt', 'source "config"')).toThrow(PathCollisionError);
  });

  it('keeps 150,000 paths (its table and arena grown many times) exactly', () => {
    const registry = new PathRegistry();
    const n = 150_000;
    for (let i = 0; i < n; i++) registry.claimFile(`src/d${i % 1_000}/file-${i}.txt`, 'source "app"');

    for (const i of [0, 1, 4_095, 65_536, n - 1]) {
      expect(() => registry.claimFile(`src/d${i % 1_000}/file-${i}.txt`, 'source "config"')).toThrow(
        `"src/d${i % 1_000}/file-${i}.txt"`,
      );
    }
    expect(registry.claimFolder('src/d999', 'source "config"')).toBe(false);
    expect(() => registry.claimFile(`src/d0/file-${n}.txt`, 'source "config"')).not.toThrow();
    expect(() => registry.claimFile('src', 'source "config"')).toThrow('(already a folder)');
  });

  it('forgets every path on clear() and works as new, reusing its memory', () => {
    const registry = new PathRegistry();
    for (let i = 0; i < 70_000; i++) registry.claimFile(`src/d${i % 300}/file-${i}.txt`, 'source "app"');
    expect(() => registry.claimFile('src', 'source "config"')).toThrow('(already a folder)');

    registry.clear();

    // The same paths again, by another owner, and a file where a folder was.
    registry.claimFile('src', 'source "config"');
    expect(() => registry.claimFile('src/d0/file-0.txt', 'source "app"')).toThrow(
      '"src" in the combined artifact is written by both source "config" and source "app" (already a file)',
    );
    for (let i = 0; i < 70_000; i++) registry.claimFile(`lib/d${i % 300}/file-${i}.txt`, 'source "app"');
    expect(() => registry.claimFile('lib/d7/file-69007.txt', 'source "other"')).toThrow(
      'written by both source "app" and source "other" (already a file)',
    );
    expect(registry.claimFolder('lib/d299', 'source "other"')).toBe(false);
    expect(registry.claimFolder('src2', 'source "other"')).toBe(true);
  });
});
