import { existsSync, readFileSync } from 'node:fs';

/**
 * Figures that their own bench writes live in sections of BENCHMARKS.md between markers:
 * `npm run bench:console` (bench/console.ts) and `npx tsx bench/push.ts`. `npm run bench`
 * rewrites the rest of the file and keeps those sections as they are.
 */

export interface KeptSection {
  readonly start: string;
  readonly end: string;
}

export const CONSOLE_SECTION: KeptSection = {
  start: '<!-- console figures: npm run bench:console -->',
  end: '<!-- end of console figures -->',
};
export const PUSH_SECTION: KeptSection = {
  start: '<!-- push figures: npx tsx bench/push.ts -->',
  end: '<!-- end of push figures -->',
};
const KEPT = [CONSOLE_SECTION, PUSH_SECTION];
const BEFORE = '\n## Reproduce';

/**
 * `report` with `section` as `file` has it (or replaced by `text`): where `report` has it already,
 * in its place, so one bench rewriting its own section leaves the order of the sections alone;
 * otherwise before "## Reproduce".
 */
export function withSection(report: string, file: string, section: KeptSection, text?: string): string {
  const kept = text ?? currentSection(file, section);
  const start = report.indexOf(section.start);
  const end = report.indexOf(section.end);
  if (kept !== undefined && start >= 0 && end > start)
    return `${report.slice(0, start)}${kept}${report.slice(end + section.end.length)}`;
  const without = removeSection(report, section);
  if (kept === undefined) return without;
  const at = without.indexOf(BEFORE);
  return at < 0 ? `${without}\n${kept}\n` : `${without.slice(0, at)}\n${kept}\n${without.slice(at)}`;
}

/** `report` with every kept section of `file` put back in. */
export function withKeptSections(report: string, file: string): string {
  return KEPT.reduce((text, section) => withSection(text, file, section), report);
}

function currentSection(file: string, section: KeptSection): string | undefined {
  if (!existsSync(file)) return undefined;
  const text = readFileSync(file, 'utf8');
  const start = text.indexOf(section.start);
  const end = text.indexOf(section.end);
  return start >= 0 && end > start ? text.slice(start, end + section.end.length) : undefined;
}

function removeSection(text: string, section: KeptSection): string {
  const start = text.indexOf(section.start);
  const end = text.indexOf(section.end);
  if (start < 0 || end < start) return text;
  return `${text.slice(0, start).replace(/\n+$/, '\n')}${text.slice(end + section.end.length).replace(/^\n+/, '\n')}`;
}
