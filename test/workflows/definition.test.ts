import { readFileSync } from 'node:fs';
import aslValidator from 'asl-validator';
import {
  DEFINITION_PATH,
  SUBSTITUTION_NAMES,
  PATH_WITHOUT_APPROVAL,
  TOP_LEVEL_STATES,
  allStates,
  loadDefinition,
  placeholdersIn,
  reachableStates,
  substitute,
  type StateMachineDefinition,
  type Substitutions,
} from '../../workflows/definition';
import { CurrentRecordContendedError } from '../../tasks/record-deployment/errors';
import { ConditionalWriteConflictError } from '../../tasks/shared/errors';

const substitutions = Object.fromEntries(
  SUBSTITUTION_NAMES.map((name) =>
    name.endsWith('Arn')
      ? [name, `arn:aws:lambda:eu-west-1:123456789012:function:${name}`]
      : [name, `stepdeploy-${name.toLowerCase()}`],
  ),
) as Substitutions;

const text = readFileSync(DEFINITION_PATH, 'utf8');
const definition = loadDefinition(substitutions);

/** Errors a task throws on purpose that its state retries: each step is idempotent, and the error is a lost race. */
const RETRIED_TASK_ERRORS: Record<string, string[]> = {
  CombineConfigAndCode: ['ConditionalWriteConflictError'],
  RecordDeployment: ['CurrentRecordContendedError', 'ConditionalWriteConflictError'],
};

const TRANSIENT_LAMBDA = [
  'Lambda.ServiceException',
  'Lambda.AWSLambdaException',
  'Lambda.SdkClientException',
  'Lambda.TooManyRequestsException',
];

