import { html } from 'htm/preact';
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import type { BuildLogPage, FormOptions } from '../api-types';
import { api } from './api';
import { durationBetween, formatTime, prettyJson, statusClass } from './format';
import { Graph } from './graph';
import {
  aggregate,
  type ChosenIterations,
  defaultSelection,
  layout,
  type Selected,
  type Selection,
  selectedRun,
  shapeKey,
} from './layout';
import { usePoll } from './poll';

const RUNNING = new Set(['RUNNING', 'PENDING_REDRIVE']);

/** One execution: its graph live, the selected state's details and build log, and its actions. */
export function Execution(props: { arn: string; options: FormOptions }) {
  const { arn, options } = props;
  const detail = usePoll(
    () => api.execution(arn),
    [arn],
    options.pollMs,
    (d) => RUNNING.has(d.execution.status),
  );
  const [selected, setSelected] = useState<Selection | undefined>();
  const [chosen, setChosen] = useState<ChosenIterations>({});
  const [actionError, setActionError] = useState<string | undefined>();
  const shape = detail.value ? shapeKey(detail.value.nodes) : '';
  const laid = useMemo(() => (detail.value ? layout(detail.value) : undefined), [shape]);
  if (!detail.value || !laid) return html`<p class=${detail.error ? 'error' : ''}>${detail.error ?? 'loading…'}</p>`;
  const { execution, nodes, consoleUrl, waitingForApproval } = detail.value;
  const act = (action: () => Promise<unknown>) => async () => {
    setActionError(undefined);
    try {
      await action();
      detail.refresh();
    } catch (err) {
      setActionError((err as Error).message);
    }
  };
  // Until one is chosen: the state that failed, else the one running (its build log streams).
  const chosenState = selected ?? defaultSelection(nodes, chosen);
  const details = chosenState ? selectedRun(nodes, chosenState, chosen) : undefined;
  return html`<section class="execution" data-status=${execution.status}>
    <header class="execution-header">
      <h1>${execution.name}</h1>
      ${
        waitingForApproval
          ? html`<span class=${statusClass('WAITING')} id="execution-status">waiting for approval</span>`
          : html`<span class=${statusClass(execution.status)} id="execution-status">${execution.status.toLowerCase()}</span>`
      }
      <span>${execution.environment ?? ''}</span>
      <span>started ${formatTime(execution.startDate)}</span>
      <span>${durationBetween(execution.startDate, execution.stopDate)}</span>
      ${execution.redriveCount > 0 ? html`<span>redriven ×${execution.redriveCount}</span>` : null}
      ${execution.requestedBy ? html`<span>by ${execution.requestedBy}</span>` : null}
      <span class="actions">
        ${
          execution.redriveStatus === 'REDRIVABLE'
            ? html`<button id="redrive" onClick=${act(() => api.redrive(execution.executionArn))}>Redrive</button>`
            : null
        }
        ${
          execution.status === 'RUNNING'
            ? html`<button id="stop" onClick=${act(() => api.stop(execution.executionArn, 'stopped from the console'))}>Stop</button>`
            : null
        }
        ${consoleUrl ? html`<a href=${consoleUrl} target="_blank" rel="noopener noreferrer">AWS console</a>` : null}
      </span>
    </header>
    ${waitingForApproval ? html`<${ApprovalPanel} key=${execution.executionArn} arn=${execution.executionArn} onDecided=${detail.refresh} />` : null}
    ${actionError ? html`<p class="error" role="alert">${actionError}</p>` : null}
    ${detail.error ? html`<p class="error">${detail.error}</p>` : null}
    ${execution.failure ? html`<p class="failure">${execution.failure}</p>` : null}
    <div class="execution-body">
      <div class="graph-pane">
        <${Graph}
          nodes=${nodes}
          layout=${laid}
          selected=${chosenState}
          chosen=${chosen}
          onSelect=${setSelected}
          onChoose=${(key: string, index: number) => setChosen((known) => ({ ...known, [key]: index }))}
        />
      </div>
      <div class="details-pane">
        ${details ? html`<${StateDetails} selected=${details} pollMs=${options.pollMs} />` : html`<p class="muted">select a state</p>`}
      </div>
    </div>
  </section>`;
}

/**
 * Approve (with an optional comment) or reject (with the reason, required) a deployment waiting at
 * AwaitApproval: the CLI's `approve` / `reject`, sent by the console's process as the CLI sends them.
 */
