// The example repositories' post-receive hook (written by local/webhooks.ts): `node post-receive.js
// <home>`. `git push` waits for it, so it is plain JavaScript on Node.js's own modules: through tsx
// and push-hook.ts it spent ~2 s of each push starting up (BENCHMARKS.md §9). It runs no shell:
// what was pushed (refs are the pusher's choice) is only ever data in a signed JSON body.
const { createHmac, randomUUID } = require('node:crypto');
const { existsSync, readdirSync, readFileSync, realpathSync } = require('node:fs');
const { request } = require('node:http');
const { userInfo } = require('node:os');
const { basename, join } = require('node:path');

const WEBHOOK_PATH_PREFIX = '/webhooks/';
/** Each running serve answers within this, or the push goes on without it. */
const ANSWER_TIMEOUT_MS = 10_000;

function webhookSecretFile(home) {
  return join(home, 'webhook-secret');
}

/**
 * For each pushed ref (stdin lines `<old> <new> <ref>`, githooks(5)) a GitHub-style push event,
 * signed with the local webhook secret as GitHub signs (X-Hub-Signature-256), to every running
 * `local serve` of `home` (`.stepdeploy/`). The receiver decides what it means, as on AWS; the
 * hook prints its answer, which git shows the pusher as `remote:` lines.
 */
async function main(home, input = readFileSync(0, 'utf8')) {
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
      'x-hub-signature-256': `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`,
    };
    for (const endpoint of endpoints) await post(`${endpoint}${WEBHOOK_PATH_PREFIX}github`, headers, body);
  }
}

/** The fields of GitHub's push event the receiver reads, for a local repository. */
function pushEvent(repository, ref, before, after) {
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

/** The endpoints the running serves of `home` wrote (`endpoints/*.json`); an unreadable one is skipped. */
function runningEndpoints(home) {
  const dir = join(home, 'endpoints');
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .flatMap((f) => {
      try {
        const { endpoint } = JSON.parse(readFileSync(join(dir, f), 'utf8'));
        return typeof endpoint === 'string' ? [endpoint] : [];
      } catch {
        return [];
      }
    });
}

/** Posts one delivery and prints the answer; a serve that does not answer is reported, never an error. */
async function post(url, headers, body) {
  let response;
  try {
    response = await send(url, headers, body);
  } catch (err) {
    console.log(`stepdeploy: ${url} did not answer (${err.message}): no deployment started there`);
    return;
  }
  let answer;
  try {
    answer = JSON.parse(response.text);
  } catch {
    answer = { message: response.text.slice(0, 200) };
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

/** node:http rather than fetch: loading fetch's client (undici) costs the push time for nothing here. */
function send(url, headers, body) {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: 'POST',
        headers: { ...headers, 'content-length': Buffer.byteLength(body) },
        signal: AbortSignal.timeout(ANSWER_TIMEOUT_MS),
      },
      (res) => {
        const chunks = [];
        res.on('data', (chunk) => chunks.push(chunk));
        res.on('end', () => resolve({ status: res.statusCode, text: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

module.exports = { WEBHOOK_PATH_PREFIX, webhookSecretFile };

if (require.main === module) {
  main(process.argv[2]).catch((err) => {
    // A push has happened whatever the hook says: report, never fail it.
    console.log(`stepdeploy: the push hook failed: ${err.message}`);
  });
}
