import { SFNClient } from '@aws-sdk/client-sfn';
import { approvalUrlOf, sendDecision } from '../../cli/approval-url';
import { ExitCode } from '../../cli/exit-codes';
import { ExecutionGraph } from '../../cli/graph';
import { runCli } from '../../cli/main';
import type { Target } from '../../cli/target';
import {
  loadDefinition,
  PATH_WITHOUT_APPROVAL,
  SUBSTITUTION_NAMES,
  type Substitutions,
} from '../../workflows/definition';
import { capture } from '../helpers/io';

/** approve / reject against AWS: a SigV4-signed POST to the approval function's URL, never SendTaskSuccess. */

const URL_ = 'https://abcdefghijklmnopqrstuvwxyz012345.lambda-url.eu-west-1.on.aws/';

function awsTarget(): Target {
  const sfn = new SFNClient({
    region: 'eu-west-1',
    credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY' },
  });
  return { kind: 'aws', sfn, region: 'eu-west-1' } as unknown as Target;
}

afterEach(() => jest.restoreAllMocks());

test('signs the decision with the caller credentials for the lambda service in the URL region', async () => {
  const fetchMock = jest
    .spyOn(globalThis, 'fetch')
    .mockResolvedValue(new Response(JSON.stringify({ message: 'ok', decidedBy: 'arn:x' }), { status: 200 }));
  const body = { action: 'approve' as const, environment: 'production', execution: 'production-1' };

  const answer = await sendDecision(awsTarget(), body, { approvalUrl: URL_, gitCwd: '.' });

  expect(answer).toEqual({ status: 200, body: { message: 'ok', decidedBy: 'arn:x' } });
  const [url, init] = fetchMock.mock.calls[0]!;
  expect(String(url)).toBe(URL_);
  const headers = init!.headers as Record<string, string>;
  expect(headers.authorization).toMatch(
    /^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE\/\d{8}\/eu-west-1\/lambda\/aws4_request, SignedHeaders=[a-z0-9;-]*host[a-z0-9;-]*, Signature=[0-9a-f]{64}$/,
  );
  expect(headers['x-amz-content-sha256'] ?? headers['x-amz-date']).toBeDefined();
  expect(JSON.parse(init!.body as string)).toEqual(body);
});

test('fails naming the fix when the approval URL is missing or not a function URL', () => {
  delete process.env.STEPDEPLOY_APPROVAL_URL;
  expect(() => approvalUrlOf(undefined)).toThrow(
    'pass --approval-url or set STEPDEPLOY_APPROVAL_URL (the stack output ApprovalUrl)',
  );
  expect(() => approvalUrlOf('https://evil.example.com/')).toThrow('is not a Lambda function URL');
});

test('fails: reject without --reason is bad usage, nothing is sent', async () => {
  const fetchMock = jest.spyOn(globalThis, 'fetch');
  const io = capture();
  const code = await runCli(['node', 'stepdeploy', 'reject', 'production-1'], io);
  expect(code).toBe(ExitCode.Usage);
  expect(io.stderr()).toContain("required option '--reason <text>' not specified");
  expect(fetchMock).not.toHaveBeenCalled();
});

describe('watch graph', () => {
  const definition = loadDefinition(
    Object.fromEntries(
      SUBSTITUTION_NAMES.map((n) => [n, `arn:aws:lambda:eu-west-1:111111111111:function:${n}`]),
    ) as Substitutions,
  );
  const entered = (id: number, name: string) => ({
    id,
    previousEventId: id - 1,
    type: 'TaskStateEntered',
    timestamp: id,
    stateEnteredEventDetails: { name },
  });

  test('shows the default path, and AwaitApproval after ApprovalRequired once the execution waits there', () => {
    const graph = new ExecutionGraph(definition);
    const before = graph.states.map((s) => s.name);
    expect(before).toEqual([...PATH_WITHOUT_APPROVAL]);

    graph.apply([entered(1, 'BuildTemplates'), entered(2, 'ApprovalRequired'), entered(3, 'AwaitApproval')]);

    const names = graph.states.map((s) => s.name);
    expect(names.slice(names.indexOf('ApprovalRequired'), names.indexOf('ApprovalRequired') + 3)).toEqual([
      'ApprovalRequired',
      'AwaitApproval',
      'Deploy',
    ]);
    expect(graph.state('AwaitApproval')?.status).toBe('RUNNING');
  });
});
