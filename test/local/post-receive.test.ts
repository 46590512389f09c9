import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { signatureProblem } from '../../tasks/receive-push/signature';

/**
 * The example repositories' post-receive hook, run as git runs it (`node post-receive.js <home>`,
 * the pushed refs on stdin, the repository as its working directory) against a stand-in serve:
 * each ref goes out signed as the receiver checks it, a hostile ref stays data, an absent serve
 * or secret ends the hook quietly, and it loads nothing but Node.js's own modules (no tsx).
 */

const HOOK = resolve(__dirname, '..', '..', 'local', 'post-receive.js');
const SECRET = 'local-secret';
const OLD = 'a'.repeat(40);
const NEW = 'b'.repeat(40);
// git's stdin lines are space-separated: a ref has no space, so these use none.
const HOSTILE = ['refs/heads/$(touch${IFS}pwned)', 'refs/heads/--upload-pack=touch', 'refs/heads/a;touch`pwned`|sh'];

interface Delivery {
  readonly url: string;
  readonly headers: IncomingMessage['headers'];
  readonly body: string;
}

let dir: string;
let home: string;
let repository: string;
let server: Server;
let endpoint: string;
let deliveries: Delivery[];

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'stepdeploy-hook-'));
  home = join(dir, '.stepdeploy');
  repository = join(dir, 'app.git');
  mkdirSync(join(home, 'endpoints'), { recursive: true });
  mkdirSync(repository);
  writeFileSync(join(home, 'webhook-secret'), `${SECRET}\n`);
  deliveries = [];
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      deliveries.push({ url: req.url ?? '', headers: req.headers, body });
      const { ref } = JSON.parse(body) as { ref: string };
      const answer = ref.startsWith('refs/heads/main')
        ? { started: [{ environment: 'acceptance', branch: 'main', commit: NEW, execution: 'acceptance-bbbbbbb-1' }] }
        : { ignored: [`branch ${JSON.stringify(ref)} is refused`] };
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(answer));
    });
  });
  await new Promise<void>((listening) => server.listen(0, '127.0.0.1', listening));
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  writeFileSync(join(home, 'endpoints', '1234.json'), JSON.stringify({ endpoint }));
});
afterEach(async () => {
  server.closeAllConnections();
  await new Promise((closed) => server.close(closed));
  rmSync(dir, { recursive: true, force: true });
});

/** Runs the hook as git does; `preload` is a module Node loads first. */
function runHook(stdin: string, preload?: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [...(preload ? ['-r', preload] : []), HOOK, home], { cwd: repository });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', fail);
    child.on('close', (code) => done({ code, stdout, stderr }));
    child.stdin.end(stdin);
  });
}

test('each pushed ref goes to the serve signed as the receiver checks it; its answer is printed', async () => {
  const result = await runHook(`${OLD} ${NEW} refs/heads/main\n${'0'.repeat(40)} ${NEW} refs/heads/feature/x\n`);

  expect(result).toMatchObject({ code: 0, stderr: '' });
  expect(result.stdout).toBe(
    'stepdeploy: acceptance deploys main@bbbbbbb: execution acceptance-bbbbbbb-1\n' +
      'stepdeploy: not deployed: branch "refs/heads/feature/x" is refused\n',
  );
  expect(deliveries.map((d) => d.url)).toEqual(['/webhooks/github', '/webhooks/github']);
  for (const d of deliveries) {
    expect(d.headers['x-github-event']).toBe('push');
    expect(
      signatureProblem('github', d.headers as Record<string, string>, Buffer.from(d.body), SECRET),
    ).toBeUndefined();
  }
  expect(JSON.parse(deliveries[1]!.body)).toMatchObject({
    ref: 'refs/heads/feature/x',
    before: '0'.repeat(40),
    after: NEW,
    created: true,
    deleted: false,
    repository: { name: 'app', full_name: 'app.git', clone_url: repository },
  });
  // Each delivery its own id: the receiver derives the execution name from it.
  expect(new Set(deliveries.map((d) => d.headers['x-github-delivery'])).size).toBe(2);
});

test('hostile ref names are data in the signed body, verbatim: nothing runs them', async () => {
  const result = await runHook(HOSTILE.map((ref) => `${OLD} ${NEW} ${ref}`).join('\n'));

  expect(result.code).toBe(0);
  expect(deliveries.map((d) => JSON.parse(d.body).ref)).toEqual(HOSTILE);
  expect(readdirSync(repository)).toEqual([]);
  expect(existsSync(join(home, 'pwned'))).toBe(false);
});

test('no serve running, or no secret: nothing sent, the push goes on (exit 0)', async () => {
  rmSync(join(home, 'endpoints'), { recursive: true });
  const noServe = await runHook(`${OLD} ${NEW} refs/heads/main\n`);
  mkdirSync(join(home, 'endpoints'));
  writeFileSync(join(home, 'endpoints', '1234.json'), JSON.stringify({ endpoint }));
  rmSync(join(home, 'webhook-secret'));
  const noSecret = await runHook(`${OLD} ${NEW} refs/heads/main\n`);

  expect(noServe).toEqual({
    code: 0,
    stdout: 'stepdeploy: no `stepdeploy local serve` running: no deployment started\n',
    stderr: '',
  });
  expect(noSecret.stdout).toBe(
    `stepdeploy: no webhook secret in ${join(home, 'webhook-secret')}: no deployment started\n`,
  );
  expect(deliveries).toEqual([]);
});

test('a serve that does not answer is reported, the others still get the push (exit 0)', async () => {
  const gone = createServer();
  await new Promise<void>((listening) => gone.listen(0, '127.0.0.1', listening));
  const port = (gone.address() as AddressInfo).port;
  await new Promise((closed) => gone.close(closed));
  writeFileSync(join(home, 'endpoints', '1111.json'), JSON.stringify({ endpoint: `http://127.0.0.1:${port}` }));

  const result = await runHook(`${OLD} ${NEW} refs/heads/main\n`);

  expect(result.code).toBe(0);
  expect(result.stdout).toContain(
    `stepdeploy: http://127.0.0.1:${port}/webhooks/github did not answer (connect ECONNREFUSED 127.0.0.1:${port}): no deployment started there\n`,
  );
  expect(result.stdout).toContain('stepdeploy: acceptance deploys main@bbbbbbb');
  expect(deliveries).toHaveLength(1);
});

test('loads nothing but Node.js modules: no tsx, no TypeScript, nothing from node_modules', async () => {
  const loaded = join(dir, 'loaded.txt');
  const preload = join(dir, 'record-loads.js');
  writeFileSync(
    preload,
    `const Module = require('node:module');
const { appendFileSync } = require('node:fs');
const load = Module._load;
Module._load = function (request, ...rest) {
  appendFileSync(${JSON.stringify(loaded)}, request + '\\n');
  return load.call(this, request, ...rest);
};
`,
  );

  const result = await runHook(`${OLD} ${NEW} refs/heads/main\n`, preload);

  expect(result.code).toBe(0);
  expect(deliveries).toHaveLength(1);
  const requests = readFileSync(loaded, 'utf8').split('\n').filter(Boolean);
  expect(requests).toContain(HOOK);
  expect(requests.filter((r: string) => r !== HOOK && !r.startsWith('node:'))).toEqual([]);
});
