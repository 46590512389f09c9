import { html } from 'htm/preact';
import type { DeploymentView, FormOptions } from '../api-types';
import { api } from './api';
import { formatTime } from './format';
import { usePoll } from './poll';

/** What is deployed where (deployments/<env>/current.json) and each environment's history. */
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
            ? html`<details>
              <summary>history (${env.history.length} newest)</summary>
              <table class="list">
                <thead><tr><th>Deployed</th><th>Execution</th><th>Sources</th><th>By</th></tr></thead>
                <tbody>
                  ${env.history.map(
                    (h) => html`<tr>
                      <td>${formatTime(h.deployedAt)}</td>
                      <td>${h.execution}</td>
                      <td>${h.sources.map((s) => html`<span class="branch">${s.name}: ${s.branch}@${s.commit.slice(0, 7)}</span> `)}</td>
                      <td>${h.requestedBy ?? ''}</td>
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

function Deployment(props: { record: DeploymentView }) {
  const { record } = props;
  return html`<div class="deployment">
    <p>deployed ${formatTime(record.deployedAt)} by execution <b>${record.execution}</b>${record.requestedBy ? `, requested by ${record.requestedBy}` : ''}</p>
    <ul>
      ${record.sources.map((s) => html`<li><b>${s.name}</b> ${s.branch}@<code>${s.commit.slice(0, 12)}</code></li>`)}
    </ul>
  </div>`;
}
