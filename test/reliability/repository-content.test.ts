import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startExampleRuntime, type TestRuntime } from '../helpers/local-runtime';
import {
  enteredStates,
  localBuilds,
  readBytes,
  topLevelStatesEntered,
  variableOf,
  waitFor,
} from '../helpers/reliability';
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
  test('a file named a\\b.txt: FAILED at FetchSources naming it, never combined, never shipped as a folder a/', async () => {
    pushBranch('crafted/backslash', [{ file: 'lib/a\\b.txt', content: 'one file, not a folder\n' }]);

    const failed = await t.run('acceptance-crafted-backslash', {
      environment: 'acceptance',
      branches: { app: 'crafted/backslash' },
    });

    expect(failed).toMatchObject({ status: 'FAILED', lastTopLevelState: { name: 'FetchSources' } });
    expect(topLevelStatesEntered(t.runtime.machine.history(failed.executionArn))).not.toContain('CombineConfigAndCode');
    const fetch = localBuilds(t.runtime.home).filter(
      (b) => b.BuildStatus === 'FAILED' && variableOf(b, 'STEPDEPLOY_BRANCH') === 'crafted/backslash',
    );
    expect(fetch).toHaveLength(1);
    expect(readFileSync(fileURLToPath(fetch[0]!.Logs.DeepLink), 'utf8')).toContain(
      'source app has file names with a backslash, which zip tools read as a folder separator: lib/a\\b.txt',
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

describe('a repository with more entries than a plain zip can count', () => {
  test('65,600 files (over the 65,535 of a zip without ZIP64): fetched and combined, every file in source.zip', async () => {
    // Made with git plumbing (one blob per folder, 65,600 index entries), not 65,600 files on disk.
    const work = mkdtempSync(join(tmpdir(), 'stepdeploy-crafted-'));
    const folders = 160;
    const perFolder = 410;
    try {
      git(work, ['clone', '--quiet', appRepo, '.']);
      git(work, ['checkout', '--quiet', '-B', 'crafted/many', 'origin/main']);
      const index: string[] = [];
      for (let d = 0; d < folders; d++) {
        const blob = execFileSync('git', ['hash-object', '-w', '--stdin'], {
          cwd: work,
          input: `folder ${d}\n`,
          encoding: 'utf8',
          env: GIT_ENV,
        }).trim();
        for (let f = 0; f < perFolder; f++) index.push(`100644 ${blob}\tmany/d${d}/f${f}.txt\n`);
      }
      execFileSync('git', ['update-index', '--index-info'], { cwd: work, input: index.join(''), env: GIT_ENV });
      git(work, ['commit', '--quiet', '-m', 'test: many files']);
      git(work, ['push', '--quiet', 'origin', 'HEAD:refs/heads/crafted/many']);
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
    const name = 'acceptance-crafted-many';

    // The promise is about the combine; the build and deploy would only extract the same
    // 65,600 files twice more (minutes on a loaded machine), so the execution stops there.
    const { executionArn } = t.runtime.machine.start(name, {
      environment: 'acceptance',
      branches: { app: 'crafted/many' },
    });
    await waitFor(
      'CombineConfigAndCode to end',
      () =>
        t.runtime.machine.describe(executionArn).status !== 'RUNNING' ||
        enteredStates(t.runtime.machine.history(executionArn)).includes('BuildTemplates'),
      600_000,
      250,
    );
    const { status, error, cause } = t.runtime.machine.describe(executionArn);
    if (status === 'RUNNING') t.runtime.machine.stop(executionArn);
    await t.runtime.machine.wait(executionArn);

    expect(status === 'RUNNING' ? 'combined' : `${status} ${error}: ${cause}`).toBe('combined');
    const zip = join(t.dir, 'many-source.zip');
    writeFileSync(zip, await readBytes(t.runtime, `artifacts/acceptance/${name}/source.zip`));
    // Info-ZIP reads the ZIP64 end record: it lists every entry and tests every CRC.
    const listed = execFileSync('unzip', ['-Z1', zip], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 }).split('\n');
    const many = listed.filter((n) => n.startsWith('app/many/') || n.startsWith('many/'));
    expect(many).toHaveLength(folders * perFolder);
    expect(listed.length).toBeGreaterThan(65_535);
    expect(execFileSync('unzip', ['-tqq', zip], { encoding: 'utf8' })).toBe('');
    const last = many.find((n) => n.endsWith(`many/d${folders - 1}/f${perFolder - 1}.txt`));
    expect(last).toBeDefined();
    expect(execFileSync('unzip', ['-p', zip, last!], { encoding: 'utf8' })).toBe(`folder ${folders - 1}\n`);
  }, 900_000);
});