function ApprovalPanel(props: { arn: string; onDecided: () => void }) {
  const [comment, setComment] = useState('');
  const [reason, setReason] = useState('');
  const [busy, setBusy] = useState(false);
  const [answer, setAnswer] = useState<{ ok: boolean; text: string } | undefined>();
  const send = (decision: () => Promise<{ message: string; decidedBy: string }>) => async () => {
    setBusy(true);
    setAnswer(undefined);
    try {
      const result = await decision();
      setAnswer({ ok: true, text: `${result.message} (decided by ${result.decidedBy})` });
      props.onDecided();
    } catch (err) {
      setAnswer({ ok: false, text: (err as Error).message });
    } finally {
      setBusy(false);
    }
  };
  const value = (set: (v: string) => void) => (e: Event) => set((e.target as HTMLInputElement).value);
  return html`<section class="approval" id="approval">
    <h2>This deployment waits for approval</h2>
    <p class="muted">What BuildTemplates built deploys only once approved; whoever requested it cannot approve it where the environment forbids self-approval.</p>
    <div class="decision">
      <input id="approval-comment" placeholder="comment (optional)" value=${comment} onInput=${value(setComment)} />
      <button id="approve" disabled=${busy} onClick=${send(() => api.approve(props.arn, comment))}>Approve</button>
    </div>
    <div class="decision">
      <input id="reject-reason" placeholder="reason (required to reject)" value=${reason} onInput=${value(setReason)} />
      <button id="reject" class="danger" disabled=${busy || reason.trim() === ''} onClick=${send(() => api.reject(props.arn, reason))}>Reject</button>
    </div>
    ${answer ? html`<p id="decision" class=${answer.ok ? 'ok' : 'error'} role="status">${answer.text}</p>` : null}
  </section>`;
}

/** A state's run: at the top level, or in the shown iteration of each Map it sits in. */
function StateDetails(props: { selected: Selected; pollMs: number }) {
  const { shape, run, trail } = props.selected;
  return html`<div class="state-details" data-state=${shape.name} data-trail=${trail.join(' / ')}>
    <h2>${shape.name}${trail.length > 0 ? html` <span class="muted">in ${trail.join(' / ')}</span>` : null}</h2>
    ${shape.comment ? html`<p class="comment">${shape.comment}</p>` : null}
    <dl>
      <dt>Status</dt><dd><span class=${statusClass(run.status)}>${run.status.toLowerCase()}</span></dd>
      <dt>Type</dt><dd>${shape.type}</dd>
      <dt>Duration</dt><dd>${durationBetween(run.startedAt, run.endedAt)}</dd>
      ${run.attempts > 1 ? html`<dt>Attempts</dt><dd>${run.attempts}</dd>` : null}
      ${shape.inner ? html`<dt>Iterations</dt><dd class="aggregate">${aggregate(run.iterations)}</dd>` : null}
      ${run.error ? html`<dt>Error</dt><dd class="error">${run.error}</dd>` : null}
    </dl>
    ${run.cause ? html`<h3>Cause</h3><pre class="cause">${prettyJson(run.cause)}</pre>` : null}
    ${run.buildId ? html`<${BuildLog} key=${run.buildId} buildId=${run.buildId} pollMs=${props.pollMs} />` : null}
    ${run.input !== undefined ? html`<details><summary>Input</summary><pre>${prettyJson(run.input)}</pre></details>` : null}
    ${run.output !== undefined ? html`<details><summary>Output</summary><pre>${prettyJson(run.output)}</pre></details>` : null}
  </div>`;
}

/** The build's phases and its log, read on while the build runs (lines are appended as text). */
function BuildLog(props: { buildId: string; pollMs: number }) {
  const [lines, setLines] = useState<string[]>([]);
  const pre = useRef<HTMLPreElement>(null);
  // New lines scroll into view, unless the reader scrolled up to read.
  const atBottom = pre.current
    ? pre.current.scrollHeight - pre.current.scrollTop - pre.current.clientHeight < 24
    : true;
  useEffect(() => {
    if (atBottom && pre.current) pre.current.scrollTop = pre.current.scrollHeight;
  }, [lines.length]);
  const [page, setPage] = useState<BuildLogPage | undefined>();
  const [from, setFrom] = useState(0);
  const log = usePoll(
    async () => {
      const next = await api.buildLog(props.buildId, from);
      setPage(next);
      if (next.lines.length > 0) setLines((known) => [...known, ...next.lines]);
      setFrom(next.next);
      return next;
    },
    [props.buildId, from],
    props.pollMs,
    (p) => p.found && p.complete !== true,
  );
  return html`<div class="build">
    <h3>Build <code>${props.buildId}</code> ${page?.status ? html`<span class=${statusClass(page.status === 'IN_PROGRESS' ? 'RUNNING' : page.status)}>${page.status.toLowerCase()}</span>` : null}</h3>
    ${page?.logLink ? html`<a href=${page.logLink} target="_blank" rel="noopener noreferrer">log in CloudWatch</a>` : null}
    <ol class="phases">
      ${(page?.phases ?? []).map(
        (p) =>
          html`<li class=${statusClass(p.status ?? (p.type === page?.currentPhase ? 'RUNNING' : 'PENDING'))}>${p.type.toLowerCase()}${p.durationSeconds !== undefined ? ` ${p.durationSeconds}s` : ''}</li>`,
      )}
    </ol>
    ${log.error ? html`<p class="error">${log.error}</p>` : null}
    <pre class="log" ref=${pre} data-build=${props.buildId}>${lines.join('\n')}</pre>
  </div>`;
}
