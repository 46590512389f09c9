import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import * as codebuild from '@aws-sdk/client-codebuild';
import { allStates, DEFINITION_PATH, type StateMachineDefinition } from '../../workflows/definition';

/**
 * Error names are a contract between the tasks and workflows/deploy-pipeline.asl.json: a Retry or
 * Catch matches `error.name`, and a name that matches nothing is a retry that never happens. So:
 * every name in an ErrorEquals is an error a task exports, or one AWS documents; and every error
 * class a task exports is either retried/caught by name or listed below as terminal, with why.
 * Renaming an error class, or adding one, fails here until someone decides.
 */

const ROOT = join(__dirname, '..', '..');
/** The tasks, and shared/ (the config and contracts every layer uses), whose errors the tasks throw too. */
const TASK_CODE_DIRS = [join(ROOT, 'tasks'), join(ROOT, 'shared')];

/**
 * Names Step Functions itself reports, as AWS documents them: the States.* names of "Handling
 * errors in Step Functions workflows", the transient Lambda service exceptions of its best
 * practices ("Handle transient Lambda service exceptions").
 */
const STEP_FUNCTIONS_ERRORS = new Set([
  'States.ALL',
  'States.DataLimitExceeded',
  'States.ExceedToleratedFailureThreshold',
  'States.HeartbeatTimeout',
  'States.IntrinsicFailure',
  'States.ItemReaderFailed',
  'States.NoChoiceMatched',
  'States.ParameterPathFailure',
  'States.Permissions',
  'States.ResultPathMatchFailure',
  'States.ResultWriterFailed',
  'States.Runtime',
  'States.TaskFailed',
  'States.Timeout',
  'States.BranchFailed',
  'Lambda.ServiceException',
  'Lambda.AWSLambdaException',
  'Lambda.SdkClientException',
  'Lambda.TooManyRequestsException',
]);

/**
 * A `.sync` service integration reports the service's API error as `<Service>.<Exception>`:
 * `CodeBuild.` names must be exceptions the CodeBuild SDK exports under that name.
 */
function isCodeBuildIntegrationError(error: string): boolean {
  const exception = /^CodeBuild\.(\w+Exception)$/.exec(error)?.[1];
  return exception !== undefined && isSdkException(exception);
}

function isSdkException(name: string): boolean {
  const cls = (codebuild as Record<string, unknown>)[name];
  return typeof cls === 'function' && cls.name === name;
}

/**
 * Errors of a CodeBuild SDK call that a task lets through unwrapped, so the Lambda reports the
 * SDK's exception name: Deploy's StartBuild (CodeBuild documents AccountLimitExceededException).
 */
const SDK_ERRORS = new Set(['AccountLimitExceededException']);

/** Every exported error class a task may throw and the ASL deliberately neither retries nor catches. */
const TERMINAL: Readonly<Record<string, string>> = {
  InvalidInputError:
    'ValidateInput: the input or its execution name breaks the contract; retrying gives the same answer, a new execution fixes it',
  InvalidEventError:
    'any task: the state machine sent an event the task does not accept, a definition bug that a retry repeats',
  ConfigError: 'a task cannot load the bundled config: only a new deployment of the stack fixes it',
  EnvironmentVariableError:
    'a Lambda lacks an environment variable the stack sets: only a new deployment of the stack fixes it',
  SourceBranchNotFoundError:
    'ResolveSource: the repository answered and has no such branch; fetching would fail the same way',
  SourceBranchMovedError:
    'ResolveSource: a pinned commit is no longer its branch head; a retry finds the branch moved the same way',
  AmbiguousBranchError:
    'ResolveSource: a pr/<n> branch that cannot be pinned to a commit would build the pull request instead',
  ArtifactConflictError:
    'CombineConfigAndCode: source.zip exists with other commits and is never overwritten; start a new execution',
  PathCollisionError: 'CombineConfigAndCode: two sources write the same path; the config or the sources must change',
  UnsafeEntryError: 'CombineConfigAndCode: a snapshot entry would land outside its folder; never retried',
  SnapshotError:
    'CombineConfigAndCode: a snapshot is missing or unreadable; redrive after FetchSources stored it again',
  VariableConflictError:
    'CombineConfigAndCode: a reserved variable name in a plan made before the name was reserved; the config must change',
  DeploySupersededError: 'Deploy: a newer execution reached Deploy; an older one must never deploy over it',
  HookFailedError: 'PostDeployHooks: the deployment is not healthy; redrive reruns the hooks once it is',
  RepositoryCredentialsError:
    'ResolveSource logs it and reads the repository without credentials: never reaches the state machine',
  WebhookSecretError: 'notify is an EventBridge target, not a state: a Slack problem never fails a deployment',
  ApprovalTimedOutError:
    'ApprovalTimedOut: nobody decided in time; a retry would only fail again, a redrive asks again (AwaitApproval)',
  ApprovalRejectedError:
    'AwaitApproval (sent by decide-approval with SendTaskFailure): a person said no; a redrive asks again',
  DecisionRefusedError:
    'decide-approval answers it to the caller of its function URL (HTTP 4xx): it never reaches the state machine',
};

