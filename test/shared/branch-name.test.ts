import {
  BRANCH_MAX_LENGTH,
  branchMatches,
  branchNameViolation,
  isValidBranchName,
  isValidBranchPattern,
  patternsOverlap,
} from '../../shared/branch-name';

describe('branchNameViolation', () => {
  test.each([
    'main',
    'develop',
    'feature/cloudformationchange',
    'release/1.2.3',
    'user_x/fix-42',
    'a',
    'x'.repeat(BRANCH_MAX_LENGTH),
    'v1.0-rc.1',
  ])('accepts %s', (name) => {
    expect(branchNameViolation(name)).toBeUndefined();
    expect(isValidBranchName(name)).toBe(true);
  });

  test.each<[string, string]>([
    ['', 'must not be empty'],
    ['x'.repeat(BRANCH_MAX_LENGTH + 1), `must be at most 200 characters (got ${BRANCH_MAX_LENGTH + 1})`],
    ['x$(touch pwned)', 'contains "$"; only A-Z a-z 0-9 . _ / - are allowed'],
    ['`id`', 'contains "`"'],
    ['a b', 'contains " "'],
    ['a;b', 'contains ";"'],
    ['a|b', 'contains "|"'],
    ['a@{1}', 'contains "@"'],
    ['HEAD^', 'contains "^"'],
    ['a:b', 'contains ":"'],
    ['a?b', 'contains "?"'],
    ['a[b', 'contains "["'],
    ['a\\b', 'contains "\\"'],
    ['a\u0000b', 'contains U+0000'],
    ['a\u007fb', 'contains U+007F'],
    ['m\u0430in', 'contains U+0430'],
    ['a\uff0fb', 'contains U+FF0F'],
    ['a\u{1F680}', 'contains U+1F680'],
    ['-c', 'must not start with "-" (it would read as a command-line option)'],
    ['--upload-pack', 'must not start with "-"'],
    ['/main', 'must not start with "/"'],
    ['main/', 'must not end with "/"'],
    ['main.', 'must not end with "."'],
    ['a..b', 'must not contain ".."'],
    ['a//b', 'must not contain "//"'],
    ['.hidden', 'no path component may start with "." (got ".hidden")'],
    ['feature/.x', 'no path component may start with "." (got ".x")'],
    ['x.lock', 'no path component may end with ".lock" (got "x.lock")'],
    ['x.lock/y', 'no path component may end with ".lock" (got "x.lock")'],
  ])('rejects %j: %s', (name, violation) => {
    expect(branchNameViolation(name)).toContain(violation);
    expect(isValidBranchName(name)).toBe(false);
  });
});

describe('isValidBranchPattern', () => {
  test.each(['*', 'main', 'release/*', 'feature/*-hotfix', '*/stable'])('accepts %s', (pattern) => {
    expect(isValidBranchPattern(pattern)).toBe(true);
  });

  test.each(['', 'a b', '-*', '*.lock', 'release/', 'a..*', '$(x)*'])('rejects %j', (pattern) => {
    expect(isValidBranchPattern(pattern)).toBe(false);
  });
});

describe('branchMatches', () => {
  test.each<[string, string, boolean]>([
    ['*', 'anything/at-all', true],
    ['main', 'main', true],
    ['main', 'main2', false],
    ['main', 'xmain', false],
    ['release/*', 'release/1.2', true],
    ['release/*', 'release/a/b', true],
    ['release/*', 'hotfix/release/1.2', false],
    ['release/*', 'release', false],
    ['v1.0', 'v1x0', false],
    ['*-hotfix', 'payments-hotfix', true],
    ['*-hotfix', 'payments-hotfix2', false],
  ])('%s against %s is %s', (pattern, branch, expected) => {
    expect(branchMatches(pattern, branch)).toBe(expected);
  });
});

describe('patternsOverlap', () => {
  test.each([
    ['main', 'main', true],
    ['main', 'develop', false],
    ['*', 'main', true],
    ['release/*', '*-hotfix', true],
    ['release/*', 'main', false],
    ['release/*', 'release/1.*', true],
    ['feature/*', 'release/*', false],
    ['a*b', '*c', false],
    ['a*b*c', 'a*c', true],
    ['*', '*', true],
    ['x*', '*y', true],
  ])('%s and %s: %s', (a, b, expected) => {
    expect(patternsOverlap(a, b)).toBe(expected);
    expect(patternsOverlap(b, a)).toBe(expected);
  });
});
