import { html } from 'htm/preact';
import { useEffect, useState } from 'preact/hooks';
import type { FormOptions, StartRequest } from '../api-types';
import { api } from './api';
import { executionHref } from './executions';

/**
 * Start a deployment: environment and a branch per source. Every change is checked by the server
 * with the CLI's rules (ValidateInput's); problems show beside their field before anything starts.
 */
export function StartForm(props: { options: FormOptions }) {
  const { options } = props;
  const [environment, setEnvironment] = useState(options.environments[0]?.name ?? '');
  const [branches, setBranches] = useState<Record<string, string>>({});
  const [requestedBy, setRequestedBy] = useState('');
  const [problems, setProblems] = useState<Record<string, string>>({});
  const [error, setError] = useState<string | undefined>();
  const [busy, setBusy] = useState(false);
  const request: StartRequest = { environment, branches, ...(requestedBy ? { requestedBy } : {}) };

  useEffect(() => {
    let current = true;
    const timer = setTimeout(() => {
      api.validate(request).then(
        (result) => current && setProblems(result.problems),
        (err: Error) => current && setError(err.message),
      );
    }, 150);
    return () => {
      current = false;
      clearTimeout(timer);
    };
  }, [environment, JSON.stringify(branches), requestedBy]);

  const submit = async (event: Event): Promise<void> => {
    event.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      const result = await api.start(request);
      setProblems(result.problems);
      if (result.executionArn) location.hash = executionHref(result.executionArn);
    } catch (err) {
      setError((err as Error).message);
    } finally {
      setBusy(false);
    }
  };

  const policy = options.environments.find((e) => e.name === environment)?.branches ?? [];
  const problem = (field: string) =>
    problems[field] ? html`<span class="problem" data-field=${field} role="alert">${problems[field]}</span>` : null;
  const valid = Object.keys(problems).length === 0;
  return html`<section class="start">
    <h1>Start a deployment</h1>
    <form onSubmit=${submit} novalidate>
      <div class="field">
        <label for="environment">Environment</label>
        <select id="environment" name="environment" value=${environment} onChange=${(e: Event) => setEnvironment((e.target as HTMLSelectElement).value)}>
          ${options.environments.map((env) => html`<option value=${env.name}>${env.name}</option>`)}
        </select>
        <span class="hint">allowed branches: ${policy.join(', ')}</span>
        ${problem('environment')}
      </div>
      ${options.sources.map(
        (source) => html`<div class="field">
          <label for=${`branch-${source.name}`}>Branch of ${source.name}</label>
          <input
            id=${`branch-${source.name}`}
            name=${`branches.${source.name}`}
            placeholder=${source.defaultBranch}
            value=${branches[source.name] ?? ''}
            onInput=${(e: Event) => setBranches({ ...branches, [source.name]: (e.target as HTMLInputElement).value })}
            autocomplete="off"
            spellcheck="false"
          />
          <span class="hint">empty: ${source.defaultBranch}</span>
          ${problem(`branches.${source.name}`)}
        </div>`,
      )}
      <div class="field">
        <label for="requested-by">Requested by</label>
        <input id="requested-by" name="requestedBy" value=${requestedBy} onInput=${(e: Event) => setRequestedBy((e.target as HTMLInputElement).value)} />
        ${problem('requestedBy')}
      </div>
      ${problem('branches')} ${problem('form')}
      <button type="submit" disabled=${busy || !valid}>Start</button>
      ${error ? html`<p class="error" role="alert">${error}</p>` : null}
    </form>
  </section>`;
}
