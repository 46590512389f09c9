/**
 * Branch names come from people and reach git and CodeBuild: they must be valid git ref names
 * (`git check-ref-format` rules) and stay inside a strict allowlist, so that no quoting mistake
 * anywhere downstream can turn one into a shell command or a git option.
 */

export const BRANCH_MAX_LENGTH = 200;

/** Returns why `name` is not an acceptable branch name, or `undefined` when it is. */
export function branchNameViolation(name: string): string | undefined {
  if (name.length === 0) return 'must not be empty';
  if (name.length > BRANCH_MAX_LENGTH) return `must be at most ${BRANCH_MAX_LENGTH} characters (got ${name.length})`;
  const bad = [...name].find((c) => !/[A-Za-z0-9._/-]/.test(c));
  if (bad !== undefined) {
    const shown = /[\x20-\x7e]/.test(bad)
      ? `"${bad}"`
      : `U+${bad.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}`;
    return `contains ${shown}; only A-Z a-z 0-9 . _ / - are allowed`;
  }
  if (name.startsWith('-')) return 'must not start with "-" (it would read as a command-line option)';
  if (name.startsWith('/')) return 'must not start with "/"';
  if (name.endsWith('/')) return 'must not end with "/"';
  if (name.endsWith('.')) return 'must not end with "."';
  if (name.includes('..')) return 'must not contain ".."';
  if (name.includes('//')) return 'must not contain "//"';
  for (const part of name.split('/')) {
    if (part.startsWith('.')) return `no path component may start with "." (got "${part}")`;
    if (part.endsWith('.lock')) return `no path component may end with ".lock" (got "${part}")`;
  }
  return undefined;
}

export function isValidBranchName(name: string): boolean {
  return branchNameViolation(name) === undefined;
}

export const BRANCH_PATTERN_RULE =
  'must be a branch name, "*" for any branch, or a name with "*" wildcards such as "release/*"';

/** A branch pattern is a branch name in which `*` stands for any run of allowed characters. */
export function isValidBranchPattern(pattern: string): boolean {
  if (pattern === '*') return true;
  return isValidBranchName(pattern.replace(/\*/g, 'x'));
}

export function branchMatches(pattern: string, branch: string): boolean {
  const re = new RegExp(
    `^${pattern
      .split('*')
      .map((p) => p.replace(/[.]/g, '\\.'))
      .join('.*')}$`,
  );
  return re.test(branch);
}

/**
 * Whether some branch name matches both patterns (`*` is any run of characters), e.g. `release/*`
 * and `*-hotfix` do (`release/x-hotfix`), `main` and `release/*` do not: a walk over both patterns
 * at once, each step consuming a character that both can read there.
 */
export function patternsOverlap(a: string, b: string): boolean {
  const seen = new Set<string>();
  const walk = (i: number, j: number): boolean => {
    const key = `${i},${j}`;
    if (seen.has(key)) return false;
    seen.add(key);
    if (i === a.length && j === b.length) return true;
    const x = a[i];
    const y = b[j];
    if (x === '*' && walk(i + 1, j)) return true;
    if (y === '*' && walk(i, j + 1)) return true;
    if (x === undefined || y === undefined) return false;
    if (x === '*' && y === '*') return false; // both read nothing more than skipping one of them reads
    if (x === '*') return walk(i, j + 1);
    if (y === '*') return walk(i + 1, j);
    return x === y && walk(i + 1, j + 1);
  };
  return walk(0, 0);
}
