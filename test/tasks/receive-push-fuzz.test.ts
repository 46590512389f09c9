import fc from 'fast-check';
import { receiveWebhook, type WebhookRequest } from '../../tasks/receive-push/receive-push';
import type { WebhookProvider } from '../../tasks/receive-push/push';
import { signBody } from '../../tasks/receive-push/signature';
import { triggeredEnvironments } from '../../tasks/receive-push/triggers';
import { branchNameViolation } from '../../shared/branch-name';
import { executionNameViolation } from '../../shared/execution-name';
import { checkExecutionInput } from '../../tasks/validate-input/validate-input';
import { COMMIT, config, fakeDeps, githubPush, SECRET, signed } from './receive-push/fixtures';

/**
 * Hostile payloads, generated: whatever arrives, the receiver answers (never throws), starts
 * nothing without the secret, and whatever it starts passes the same rules as ValidateInput.
 */

const provider = fc.constantFrom<WebhookProvider>('github', 'gitlab', 'bitbucket');
const hostileText = fc.oneof(
  fc.string(),
  fc.string({ unit: 'grapheme' }),
  fc.constantFrom(
    'feature/a$b',
    '--upload-pack=x',
    'feature/\u0430pp',
    'main\u0000',
    '$(touch /tmp/pwned)',
    '`id`',
    'a..b',
    'x.lock',
    'a@{1}',
    '/main',
    'main/',
    '\u202emain',
    'ma\nin',
    'main',
    'feature/ok',
  ),
);
const commit = fc.oneof(
  fc.constant(COMMIT),
  fc.string(),
  fc.stringMatching(/^[0-9a-f]{40}$/),
  fc.constant('0'.repeat(40)),
);
const repository = fc.constantFrom(
  'https://github.com/Acme/App.git',
  'https://gitlab.com/acme/config.git',
  'https://github.com/evil/App.git',
  '/etc',
  '',
);

const pushPayload = fc.record({
  ref: fc.oneof(
    hostileText.map((b) => `refs/heads/${b}`),
    hostileText,
  ),
  after: commit,
  deleted: fc.boolean(),
  object_kind: fc.constantFrom('push', 'tag_push', 'x'),
  repository: fc.record({ clone_url: repository, git_http_url: repository }),
  project: fc.record({ git_http_url: repository }),
  pusher: fc.record({ name: hostileText }),
  user_username: hostileText,
  push: fc.record({
    changes: fc.array(
      fc.record({
        new: fc.option(
          fc.record({
            type: fc.constantFrom('branch', 'tag', 'x'),
            name: hostileText,
            target: fc.record({ hash: commit }),
          }),
        ),
      }),
      { maxLength: 3 },
    ),
  }),
});
const anyPayload = fc.oneof(pushPayload, fc.anything(), fc.jsonValue()).filter((p) => JSON.stringify(p) !== undefined);

function expectOnlyValidStarts(deps: ReturnType<typeof fakeDeps>): void {
  for (const { name, input } of deps.started) {
    expect(executionNameViolation(name)).toBeUndefined();
    expect(checkExecutionInput(input, config)).toEqual([]);
    for (const [source, branch] of Object.entries(input.branches ?? {})) {
      expect(branchNameViolation(branch)).toBeUndefined();
      expect(triggeredEnvironments(config, source, branch)).toContain(input.environment);
      expect(input.commits?.[source]).toMatch(/^[0-9a-f]{40}$/);
    }
  }
}

test('unsigned or wrongly signed requests of any shape: 401 (or 404/405/413 before that), never a start', async () => {
  await fc.assert(
    fc.asyncProperty(
      provider,
      fc.uint8Array({ maxLength: 2000 }),
      fc.dictionary(
        fc.constantFrom(
          'x-hub-signature-256',
          'x-hub-signature',
          'x-gitlab-token',
          'x-github-event',
          'x-event-key',
          'x-gitlab-event',
          'content-type',
        ),
        fc.string(),
      ),
      fc.constantFrom('POST', 'GET', 'PUT'),
      async (from, bytes, headers, method) => {
        const deps = fakeDeps();
        const response = await receiveWebhook(
          { method, path: `/webhooks/${from}`, headers, body: Buffer.from(bytes) },
          deps,
        );
        expect([401, 405]).toContain(response.statusCode);
        expect(deps.started).toEqual([]);
      },
    ),
    { numRuns: 300 },
  );
});

test("signed hostile payloads: 200 or 400, and every execution started passes ValidateInput's rules", async () => {
  let starts = 0;
  await fc.assert(
    fc.asyncProperty(provider, anyPayload, fc.string(), async (from, payload, delivery) => {
      const deps = fakeDeps();
      const request = signed(from, payload, { 'x-github-delivery': delivery });
      const response = await receiveWebhook(request, deps);
      expect([200, 400]).toContain(response.statusCode);
      expectOnlyValidStarts(deps);
      starts += deps.started.length;
    }),
    { numRuns: 400, seed: 19 },
  );
  // Not vacuous: some generated pushes were good enough to start executions, and were checked.
  expect(starts).toBeGreaterThan(0);
});

test('a good push passes the same checks', async () => {
  const deps = fakeDeps();
  await receiveWebhook(signed('github', githubPush({ ref: 'refs/heads/feature/ok' })), deps);
  expect(deps.started).toHaveLength(1);
  expectOnlyValidStarts(deps);
});

test('a signed body with a hostile content type and form payload still goes through the same checks', async () => {
  await fc.assert(
    fc.asyncProperty(anyPayload, async (payload) => {
      const deps = fakeDeps();
      const body = Buffer.from(new URLSearchParams({ payload: JSON.stringify(payload) ?? '' }).toString());
      const request: WebhookRequest = {
        method: 'POST',
        path: '/webhooks/github',
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          'x-github-event': 'push',
          'x-hub-signature-256': signBody(body, SECRET),
        },
        body,
      };
      const response = await receiveWebhook(request, deps);
      expect([200, 400]).toContain(response.statusCode);
      expectOnlyValidStarts(deps);
    }),
    { numRuns: 200 },
  );
});
