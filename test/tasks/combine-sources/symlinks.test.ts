import { MAX_FOLLOWS, resolveLink, SymlinkTable } from '../../../tasks/combine-sources/symlinks';

function table(links: ReadonlyArray<[string, string]>): SymlinkTable {
  const t = new SymlinkTable();
  for (const [path, target] of links) t.add(path, target, 'source "app"');
  return t;
}

function map(links: ReadonlyArray<[string, string]>): Map<string, { target: string }> {
  return new Map(links.map(([path, target]) => [path, { target }]));
}

/** The chain: a/b/up0 -> ../.., a/b/up{i} -> up{i-1}/.., each link's own text stays inside. */
function upChain(length: number): Array<[string, string]> {
  const links: Array<[string, string]> = [['a/b/up0', '../..']];
  for (let i = 1; i < length; i++) links.push([`a/b/up${i}`, `up${i - 1}/..`]);
  return links;
}

describe('resolveLink follows links through links, as the file system does', () => {
  it('resolves a link whose own text stays inside but whose path leads through a link above the root', () => {
    const links = map(upChain(13));
    expect(resolveLink(links, 'a/b/up0')).toEqual({ inside: '' });
    // up0/.. is not a/b: up0 is the root, and .. of the root is outside.
    expect(resolveLink(links, 'a/b/up1')).toEqual({ outside: '..' });
    links.set('pw', { target: 'a/b/up12/etc/passwd' });
    // Twelve levels up from the artifact's root: / on the build machine, whatever its depth.
    expect(resolveLink(links, 'pw')).toEqual({ outside: `${'../'.repeat(12)}etc/passwd` });
  });

  it("refuses `parent -> a/b/up0/..`, which lists the build's own folder", () => {
    expect(
      resolveLink(
        map([
          ['a/b/up0', '../..'],
          ['parent', 'a/b/up0/..'],
        ]),
        'parent',
      ),
    ).toEqual({ outside: '..' });
  });

  it('follows a link through one that comes later in zip order', () => {
    const t = table([
      ['first', 'later/../..'],
      ['x/later', '..'],
      ['later', 'x/later'],
    ]);
    // first -> later/../.. ; later -> x/later -> x/.. = root ; root/.. is outside.
    expect(t.escaping()).toEqual({
      path: 'first',
      owner: 'source "app"',
      why: 'points outside the artifact through other links (it resolves to ../..)',
    });
  });

  it('answers an absolute target reached through a link as outside', () => {
    expect(
      resolveLink(
        map([
          ['l1', 'l2'],
          ['l2', '/etc'],
        ]),
        'l1',
      ),
    ).toEqual({ outside: '/etc' });
  });

  it('keeps links that stay inside, also through other links and folders', () => {
    const links = map([
      ['lib/settings.yml', '../config/acceptance/settings.yml'],
      ['config/acceptance', 'envs/acc'],
      ['current', 'lib'],
      ['via', 'current/../README.md'],
      ['bin/tool', '../node_modules/.bin/tool'],
    ]);
    expect(resolveLink(links, 'lib/settings.yml')).toEqual({ inside: 'config/envs/acc/settings.yml' });
    expect(resolveLink(links, 'via')).toEqual({ inside: 'README.md' });
    expect(resolveLink(links, 'bin/tool')).toEqual({ inside: 'node_modules/.bin/tool' });
    expect(table([...links].map(([p, { target }]) => [p, target])).escaping()).toBeUndefined();
  });

  it('answers a cycle, and a chain longer than the file system follows, as a loop', () => {
    expect(
      resolveLink(
        map([
          ['a', 'b'],
          ['b', 'a'],
        ]),
        'a',
      ),
    ).toEqual({ loop: true });
    expect(resolveLink(map([['self', 'self']]), 'self')).toEqual({ loop: true });
    expect(resolveLink(map([['d/x', '../d/x/y']]), 'd/x')).toEqual({ loop: true });
    const chain = (n: number): Map<string, { target: string }> =>
      map(Array.from({ length: n }, (_, i) => [`l${i}`, i === n - 1 ? 'file' : `l${i + 1}`] as [string, string]));
    expect(resolveLink(chain(MAX_FOLLOWS), 'l0')).toEqual({ inside: 'file' });
    expect(resolveLink(chain(MAX_FOLLOWS + 1), 'l0')).toEqual({ loop: true });
  });

  it('names the first escaping link in the order added, with why, or a cycle as one the build could not follow', () => {
    expect(table([...upChain(3), ['ok', 'a/b']]).escaping()).toMatchObject({
      path: 'a/b/up1',
      why: expect.stringContaining('points outside the artifact through other links'),
    });
    expect(
      table([
        ['a', 'b'],
        ['b', 'a'],
      ]).escaping(),
    ).toEqual({
      path: 'a',
      owner: 'source "app"',
      why: `is a cycle of links or a chain of more than ${MAX_FOLLOWS} (the build could not follow it)`,
    });
  });
});
