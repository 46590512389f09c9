import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { ExecutionRecord } from '../../local/executions';
import { startExampleRuntime, type TestRuntime } from '../helpers/local-runtime';
import { buildDirCount, enteredStates } from '../helpers/reliability';

/**
 * Promise: hostile or bad input is rejected at ValidateInput, before any build starts, with a
 * message that names the field, the value and the rule; nothing in it ever runs (the canary file
 * that the injection attempts would create never appears). End to end on the local runtime: real
 * git and bash would run the branch if it got through.
 */

let t: TestRuntime;
let canary: string;

beforeAll(async () => {
  t = await startExampleRuntime(undefined, { notify: async () => undefined });
  canary = join(t.dir, 'canary');
});

afterAll(async () => {
  await t.close();
});

interface HostileCase {
  readonly why: string;
  readonly input: () => unknown;
  /** `<field>: <value as shown> <rule>`: one line of the InvalidInputError message. */
  readonly expected: () => string;
}

const app = (branch: unknown, environment = 'acceptance') => ({ environment, branches: { app: branch } });
/** The value as the message shows it: JSON. */
const q = (value: unknown) => JSON.stringify(value);
const ALLOWLIST = 'only A-Z a-z 0-9 . _ / - are allowed';
const HUGE = { environment: 'acceptance', requestedBy: 'x'.repeat(300 * 1024) };

