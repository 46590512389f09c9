import { hookMilliseconds } from '../../bench/push';
import { CONSOLE_SECTION, PUSH_SECTION, withKeptSections, withSection } from '../../bench/kept-sections';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** What bench/push.ts reads from git's trace2 events, and how its section survives `npm run bench`. */

// Trimmed from a real `GIT_TRACE2_EVENT` of `git push` to a local repository (git 2.39).
const TRACE = [
  { event: 'child_start', sid: 'push', child_id: 0, child_class: 'transport/file' },
  { event: 'child_start', sid: 'push/receive', child_id: 0, child_class: '?' },
  { event: 'child_exit', sid: 'push/receive', child_id: 0, t_rel: 0.033 },
  { event: 'child_start', sid: 'push/receive', child_id: 2, child_class: 'hook', hook_name: 'post-receive' },
  { event: 'child_exit', sid: 'push', child_id: 2, t_rel: 9.9 },
  { event: 'child_exit', sid: 'push/receive', child_id: 2, t_rel: 0.3125 },
]
  .map((e) => JSON.stringify(e))
  .join('\n');

test("the hook's time is its own child_exit's t_rel: same session, same child id", () => {
  expect(hookMilliseconds(TRACE, 'post-receive')).toBe(312.5);
});

test('fails when no such hook ran, naming it', () => {
  expect(() => hookMilliseconds(TRACE, 'pre-receive')).toThrow('no pre-receive hook ran');
});

test('a bench rewriting its own section leaves it where it is, before the sections after it', () => {
  const dir = mkdtempSync(join(tmpdir(), 'stepdeploy-kept-'));
  try {
    const file = join(dir, 'BENCHMARKS.md');
    const console = `${CONSOLE_SECTION.start}\n## 8. console\nold\n${CONSOLE_SECTION.end}`;
    const push = `${PUSH_SECTION.start}\n## 9. push\nold\n${PUSH_SECTION.end}`;
    const text = `# Benchmarks\n\n${console}\n\n${push}\n\n## Reproduce\nsteps\n`;
    writeFileSync(file, text);

    const replaced = withSection(text, file, CONSOLE_SECTION, console.replace('old', 'new'));

    expect(replaced).toBe(text.replace('## 8. console\nold', '## 8. console\nnew'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a full bench rewrite keeps the push section; the push bench replaces only its own', () => {
  const dir = mkdtempSync(join(tmpdir(), 'stepdeploy-kept-'));
  try {
    const file = join(dir, 'BENCHMARKS.md');
    const section = `${PUSH_SECTION.start}\n## 8. push\nold\n${PUSH_SECTION.end}`;
    writeFileSync(file, `# Benchmarks\nold figures\n\n${section}\n\n## Reproduce\nsteps\n`);

    const rewritten = withKeptSections('# Benchmarks\nnew figures\n\n## Reproduce\nsteps\n', file);
    const replaced = withSection(rewritten, file, PUSH_SECTION, section.replace('old', 'new'));

    expect(rewritten).toBe(`# Benchmarks\nnew figures\n\n${section}\n\n## Reproduce\nsteps\n`);
    expect(replaced).toContain('## 8. push\nnew\n');
    expect(replaced).not.toContain('## 8. push\nold');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
