import { html } from 'htm/preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import type { ExecutionRow, FormOptions } from '../api-types';
import { api } from './api';
import { durationBetween, formatTime, statusClass } from './format';
import { usePoll } from './poll';

/** Every row is this tall (style.css; measured once drawn), so the rows in view follow from the scroll position. */
const ROW_HEIGHT = 30;
const OVERSCAN = 10;
const STATUSES = ['RUNNING', 'SUCCEEDED', 'FAILED', 'TIMED_OUT', 'ABORTED', 'PENDING_REDRIVE'];

export function executionHref(arn: string): string {
  return `#/execution/${encodeURIComponent(arn)}`;
}

/** Newest first, filtered by environment and status, refreshed while the page is open. */
export function Executions(props: { options: FormOptions }) {
  const [environment, setEnvironment] = useState('');
  const [status, setStatus] = useState('');
  const list = usePoll(
    () => api.executions({ environment, status }),
    [environment, status],
    Math.max(props.options.pollMs, 1000),
  );
  const rows = list.value ?? [];
  // Only the rows in view (and a few around) are in the page: 1,000 executions draw as fast as 30.
  const viewport = useRef<HTMLDivElement>(null);
  const [scrollTop, setScrollTop] = useState(0);
  const [rowHeight, setRowHeight] = useState(ROW_HEIGHT);
  useEffect(() => {
    // Borders and fonts may make a row a pixel taller than the stylesheet says: measured once drawn.
    const drawn = viewport.current?.querySelector('tr[data-execution]')?.getBoundingClientRect().height;
    if (drawn && Math.abs(drawn - rowHeight) > 0.1) setRowHeight(drawn);
  });
  const height = viewport.current?.clientHeight || 900;
  const first = Math.max(0, Math.floor(scrollTop / rowHeight) - OVERSCAN);
  const last = Math.min(rows.length, Math.ceil((scrollTop + height) / rowHeight) + OVERSCAN);
  return html`<section class="executions">
    <h1>Executions</h1>
    <div class="filters">
      <label>Environment
        <select name="environment" value=${environment} onChange=${(e: Event) => setEnvironment((e.target as HTMLSelectElement).value)}>
          <option value="">all</option>
          ${props.options.environments.map((env) => html`<option value=${env.name}>${env.name}</option>`)}
        </select>
      </label>
      <label>Status
        <select name="status" value=${status} onChange=${(e: Event) => setStatus((e.target as HTMLSelectElement).value)}>
          <option value="">all</option>
          ${STATUSES.map((s) => html`<option value=${s}>${s.toLowerCase()}</option>`)}
        </select>
      </label>
      <span class="count">${list.value ? `${rows.length} execution${rows.length === 1 ? '' : 's'}` : 'loading…'}</span>
      ${list.error ? html`<span class="error">${list.error}</span>` : null}
    </div>
    <div class="list-viewport" ref=${viewport} onScroll=${(e: Event) => setScrollTop((e.currentTarget as HTMLDivElement).scrollTop)}>
      <table class="list">
        <thead><tr><th>Execution</th><th>Status</th><th>Environment</th><th>Branches</th><th>Started</th><th>Duration</th><th>By</th></tr></thead>
        <tbody>
          <${Spacer} height=${first * rowHeight} />
          ${rows.slice(first, last).map((row) => html`<${Row} key=${row.executionArn} row=${row} />`)}
          <${Spacer} height=${(rows.length - last) * rowHeight} />
        </tbody>
      </table>
    </div>
  </section>`;
}

/** Stands for rows out of view (a style set through the DOM, which the CSP allows). */
function Spacer(props: { height: number }) {
  if (props.height <= 0) return null;
  return html`<tr class="spacer" aria-hidden="true"><td colspan="7" style=${{ height: `${props.height}px` }}></td></tr>`;
}

function Row(props: { row: ExecutionRow }) {
  const { row } = props;
  return html`<tr data-execution=${row.name}>
    <td><a href=${executionHref(row.executionArn)}>${row.name}</a>${row.redriveCount > 0 ? html` <span class="redriven">redriven ×${row.redriveCount}</span>` : null}</td>
    <td>${
      row.waitingForApproval
        ? html`<span class=${statusClass('WAITING')}>waiting for approval</span>`
        : html`<span class=${statusClass(row.status)}>${row.status.toLowerCase()}</span>`
    }</td>
    <td>${row.environment ?? ''}</td>
    <td class="branches">${Object.entries(row.branches ?? {}).map(([source, branch]) => html`<span class="branch">${source}: ${branch}</span> `)}</td>
    <td>${formatTime(row.startDate)}</td>
    <td>${durationBetween(row.startDate, row.stopDate)}</td>
    <td>${row.requestedBy ?? ''}</td>
  </tr>`;
}