function errorEqualsNames(definition: StateMachineDefinition): Map<string, string[]> {
  const used = new Map<string, string[]>();
  for (const { name, state } of allStates(definition)) {
    const handlers = [
      ...((state.Retry ?? []) as Array<{ ErrorEquals: string[] }>),
      ...((state.Catch ?? []) as unknown as Array<{ ErrorEquals: string[] }>),
    ];
    for (const error of handlers.flatMap((h) => h.ErrorEquals)) used.set(error, [...(used.get(error) ?? []), name]);
  }
  return used;
}

function typeScriptFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((entry) => {
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) return typeScriptFiles(path);
    return path.endsWith('.ts') ? [path] : [];
  });
}

interface ExportedError {
  readonly name: string;
  readonly file: string;
  readonly instanceName: string;
}

/** Every `export class X extends …Error` under tasks/ and shared/, loaded to read the name its instances carry. */
function exportedErrorClasses(): ExportedError[] {
  return TASK_CODE_DIRS.flatMap(typeScriptFiles).flatMap((file) => {
    const declared = [...readFileSync(file, 'utf8').matchAll(/^export class (\w+) extends (\w*Error)\b/gm)].map(
      (m) => m[1]!,
    );
    if (declared.length === 0) return [];
    const module = require(file) as Record<string, new (...args: unknown[]) => Error>;
    return declared.map((name) => ({
      name,
      file: relative(ROOT, file),
      instanceName: new module[name]!(['message']).name,
    }));
  });
}

const definition = JSON.parse(readFileSync(DEFINITION_PATH, 'utf8')) as StateMachineDefinition;
const used = errorEqualsNames(definition);
const exported = exportedErrorClasses();

describe('error names in workflows/deploy-pipeline.asl.json and the tasks', () => {
  test('finds the error classes the tasks export and the names the ASL matches', () => {
    expect(exported.map((e) => e.name)).toEqual(
      expect.arrayContaining(['InvalidInputError', 'DeployLeaseBusyError', 'HookFailedError', 'InvalidEventError']),
    );
    expect([...used.keys()]).toEqual(expect.arrayContaining(['Lambda.ServiceException', 'DeployLeaseBusyError']));
  });

  test('every exported error class names its instances after itself (the name is what ErrorEquals matches)', () => {
    for (const e of exported)
      expect({ class: e.name, file: e.file, name: e.instanceName }).toEqual({
        class: e.name,
        file: e.file,
        name: e.name,
      });
  });

  test('every ErrorEquals name is an error a task exports, one AWS documents, or an SDK error a task lets through', () => {
    const taskErrors = new Set(exported.map((e) => e.name));
    for (const [error, states] of used) {
      const known =
        taskErrors.has(error) ||
        STEP_FUNCTIONS_ERRORS.has(error) ||
        isCodeBuildIntegrationError(error) ||
        SDK_ERRORS.has(error);
      expect({ error, states, known }).toEqual({ error, states, known: true });
    }
    for (const name of SDK_ERRORS) expect({ name, exported: isSdkException(name) }).toEqual({ name, exported: true });
  });

  test('every exported error class is retried or caught by name, or listed as terminal with the reason', () => {
    for (const { name, file } of exported) {
      const decided = used.has(name) || Object.hasOwn(TERMINAL, name);
      expect({ name, file, decided }).toEqual({ name, file, decided: true });
    }
  });

  test('the terminal list names only exported error classes that no ErrorEquals handles', () => {
    const taskErrors = new Set(exported.map((e) => e.name));
    for (const name of Object.keys(TERMINAL)) {
      expect({ name, exported: taskErrors.has(name), handled: used.has(name) }).toEqual({
        name,
        exported: true,
        handled: false,
      });
    }
  });
});
