import { html, render } from 'htm/preact';
import { useEffect, useState } from 'preact/hooks';
import type { FormOptions } from '../api-types';
import { api } from './api';
import { Environments } from './environments';
import { Execution } from './execution';
import { Executions } from './executions';
import { StartForm } from './start';

/** The console page: hash routes (#/executions, #/execution/<arn>, #/environments, #/start). */

function useHash(): string {
  const [hash, setHash] = useState(location.hash);
  useEffect(() => {
    const onChange = (): void => setHash(location.hash);
    addEventListener('hashchange', onChange);
    return () => removeEventListener('hashchange', onChange);
  }, []);
  return hash;
}

function App() {
  const hash = useHash();
  const [options, setOptions] = useState<FormOptions | undefined>();
  const [error, setError] = useState<string | undefined>();
  useEffect(() => {
    api.options().then(setOptions, (err: Error) => setError(err.message));
  }, []);
  const route = hash.replace(/^#\/?/, '');
  const page = route.split('/')[0] || 'executions';
  let body: ReturnType<typeof html>;
  if (!options) body = html`<p class=${error ? 'error' : ''}>${error ?? 'loading…'}</p>`;
  else if (page === 'execution')
    body = html`<${Execution} arn=${decodeURIComponent(route.slice('execution/'.length))} options=${options} />`;
  else if (page === 'environments') body = html`<${Environments} options=${options} />`;
  else if (page === 'start') body = html`<${StartForm} options=${options} />`;
  else body = html`<${Executions} options=${options} />`;
  const link = (to: string, label: string) =>
    html`<a href=${`#/${to}`} class=${page === to ? 'current' : ''}>${label}</a>`;
  return html`<header class="top">
      <span class="brand">stepdeploy</span>
      <nav>${link('executions', 'Executions')} ${link('environments', 'Environments')} ${link('start', 'Start a deployment')}</nav>
      <span class="target">${options?.target ?? ''}</span>
    </header>
    <main>${body}</main>`;
}

render(html`<${App} />`, document.getElementById('app')!);
