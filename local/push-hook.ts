import { randomUUID } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, realpathSync } from 'node:fs';
import { userInfo } from 'node:os';
import { basename, join } from 'node:path';
import { signBody } from '../tasks/receive-push/signature';

export const WEBHOOK_PATH_PREFIX = '/webhooks/';

export function webhookSecretFile(home: string): string {
  return join(home, 'webhook-secret');
}

/**
 * The post-receive hook of the example repositories: for each pushed ref (stdin lines
 * `<old> <new> <ref>`, githooks(5)) a GitHub-style push event, signed with the local webhook
 * secret, to every running `local serve` of `.stepdeploy/`. The receiver decides what it means,
 * as on AWS; the hook prints its answer, which git shows the pusher as `remote:` lines.
 */
export async function main(home: string, input: string = readFileSync(0, 'utf8')): Promise<void> {
  const endpoints = runningEndpoints(home);
  if (endpoints.length === 0) {
    console.log('stepdeploy: no `stepdeploy local serve` running: no deployment started');
    return;
  }
  const secretFile = webhookSecretFile(home);
  if (!existsSync(secretFile)) {
    console.log(`stepdeploy: no webhook secret in ${secretFile}: no deployment started`);
    return;
  }
  const secret = readFileSync(secretFile, 'utf8').trim();
  const repository = realpathSync(process.cwd());
  for (const line of input.split('\n').filter((l) => l.trim() !== '')) {
    const [before = '', after = '', ref = ''] = line.trim().split(/\s+/);
    const body = JSON.stringify(pushEvent(repository, ref, before, after));
    const headers = {
      'content-type': 'application/json',
      'x-github-event': 'push',
      'x-github-delivery': randomUUID(),
      'x-hub-signature-256': signBody(body, secret),
    };
    for (const endpoint of endpoints) await post(`${endpoint}${WEBHOOK_PATH_PREFIX}github`, headers, body);
  }
}

/** The fields of GitHub's push event the receiver reads, for a local repository. */
export function pushEvent(repository: string, ref: string, before: string, after: string): Record<string, unknown> {
  const zero = /^0+$/;
  return {
    ref,
    before,
    after,
    created: zero.test(before),
    deleted: zero.test(after),
    repository: { name: basename(repository, '.git'), full_name: basename(repository), clone_url: repository },
    pusher: { name: userInfo().username },
  };
}

function runningEndpoints(home: string): string[] {
  const dir = join(home, 'endpoints');
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .flatMap((f) => {
      try {
        const { endpoint } = JSON.parse(readFileSync(join(dir, f), 'utf8')) as { endpoint?: unknown };
        return typeof endpoint === 'string' ? [endpoint] : [];
      } catch {
        return [];
      }
    });
}

async function post(url: string, headers: Record<string, string>, body: string): Promise<void> {
  let response: Response;
  try {
    response = await fetch(url, { method: 'POST', headers, body, signal: AbortSignal.timeout(10_000) });
  } catch (err) {
    console.log(`stepdeploy: ${url} did not answer (${(err as Error).message}): no deployment started there`);
    return;
  }
  const text = await response.text();
  let answer: {
    started?: Array<Record<string, string>>;
    alreadyStarted?: unknown[];
    ignored?: string[];
    message?: string;
  };
  try {
    answer = JSON.parse(text);
  } catch {
    answer = { message: text.slice(0, 200) };
  }
  if (response.status !== 200) {
    console.log(`stepdeploy: ${response.status} ${answer.message ?? ''}`);
    return;
  }
  for (const s of answer.started ?? []) {
    console.log(`stepdeploy: ${s.environment} deploys ${s.branch}@${s.commit?.slice(0, 7)}: execution ${s.execution}`);
  }
  for (const reason of answer.ignored ?? []) console.log(`stepdeploy: not deployed: ${reason}`);
}
