import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';

/**
 * The local runtime is a model of AWS that the CLI drives like any endpoint: nothing in local/
 * may import from cli/ (the CLI may import local/, for --local). What both need lives elsewhere.
 */

const ROOT = resolve(__dirname, '..', '..');
const CLI = join(ROOT, 'cli');

/** Every module specifier of a TypeScript file: static imports and re-exports, import(), require(). */
function specifiers(source: string): string[] {
  const found: string[] = [];
  const patterns = [
    /\b(?:import|export)\s[^'"`;]*?\bfrom\s*['"]([^'"]+)['"]/g,
    /\bimport\s*['"]([^'"]+)['"]/g,
    /\b(?:import|require)\s*\(\s*['"]([^'"]+)['"]\s*\)/g,
  ];
  for (const pattern of patterns) for (const match of source.matchAll(pattern)) found.push(match[1]!);
  return found;
}

function typescriptFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return typescriptFiles(path);
    return entry.name.endsWith('.ts') ? [path] : [];
  });
}

it('finds every kind of import it checks', () => {
  const source = `import { a } from '../cli/a';\nimport type { B } from "../cli/b";\nexport * from '../cli/c';\nimport '../cli/d';\nconst e = require('../cli/e');\nawait import('../cli/f');\nimport {\n  g,\n} from '../cli/g';`;

  expect(specifiers(source).sort()).toEqual([
    '../cli/a',
    '../cli/b',
    '../cli/c',
    '../cli/d',
    '../cli/e',
    '../cli/f',
    '../cli/g',
  ]);
});

it('no file in local/ imports from cli/', () => {
  const files = typescriptFiles(join(ROOT, 'local'));
  const offenders = files.flatMap((file) =>
    specifiers(readFileSync(file, 'utf8'))
      .filter((spec) => spec.startsWith('.'))
      .filter((spec) => {
        const target = resolve(dirname(file), spec);
        return target === CLI || target.startsWith(CLI + sep);
      })
      .map((spec) => `${relative(ROOT, file)} imports ${spec}`),
  );

  expect(files.length).toBeGreaterThan(10);
  expect(offenders).toEqual([]);
});
