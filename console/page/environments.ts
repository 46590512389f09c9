import { html } from 'htm/preact';
import { useState } from 'preact/hooks';
import type { DeploymentView, FormOptions } from '../api-types';
import { api } from './api';
import { executionHref } from './executions';
import { formatTime } from './format';
import { usePoll } from './poll';

/** The build a deployment stands for: a rollback's is the one it deployed again. */
function buildOf(record: DeploymentView): string {
  return record.redeployOf ?? record.execution;
}

/** What is deployed where (deployments/<env>/current.json), each environment's history, and rollback to an earlier build. */
export function Environments(props: { options: FormOptions }) {
  const environments = usePoll(() => api.environments(), [], Math.max(props.options.pollMs * 10, 3000));
  if (!environments.value)
    return html`<p class=${environments.error ? 'error' : ''}>${environments.error ?? 'loading…'}</p>`;
  return html`<section class="environments">
    <h1>Environments</h1>
    ${environments.error ? html`<p class="error">${environments.error}</p>` : null}
    ${environments.value.map(
      (env) => html`<article class="environment" data-environment=${env.environment}>
        <h2>${env.environment}</h2>
        ${env.current ? html`<${Deployment} record=${env.current} />` : html`<p class="muted">nothing deployed yet</p>`}
        ${
          env.history.length > 0
            ? html`<details open>
              <summary>history (${env.history.length} newest)</summary>
              <table class="list history">
                <thead><tr><th>Deployed</th><th>Execution</th><th>Sources</th><th>By</th><th>Marks</th><th></th></tr></thead>
                <tbody>
                  ${env.history.map(
                    (h) => html`<tr data-execution=${h.execution}>
                      <td>${formatTime(h.deployedAt)}</td>
                      <td>${h.execution}</td>
                      <td>${h.sources.map((s) => html`<span class="branch">${s.name}: ${s.branch}@${s.commit.slice(0, 7)}</span> `)}</td>
                      <td>${h.requestedBy ?? ''}</td>
                      <td><${Marks} record=${h} /></td>
                      <td>${
                        env.current && buildOf(h) !== buildOf(env.current)
                          ? html`<${Rollback} environment=${env.environment} record=${h} />`
                          : null
                      }</td>
                    </tr>`,
                  )}
                </tbody>
              </table>
            </details>`
            : null
        }
      </article>`,
    )}
  </section>`;
}

/** "rollback to the build of X" and "approved by A: comment", when a deployment has them. */
function Marks(props: { record: DeploymentView }) {
  const { redeployOf, approval } = props.record;
  return html`${redeployOf ? html`<span class="mark rollback-mark">rollback to the build of ${redeployOf}</span> ` : null}${
    approval
      ? html`<span class="mark approval-mark">approved by ${approval.approvedBy}${approval.comment ? `: ${approval.comment}` : ''}</span>`
      : null
  }`;
}

/**
 * Deploys this record's build again (the CLI's `rollback --env E --to X`): a second click confirms,
 * then the page follows the new execution.
 */
function Rollback(props: { environment: string; record: DeploymentView }) {
  const [armed, setArmed] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | undefined>();
  const to = buildOf(props.record);
  const start = async (): Promise<void> => {
    setBusy(true);
    setError(undefined);
    try {
      const result = await api.rollback(props.environment, to);
      if (result.executionArn) location.hash = executionHref(result.executionArn);
    } catch (err) {
      setError((err as Error).message);
      setArmed(false);
    } finally {
      setBusy(false);
    }
  };
  return html`<span class="rollback">
    ${
      armed
        ? html`<button class="danger confirm-rollback" disabled=${busy} onClick=${start}>Confirm: deploy the build of ${to} again</button>
          <button class="secondary" onClick=${() => setArmed(false)}>Cancel</button>`
        : html`<button class="secondary roll-back" onClick=${() => setArmed(true)}>Roll back to this build</button>`
    }
    ${error ? html`<span class="error" role="alert">${error}</span>` : null}
  </span>`;
}

function Deployment(props: { record: DeploymentView }) {
  const { record } = props;
  return html`<div class="deployment">
    <p>deployed ${formatTime(record.deployedAt)} by execution <b>${record.execution}</b>${record.requestedBy ? `, requested by ${record.requestedBy}` : ''} <${Marks} record=${record} /></p>
    <ul>
      ${record.sources.map((s) => html`<li><b>${s.name}</b> ${s.branch}@<code>${s.commit.slice(0, 12)}</code></li>`)}
    </ul>
  </div>`;
}
