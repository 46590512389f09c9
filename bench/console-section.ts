import { existsSync, readFileSync } from 'node:fs';

/**
 * The console's figures live in their own section of BENCHMARKS.md, written by
 * `npm run bench:console` (bench/console.ts); `npm run bench` rewrites the rest of the file and
 * keeps that section as it is.
 */

export const CONSOLE_START = '<!-- console figures: npm run bench:console -->';
export const CONSOLE_END = '<!-- end of console figures -->';
const BEFORE = '\n## Reproduce';

/** `report` with the console section put back in before "## Reproduce" (or replaced by `section`). */
export function withConsoleSection(report: string, file: string, section?: string): string {
  const kept = section ?? currentSection(file);
  const without = removeSection(report);
  if (kept === undefined) return without;
  const at = without.indexOf(BEFORE);
  return at < 0 ? `${without}\n${kept}\n` : `${without.slice(0, at)}\n${kept}\n${without.slice(at)}`;
}

function currentSection(file: string): string | undefined {
  if (!existsSync(file)) return undefined;
  const text = readFileSync(file, 'utf8');
  const start = text.indexOf(CONSOLE_START);
  const end = text.indexOf(CONSOLE_END);
  return start >= 0 && end > start ? text.slice(start, end + CONSOLE_END.length) : undefined;
}

function removeSection(text: string): string {
  const start = text.indexOf(CONSOLE_START);
  const end = text.indexOf(CONSOLE_END);
  if (start < 0 || end < start) return text;
  return `${text.slice(0, start).replace(/\n+$/, '\n')}${text.slice(end + CONSOLE_END.length).replace(/^\n+/, '\n')}`;
}
