import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { startExampleRuntime, type TestRuntime } from '../helpers/local-runtime';
import { localBuilds, readBytes, topLevelStatesEntered } from '../helpers/reliability';
import { readZip } from '../helpers/zip';

/**
 * Promise (RELIABILITY.md "What a repository may contain"): what a source repository holds
 * either ships exactly as git has it, or the deployment fails at the step that finds it, with an
 * error that names the path and the fix. End to end on the local runtime: crafted repositories
 * fetched with real git, combined, and (when they pass) built with real bash.
 */

let t: TestRuntime;
let appRepo: string;

beforeAll(async () => {
  t = await startExampleRuntime(undefined, { notify: async () => undefined });
  appRepo = join(t.dir, '.stepdeploy', 'example-repos', 'app.git');
});

afterAll(async () => {
  await t.close();
});

const GIT_ENV = {
  ...process.env,
  GIT_AUTHOR_NAME: 'repository content test',
  GIT_AUTHOR_EMAIL: 'test@stepdeploy.invalid',
  GIT_COMMITTER_NAME: 'repository content test',
  GIT_COMMITTER_EMAIL: 'test@stepdeploy.invalid',
  GIT_CONFIG_NOSYSTEM: '1',
  GIT_CONFIG_GLOBAL: '/dev/null',
};

function git(cwd: string, args: string[]): string {
  return execFileSync('git', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], env: GIT_ENV }).trim();
}

/** A path of the crafted tree: a file (its content), or a symlink (its target). */
type Crafted = { readonly file: string; readonly content: string } | { readonly link: string; readonly target: string };

/** Pushes a branch of the example app repository from main with these paths added, as a colleague would. */
function pushBranch(branch: string, paths: ReadonlyArray<Crafted>): void {
  const work = mkdtempSync(join(tmpdir(), 'stepdeploy-crafted-'));
  try {
    git(work, ['clone', '--quiet', appRepo, '.']);
    git(work, ['checkout', '--quiet', '-B', branch, 'origin/main']);
    for (const p of paths) {
      const at = join(work, 'file' in p ? p.file : p.link);
      mkdirSync(dirname(at), { recursive: true });
      if ('file' in p) writeFileSync(at, p.content);
      else symlinkSync(p.target, at);
    }
    git(work, ['add', '--all']);
    git(work, ['commit', '--quiet', '-m', `test: ${branch}`]);
    git(work, ['push', '--quiet', 'origin', `HEAD:refs/heads/${branch}`]);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** The error message of the failed task, from the execution's cause (the Lambda error's JSON). */
function causeMessage(cause: string | undefined): string {
  return (JSON.parse(cause ?? '{}') as { errorMessage?: string }).errorMessage ?? '';
}

describe('symlinks that lead outside the artifact, through other links too, are refused', () => {
  test('a chain of links, each inside on its own, to /etc/passwd: FAILED at CombineConfigAndCode naming the link, BuildTemplates never runs', async () => {
    const chain: Crafted[] = [{ link: 'a/b/up0', target: '../..' }];
    for (let i = 1; i <= 12; i++) chain.push({ link: `a/b/up${i}`, target: `up${i - 1}/..` });
    pushBranch('crafted/link-chain', [...chain, { link: 'pw', target: 'a/b/up12/etc/passwd' }]);
    const name = 'acceptance-crafted-link-chain';

    const failed = await t.run(name, { environment: 'acceptance', branches: { app: 'crafted/link-chain' } });

    expect(failed).toMatchObject({
      status: 'FAILED',
      error: 'UnsafeEntryError',
      lastTopLevelState: { name: 'CombineConfigAndCode' },
    });
    expect(causeMessage(failed.cause)).toBe(
      'symlink "a/b/up1" (source "app") points outside the artifact through other links (it resolves to ..); ' +
        'the combined artifact is refused: make the link lead to a path inside the repository, or remove it',
    );
    expect(topLevelStatesEntered(t.runtime.machine.history(failed.executionArn))).not.toContain('BuildTemplates');
    expect(localBuilds(t.runtime.home).filter((b) => b.ProjectName === 'stepdeploy-example-build')).toEqual([]);
  }, 60_000);
});

describe('names ship as git has them, or the deployment fails naming them', () => {
  test('a file named a\\b.txt: FAILED at CombineConfigAndCode naming it, never shipped as a folder a/', async () => {
    pushBranch('crafted/backslash', [{ file: 'lib/a\\b.txt', content: 'one file, not a folder\n' }]);

    const failed = await t.run('acceptance-crafted-backslash', {
      environment: 'acceptance',
      branches: { app: 'crafted/backslash' },
    });

    expect(failed).toMatchObject({
      status: 'FAILED',
      error: 'UnsafeEntryError',
      lastTopLevelState: { name: 'CombineConfigAndCode' },
    });
    expect(causeMessage(failed.cause)).toMatch(
      /\(source "app"\) has a file named "lib\/a\\\\b\.txt": a backslash in a name, .*; rename the file in the repository$/,
    );
  }, 60_000);

  test('c:foo.txt, a valid POSIX name, deploys and reaches the build as it is', async () => {
    pushBranch('crafted/drive-like', [{ file: 'c:foo.txt', content: 'not a drive\n' }]);
    const name = 'acceptance-crafted-drive-like';

    const done = await t.run(name, { environment: 'acceptance', branches: { app: 'crafted/drive-like' } });

    expect(done.status).toBe('SUCCEEDED');
    const entries = await readZip(await readBytes(t.runtime, `artifacts/acceptance/${name}/source.zip`));
    expect(entries.find((e) => e.name === 'c:foo.txt')).toMatchObject({ content: 'not a drive\n' });
  }, 60_000);
});