describe('workflows/deploy-pipeline.asl.json', () => {
  test('asl-validator accepts the definition after substitution', () => {
    const { isValid, errors } = aslValidator(definition, { checkArn: true, checkPaths: true });
    expect(errors).toEqual([]);
    expect(isValid).toBe(true);
  });

  test('every ${...} placeholder has a substitution and every substitution is used', () => {
    expect(placeholdersIn(text)).toEqual([...SUBSTITUTION_NAMES].sort());
    expect(JSON.stringify(definition)).not.toMatch(/\$\{/);
  });

  test('fails to substitute when a placeholder has no value', () => {
    const { ArtifactsBucket: _omitted, ...partial } = substitutions;
    expect(() => substitute(text, partial)).toThrow('no substitution for ${ArtifactsBucket}');
  });

  test('the top-level states are the public ones, in order, each with a Comment; without approval ApprovalRequired goes straight to Deploy', () => {
    const order: string[] = [];
    let name: string | undefined = definition.StartAt;
    while (name !== undefined) {
      order.push(name);
      const state: StateMachineDefinition['States'][string] = definition.States[name]!;
      expect(state.Comment).toEqual(expect.any(String));
      const next = state.Type === 'Choice' ? (state as { Default?: string }).Default : state.Next;
      name = state.End ? undefined : next;
    }
    expect(order).toEqual([...PATH_WITHOUT_APPROVAL]);
    expect(Object.keys(definition.States)).toEqual([...TOP_LEVEL_STATES]);
  });

  test('the approval branch: AwaitApproval between BuildTemplates and Deploy, its timeout to ApprovalTimedOut and back', () => {
    expect(definition.States.BuildTemplates!.Next).toBe('ApprovalRequired');
    expect(definition.States.ApprovalRequired).toMatchObject({
      Type: 'Choice',
      Choices: [{ Next: 'AwaitApproval' }],
      Default: 'Deploy',
    });
    expect(definition.States.AwaitApproval).toMatchObject({
      Resource: 'arn:aws:states:::lambda:invoke.waitForTaskToken',
      TimeoutSecondsPath: '$.approval.timeoutSeconds',
      Catch: [{ ErrorEquals: ['States.Timeout'], Next: 'ApprovalTimedOut' }],
      ResultPath: '$.decision',
      Next: 'Deploy',
    });
    expect(definition.States.ApprovalTimedOut).toMatchObject({ Type: 'Task', Next: 'AwaitApproval' });
  });

  test('every state, nested ones included, is reachable and has a Comment', () => {
    const levels: StateMachineDefinition[] = [definition];
    for (const { state } of allStates(definition)) {
      if (state.ItemProcessor) levels.push(state.ItemProcessor);
    }
    for (const level of levels) {
      expect([...reachableStates(level)].sort()).toEqual(Object.keys(level.States).sort());
    }
    for (const { name, state } of allStates(definition)) {
      expect({ name, comment: typeof state.Comment }).toEqual({ name, comment: 'string' });
    }
  });

  test('every Task has TimeoutSeconds and retries only transient errors, with backoff and jitter', () => {
    const tasks = allStates(definition).filter(({ state }) => state.Type === 'Task');
    expect(tasks.length).toBeGreaterThanOrEqual(7);
    for (const { name, state } of tasks) {
      // AwaitApproval waits as long as the environment's approval.timeoutMinutes says (at most 12 hours).
      const timeout = name === 'AwaitApproval' ? typeof state.TimeoutSecondsPath : typeof state.TimeoutSeconds;
      expect({ name, timeout }).toEqual({ name, timeout: name === 'AwaitApproval' ? 'string' : 'number' });
      const retries = (state.Retry ?? []) as Array<Record<string, unknown>>;
      expect(retries.length).toBeGreaterThan(0);
      const allowed = state.Resource!.startsWith('arn:aws:states:::codebuild')
        ? ['CodeBuild.AccountLimitExceededException']
        : name === 'Deploy'
          ? [...TRANSIENT_LAMBDA, 'AccountLimitExceededException', 'DeployLeaseBusyError']
          : [...TRANSIENT_LAMBDA, ...(RETRIED_TASK_ERRORS[name] ?? [])];
      for (const retry of retries) {
        for (const error of retry.ErrorEquals as string[]) expect(allowed).toContain(error);
        expect(retry.BackoffRate).toBeGreaterThan(1);
        expect(retry.JitterStrategy).toBe('FULL');
        expect(retry.MaxAttempts).toBeGreaterThan(0);
      }
    }
  });

  test('retries the errors of an idempotent step that only lost a race: RecordDeployment its contention on current.json and S3 409s, CombineConfigAndCode S3 409s', () => {
    const retried = (state: string) =>
      ((definition.States[state]!.Retry ?? []) as Array<{ ErrorEquals: string[] }>).flatMap((r) => r.ErrorEquals);
    expect(retried('RecordDeployment')).toEqual(
      expect.arrayContaining([new CurrentRecordContendedError('').name, new ConditionalWriteConflictError('').name]),
    );
    expect(retried('CombineConfigAndCode')).toEqual(
      expect.arrayContaining([new ConditionalWriteConflictError('').name]),
    );
  });

  test('has no Fail state, and no Catch but the approval timeout, which leads to a Task, so a redrive restarts at the failed state', () => {
    for (const { name, state } of allStates(definition)) {
      const catches =
        name === 'AwaitApproval' ? [{ ErrorEquals: ['States.Timeout'], next: 'ApprovalTimedOut' }] : undefined;
      const actual = (state.Catch as Array<{ ErrorEquals: string[]; Next: string }> | undefined)?.map((c) => ({
        ErrorEquals: c.ErrorEquals,
        next: c.Next,
      }));
      expect({ name, catch: actual }).toEqual({ name, catch: catches });
      expect({ name, type: state.Type }).not.toEqual({ name, type: 'Fail' });
    }
    expect(definition.States.ApprovalTimedOut!.Type).toBe('Task');
  });

  test('uses JSONPath only: no JSONata, no Assign', () => {
    expect(text).not.toMatch(/"QueryLanguage"|"Assign"|\{%/);
  });

  test('CodeBuild tasks wait for the build (.sync), Deploy and AwaitApproval wait for their task tokens, the other tasks invoke Lambda', () => {
    const resources = Object.fromEntries(
      allStates(definition)
        .filter(({ state }) => state.Resource)
        .map(({ name, state }) => [name, state.Resource]),
    );
    expect(resources).toEqual({
      ValidateInput: 'arn:aws:states:::lambda:invoke',
      ResolveSource: 'arn:aws:states:::lambda:invoke',
      FetchSource: 'arn:aws:states:::codebuild:startBuild.sync',
      FetchSourceThroughConnection: 'arn:aws:states:::codebuild:startBuild.sync',
      CombineConfigAndCode: 'arn:aws:states:::lambda:invoke',
      BuildTemplates: 'arn:aws:states:::codebuild:startBuild.sync',
      AwaitApproval: 'arn:aws:states:::lambda:invoke.waitForTaskToken',
      ApprovalTimedOut: 'arn:aws:states:::lambda:invoke',
      Deploy: 'arn:aws:states:::lambda:invoke.waitForTaskToken',
      RunHook: 'arn:aws:states:::lambda:invoke',
      RecordDeployment: 'arn:aws:states:::lambda:invoke',
    });
  });
});
