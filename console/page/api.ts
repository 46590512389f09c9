import type {
  BuildLogPage,
  DecisionResult,
  EnvironmentView,
  ExecutionDetail,
  ExecutionRow,
  FormOptions,
  StartRequest,
  StartResult,
} from '../api-types';

/** The console server's JSON API. Errors carry the server's one-line message. */

async function call<T>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> {
  const response = await fetch(path, {
    method,
    headers: body === undefined ? {} : { 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const value = (await response.json().catch(() => ({ error: `${response.status} ${response.statusText}` }))) as T & {
    error?: string;
  };
  if (!response.ok) throw new Error(value.error ?? `${response.status} ${response.statusText}`);
  return value;
}

const query = (params: Record<string, string | number | undefined>): string =>
  new URLSearchParams(
    Object.entries(params)
      .filter(([, v]) => v !== undefined && v !== '')
      .map(([k, v]) => [k, String(v)]),
  ).toString();

export const api = {
  options: () => call<FormOptions>('GET', '/console/api/options'),
  environments: () => call<EnvironmentView[]>('GET', '/console/api/environments'),
  executions: (filter: { environment?: string; status?: string }) =>
    call<ExecutionRow[]>('GET', `/console/api/executions?${query(filter)}`),
  execution: (arn: string) => call<ExecutionDetail>('GET', `/console/api/execution?${query({ arn })}`),
  buildLog: (id: string, from: number) => call<BuildLogPage>('GET', `/console/api/build-log?${query({ id, from })}`),
  validate: (request: StartRequest) => call<StartResult>('POST', '/console/api/validate', request),
  start: (request: StartRequest) => call<StartResult>('POST', '/console/api/start', request),
  redrive: (executionArn: string) => call<unknown>('POST', '/console/api/redrive', { executionArn }),
  stop: (executionArn: string, cause?: string) => call<unknown>('POST', '/console/api/stop', { executionArn, cause }),
  approve: (executionArn: string, comment: string) =>
    call<DecisionResult>('POST', '/console/api/approve', { executionArn, comment }),
  reject: (executionArn: string, reason: string) =>
    call<DecisionResult>('POST', '/console/api/reject', { executionArn, reason }),
  rollback: (environment: string, to: string) =>
    call<StartResult>('POST', '/console/api/rollback', { environment, to }),
};