const CASES: ReadonlyArray<HostileCase> = [
  {
    why: 'shell quote breakout',
    input: () => app('zzz";echo${IFS}"hello";#'),
    expected: () => `branches.app: ${q('zzz";echo${IFS}"hello";#')} contains """; ${ALLOWLIST}`,
  },
  {
    why: 'quote breakout that would create the canary',
    input: () => app(`zzz";touch${'${IFS}'}${canary};#`),
    expected: () => `branches.app: ${q(`zzz";touch${'${IFS}'}${canary};#`)} contains """; ${ALLOWLIST}`,
  },
  {
    why: 'command substitution',
    input: () => app(`feat/$(touch ${canary})`),
    expected: () => `branches.app: ${q(`feat/$(touch ${canary})`)} contains "$"; ${ALLOWLIST}`,
  },
  {
    why: 'backticks',
    input: () => app(`feat/\`touch ${canary}\``),
    expected: () => `branches.app: ${q(`feat/\`touch ${canary}\``)} contains "\`"; ${ALLOWLIST}`,
  },
  {
    why: 'git option -c',
    input: () => app('-c'),
    expected: () => `branches.app: "-c" must not start with "-" (it would read as a command-line option)`,
  },
  {
    why: 'git option --upload-pack=x',
    input: () => app('--upload-pack=x'),
    expected: () => `branches.app: "--upload-pack=x" contains "="; ${ALLOWLIST}`,
  },
  {
    why: 'git option --upload-pack',
    input: () => app('--upload-pack'),
    expected: () => `branches.app: "--upload-pack" must not start with "-" (it would read as a command-line option)`,
  },
  { why: 'a range a..b', input: () => app('a..b'), expected: () => `branches.app: "a..b" must not contain ".."` },
  {
    why: 'a .lock component',
    input: () => app('x.lock'),
    expected: () => `branches.app: "x.lock" no path component may end with ".lock" (got "x.lock")`,
  },
  {
    why: 'a reflog a@{1}',
    input: () => app('a@{1}'),
    expected: () => `branches.app: "a@{1}" contains "@"; ${ALLOWLIST}`,
  },
  { why: 'a leading /', input: () => app('/main'), expected: () => `branches.app: "/main" must not start with "/"` },
  { why: 'a trailing /', input: () => app('main/'), expected: () => `branches.app: "main/" must not end with "/"` },
  {
    why: 'a hidden component',
    input: () => app('feature/.git'),
    expected: () => `branches.app: "feature/.git" no path component may start with "." (got ".git")`,
  },
  {
    why: 'a newline',
    input: () => app('main\ntouch'),
    expected: () => `branches.app: "main\\ntouch" contains U+000A; ${ALLOWLIST}`,
  },
  {
    why: 'a NUL',
    input: () => app('main\u0000'),
    expected: () => `branches.app: "main\\u0000" contains U+0000; ${ALLOWLIST}`,
  },
  {
    why: 'an escape sequence',
    input: () => app('main\u001b[2J'),
    expected: () => `branches.app: "main\\u001b[2J" contains U+001B; ${ALLOWLIST}`,
  },
  {
    why: '300 characters',
    input: () => app('a'.repeat(300)),
    expected: () => `branches.app: ${q('a'.repeat(100))}... (300 characters) must be at most 200 characters (got 300)`,
  },
  { why: 'empty', input: () => app(''), expected: () => `branches.app: "" must not be empty` },
  {
    why: 'Cyrillic look-alike "mаin"',
    input: () => app('m\u0430in'),
    expected: () => `branches.app: "m\\u0430in" contains U+0430; ${ALLOWLIST}`,
  },
  {
    why: 'fullwidth slash look-alike',
    input: () => app('feature\uff0fx'),
    expected: () => `branches.app: "feature\\uff0fx" contains U+FF0F; ${ALLOWLIST}`,
  },
  {
    why: 'not a string',
    input: () => app({ $ne: null }),
    expected: () => `branches.app: {"$ne":null} must be a string (a branch name)`,
  },
  {
    why: 'an unknown environment',
    input: () => ({ environment: 'prod' }),
    expected: () =>
      `environment: "prod" is not a configured environment; one of: acceptance, preproduction, production`,
  },
  {
    why: 'no environment',
    input: () => ({ branches: { app: 'main' } }),
    expected: () => `environment: (missing) is required; one of: acceptance, preproduction, production`,
  },
  {
    why: 'an unknown source',
    input: () => ({ environment: 'acceptance', branches: { infra: 'main' } }),
    expected: () => `branches.infra: "main" is for an unknown source "infra"; configured sources: app, config`,
  },
  {
    why: 'a source named __proto__',
    input: () => JSON.parse('{"environment":"acceptance","branches":{"__proto__":"main"}}'),
    expected: () => `branches.__proto__: "main" is for an unknown source "__proto__"; configured sources: app, config`,
  },
  {
    why: 'extra keys',
    input: () => ({ environment: 'acceptance', force: true }),
    expected: () =>
      `force: true is not part of the input; allowed keys: environment, branches, commits, requestedBy, redeploy`,
  },
  {
    why: 'an input over 256 KB',
    input: () => HUGE,
    expected: () =>
      `(input): ${Buffer.byteLength(JSON.stringify(HUGE))} bytes is over the Step Functions input limit of 262144 bytes`,
  },
  {
    why: 'production from a feature branch',
    input: () => app('feature/x', 'production'),
    expected: () => `branches.app: "feature/x" is not allowed in production; allowed: main`,
  },
  {
    why: 'preproduction from develop',
    input: () => ({ environment: 'preproduction', branches: { app: 'develop' } }),
    expected: () => `branches.app: "develop" is not allowed in preproduction; allowed: main`,
  },
  {
    why: 'requestedBy with a right-to-left override',
    input: () => ({ environment: 'acceptance', requestedBy: 'alice\u202egnp.exe' }),
    expected: () => `requestedBy: "alice\\u202egnp.exe" must be printable text; contains U+202E`,
  },
  {
    why: 'not an object',
    input: () => ['acceptance'],
    expected: () =>
      `(input): ["acceptance"] must be a JSON object such as {"environment":"acceptance","branches":{"app":"main"}}`,
  },
];

describe('hostile and bad input is rejected at ValidateInput, before any build', () => {
  let results: ReadonlyArray<ExecutionRecord>;

  beforeAll(async () => {
    results = await Promise.all(
      CASES.map((c, i) => {
        const { executionArn } = t.runtime.machine.start(`hostile-${String(i).padStart(2, '0')}`, c.input());
        return t.runtime.machine.wait(executionArn);
      }),
    );
  });

  test(`the table has at least 20 inputs (${CASES.length})`, () => {
    expect(CASES.length).toBeGreaterThanOrEqual(20);
  });

  test.each(CASES.map((c, i) => [c.why, i] as const))('%s', (_why, i) => {
    const record = results[i]!;
    const c = CASES[i]!;

    expect(record).toMatchObject({
      status: 'FAILED',
      error: 'InvalidInputError',
      lastTopLevelState: { name: 'ValidateInput' },
    });
    const message: string = JSON.parse(record.cause!).errorMessage;
    expect(message.split('\n').map((line) => line.trim())).toContain(c.expected());
    expect(enteredStates(t.runtime.machine.history(record.executionArn))).toEqual(['ValidateInput']);
  });

  test('no build ever started and the canary never appeared', () => {
    expect(buildDirCount(t.runtime.home)).toBe(0);
    expect(existsSync(canary)).toBe(false);
  });
});

describe('an execution name that Step Functions accepts but the pipeline cannot use fails at ValidateInput, before any build', () => {
  test.each([
    ['a dot', 'release-1.2.3', '"release-1.2.3"', 'release-1_2_3'],
    ['a non-ASCII letter', 'd\u00e9ploiement', '"d\\u00e9ploiement"', 'd_ploiement'],
  ])('%s', async (_why, name, shown, suggestion) => {
    const record = await t.run(name, { environment: 'acceptance' });

    expect(record).toMatchObject({
      status: 'FAILED',
      error: 'InvalidInputError',
      lastTopLevelState: { name: 'ValidateInput' },
    });
    const message: string = JSON.parse(record.cause!).errorMessage;
    expect(message).toContain(
      `(execution name): ${shown} must be 1-80 letters, digits, "_" or "-" (it becomes part of S3 keys); start a new execution with such a name, e.g. ${suggestion}`,
    );
    expect(enteredStates(t.runtime.machine.history(record.executionArn))).toEqual(['ValidateInput']);
    expect(buildDirCount(t.runtime.home)).toBe(0);
  });
});
