import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { EventEmitter } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { DescribeExecutionCommand, ListExecutionsCommand, SFNClient } from '@aws-sdk/client-sfn';
import { parse, stringify } from 'yaml';
import { serveLocal } from '../../cli/local-serve';
import { signBody } from '../../tasks/receive-push/signature';
import { capture, type Captured } from '../helpers/io';

/**
 * Deploy on push, end to end on this machine: `local serve` runs, a `git push` to the example app
 * repository runs its post-receive hook, which posts a signed GitHub push event to the serve's
 * receiver (the same code as the Lambda function URL's), and the triggered environments deploy
 * exactly the pushed commit. A forged request starts nothing.
 */

const ROOT = resolve(__dirname, '..', '..');
const CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };
const GIT_ENV = {
  ...process.env,
  GIT_AUTHOR_NAME: 'push test',
  GIT_AUTHOR_EMAIL: 'push@stepdeploy.invalid',
  GIT_COMMITTER_NAME: 'push test',
  GIT_COMMITTER_EMAIL: 'push@stepdeploy.invalid',
  GIT_CONFIG_NOSYSTEM: '1',
  GIT_CONFIG_GLOBAL: '/dev/null',
};

let dir: string;
let configPath: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'stepdeploy-push-'));
  const config = parse(readFileSync(join(ROOT, 'stepdeploy.config.yml'), 'utf8'));
  config.buildspecs = { build: join(ROOT, config.buildspecs.build), deploy: join(ROOT, config.buildspecs.deploy) };
  configPath = join(dir, 'stepdeploy.config.yml');
  writeFileSync(configPath, stringify(config));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function git(cwd: string, args: string[]): string {
  return execFileSync('git', args, { cwd, env: GIT_ENV, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
}

async function started(io: Captured): Promise<string> {
  for (let i = 0; !io.stdout().includes('Press Ctrl-C to stop.'); i++) {
    if (i > 600) throw new Error(`local serve did not start:\n${io.stdout()}`);
    await new Promise((tick) => setTimeout(tick, 100));
  }
  return /^stepdeploy local runtime on (http:\/\/127\.0\.0\.1:\d+) /m.exec(io.stdout())![1]!;
}

async function ended(sfn: SFNClient, executionArn: string): Promise<string> {
  for (;;) {
    const { status, error, cause } = await sfn.send(new DescribeExecutionCommand({ executionArn }));
    if (status !== 'RUNNING') return status === 'SUCCEEDED' ? status : `${status} ${error} ${cause}`;
    await new Promise((tick) => setTimeout(tick, 250));
  }
}

test('a push to a new branch and to main deploys the pushed commit to the triggered environments; a forged request starts nothing', async () => {
  const signals = new EventEmitter();
  const served = capture();
  const serving = serveLocal({ configPath, port: 0, signals }, served);
  const endpoint = await started(served);
  const home = join(dir, '.stepdeploy');
  const sfn = new SFNClient({ endpoint, region: 'us-east-1', credentials: CREDENTIALS });
  const s3 = new S3Client({ endpoint, region: 'us-east-1', credentials: CREDENTIALS, forcePathStyle: true });
  const machine = 'arn:aws:states:us-east-1:000000000000:stateMachine:stepdeploy-example';
  try {
    // serve prints the webhook URLs and the local secret, kept under .stepdeploy/ for this user only.
    const secret = readFileSync(join(home, 'webhook-secret'), 'utf8').trim();
    expect(served.stdout()).toContain(`${endpoint}/webhooks/github`);
    expect(served.stdout()).toContain(`webhook secret: ${secret}`);
    expect(statSync(join(home, 'webhook-secret')).mode & 0o777).toBe(0o600);

    const work = join(dir, 'work');
    git(dir, ['clone', '--quiet', join(home, 'example-repos', 'app.git'), work]);
    git(work, ['checkout', '--quiet', '-b', 'feature/pushed']);
    writeFileSync(join(work, 'PUSHED.md'), 'pushed on a new branch\n');
    git(work, ['add', 'PUSHED.md']);
    git(work, ['commit', '--quiet', '-m', 'a pushed change']);
    const featureCommit = git(work, ['rev-parse', 'HEAD']);

    const featurePush = await pushed(work, 'feature/pushed');

    expect(featurePush).toMatch(
      new RegExp(
        `remote: stepdeploy: acceptance deploys feature/pushed@${featureCommit.slice(0, 7)}: execution (acceptance-${featureCommit.slice(0, 7)}-[0-9a-f]{12})`,
      ),
    );
    const featureExecution = /execution (acceptance-\S+)/.exec(featurePush)![1]!;
    const featureArn = `${machine.replace(':stateMachine:', ':execution:')}:${featureExecution}`;
    expect(await ended(sfn, featureArn)).toBe('SUCCEEDED');
    const { input } = await sfn.send(new DescribeExecutionCommand({ executionArn: featureArn }));
    expect(JSON.parse(input!)).toMatchObject({
      environment: 'acceptance',
      branches: { app: 'feature/pushed' },
      commits: { app: featureCommit },
    });
    expect(await deployedCommit(s3, 'acceptance')).toBe(featureCommit);

    git(work, ['checkout', '--quiet', 'main']);
    writeFileSync(join(work, 'PUSHED.md'), 'pushed to main\n');
    git(work, ['add', 'PUSHED.md']);
    git(work, ['commit', '--quiet', '-m', 'a change on main']);
    const mainCommit = git(work, ['rev-parse', 'HEAD']);

    const mainPush = await pushed(work, 'main');

    const mainExecutions = [...mainPush.matchAll(/stepdeploy: (\w+) deploys main@\w+: execution (\S+)/g)].map((m) => [
      m[1],
      m[2],
    ]);
    expect(mainExecutions.map(([environment]) => environment)).toEqual(['acceptance', 'preproduction']);
    for (const [environment, name] of mainExecutions) {
      expect(await ended(sfn, `${machine.replace(':stateMachine:', ':execution:')}:${name}`)).toBe('SUCCEEDED');
      expect(await deployedCommit(s3, environment!)).toBe(mainCommit);
    }

    // A forged delivery: a valid push event signed with another secret. 401, nothing started.
    const before = (await sfn.send(new ListExecutionsCommand({ stateMachineArn: machine }))).executions!.length;
    const body = JSON.stringify({
      ref: 'refs/heads/main',
      after: mainCommit,
      repository: { clone_url: join(home, 'example-repos', 'app.git') },
      pusher: { name: 'mallory' },
    });
    const forged = await fetch(`${endpoint}/webhooks/github`, {
      method: 'POST',
      headers: {
        'x-github-event': 'push',
        'x-github-delivery': 'forged',
        'x-hub-signature-256': signBody(body, 'guessed'),
      },
      body,
    });
    expect(forged.status).toBe(401);
    const after = (await sfn.send(new ListExecutionsCommand({ stateMachineArn: machine }))).executions!.length;
    expect(after).toBe(before);
    expect(served.stdout()).toContain('[webhook] github webhook refused: X-Hub-Signature-256 does not match the body');
  } finally {
    sfn.destroy();
    s3.destroy();
    signals.emit('SIGTERM');
    await serving;
  }
}, 600_000);

/**
 * `git push` output, the remote hook's lines included (git writes them to stderr). Asynchronous:
 * the hook posts to the serve running in this very process.
 */
async function pushed(cwd: string, branch: string): Promise<string> {
  const { stdout, stderr } = await promisify(execFile)('git', ['push', 'origin', branch], { cwd, env: GIT_ENV });
  return `${stdout}${stderr}`;
}

async function deployedCommit(s3: S3Client, environment: string): Promise<string | undefined> {
  const object = await s3.send(
    new GetObjectCommand({ Bucket: 'stepdeploy-example-artifacts', Key: `deployments/${environment}/current.json` }),
  );
  const record = JSON.parse(await object.Body!.transformToString()) as {
    sources: Array<{ name: string; commit: string }>;
  };
  return record.sources.find((s) => s.name === 'app')?.commit;
}
