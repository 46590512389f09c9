/** How times and durations read on the page (the same units as the CLI's). */

export function formatDuration(ms: number | undefined): string {
  if (ms === undefined || Number.isNaN(ms)) return '';
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)}s`;
  const minutes = Math.floor(ms / 60_000);
  return `${minutes}m${String(Math.round((ms % 60_000) / 1000)).padStart(2, '0')}s`;
}

export function durationBetween(start: string | number | undefined, end: string | number | undefined): string {
  if (start === undefined) return '';
  const from = typeof start === 'number' ? start : Date.parse(start);
  const to = end === undefined ? Date.now() : typeof end === 'number' ? end : Date.parse(end);
  return formatDuration(to - from);
}

export function formatTime(value: string | number | undefined): string {
  if (value === undefined) return '';
  const date = new Date(value);
  return Number.isNaN(date.getTime())
    ? ''
    : date
        .toISOString()
        .replace('T', ' ')
        .replace(/\.\d+Z$/, 'Z');
}

/** Pretty JSON when the text is JSON, the text as it is otherwise. */
export function prettyJson(text: string | undefined): string {
  if (text === undefined) return '';
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text;
  }
}

export function statusClass(status: string | undefined): string {
  return `status status-${(status ?? 'PENDING').toLowerCase()}`;
}
