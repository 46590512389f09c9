import {
  allStates,
  readDefinitionText,
  type StateMachineDefinition,
  type SubstitutionName,
} from '../workflows/definition';

/**
 * The Task timeouts of the state machine definition, keyed by the placeholder that names the
 * function or project each Task calls. A Lambda or CodeBuild timeout longer than its Task's
 * TimeoutSeconds would keep running after the execution has given up on it; a shorter one would
 * fail a step the state machine still allows. Reading them from the ASL keeps the two in step.
 *
 * Tasks with `.waitForTaskToken` are left out: their TimeoutSeconds bounds the wait for the task
 * token, not the call that hands it over (see `callbackTimeoutSeconds`).
 */
export function taskTimeoutSeconds(definitionText: string = readDefinitionText()): Map<SubstitutionName, number> {
  return timeoutsOf(definitionText, 'run');
}

/**
 * The TimeoutSeconds of the `.waitForTaskToken` Tasks, keyed by the placeholder of the function
 * they invoke: how long the state machine waits for the token to come back (SendTaskSuccess or
 * SendTaskFailure), which may be far beyond what the invoked function may run.
 */
export function callbackTimeoutSeconds(definitionText: string = readDefinitionText()): Map<SubstitutionName, number> {
  return timeoutsOf(definitionText, 'callback');
}

function timeoutsOf(definitionText: string, kind: 'run' | 'callback'): Map<SubstitutionName, number> {
  // Placeholders sit inside JSON strings, so the unsubstituted text parses as it is.
  const definition = JSON.parse(definitionText) as StateMachineDefinition;
  const timeouts = new Map<SubstitutionName, number>();
  for (const { name, state } of allStates(definition)) {
    if (state.Type !== 'Task') continue;
    const parameters = (state.Parameters ?? {}) as Record<string, unknown>;
    const target = parameters.FunctionName ?? parameters.ProjectName;
    const placeholder = typeof target === 'string' ? /^\$\{([A-Za-z0-9]+)\}$/.exec(target)?.[1] : undefined;
    if (placeholder === undefined) continue;
    const callback = typeof state.Resource === 'string' && state.Resource.endsWith('.waitForTaskToken');
    // A wait sized by the execution's input (AwaitApproval: the environment's approval.timeoutMinutes)
    // bounds no function or build: the config caps it.
    if (callback && typeof state.TimeoutSecondsPath === 'string') continue;
    if (typeof state.TimeoutSeconds !== 'number') {
      throw new Error(
        `state ${name} calls \${${placeholder}} but has no TimeoutSeconds; add one to workflows/deploy-pipeline.asl.json`,
      );
    }
    if (callback !== (kind === 'callback')) continue;
    const known = timeouts.get(placeholder as SubstitutionName);
    timeouts.set(placeholder as SubstitutionName, Math.max(known ?? 0, state.TimeoutSeconds));
  }
  return timeouts;
}

/**
 * Added to a build's queued and build timeouts in the wait of the Task that starts it: CodeBuild
 * ends a timed-out build (FINALIZING, artifacts, the state-change event the `.sync` integration
 * waits for) a little after the timeout itself.
 */
export const BUILD_WAIT_MARGIN_SECONDS = 300;

/**
 * The build timeout, in minutes, that a Task waiting `taskSeconds` for a build of the project
 * `${placeholder}` leaves once the build's queued timeout and the margin are taken out. The Task
 * then outlasts both, so a build that runs out ends with CodeBuild's own TIMED_OUT (its phases say
 * whether the queue or the build ran out), never with a bare States.Timeout that says neither.
 */
export function buildMinutesWithin(taskSeconds: number, queuedMinutes: number, placeholder: SubstitutionName): number {
  const buildSeconds = taskSeconds - queuedMinutes * 60 - BUILD_WAIT_MARGIN_SECONDS;
  if (buildSeconds % 60 !== 0 || buildSeconds < 5 * 60 || buildSeconds > 480 * 60) {
    throw new Error(
      `the Task starting \${${placeholder}} waits ${taskSeconds} seconds: minus the queued timeout (${queuedMinutes} minutes) and the margin (${BUILD_WAIT_MARGIN_SECONDS} seconds) that leaves ${buildSeconds} seconds for the build, which must be a whole number of minutes from 5 to 480 (CodeBuild's build timeout limits); ` +
        `set its TimeoutSeconds in workflows/deploy-pipeline.asl.json to queued + build + margin, e.g. ${queuedMinutes * 60 + 30 * 60 + BUILD_WAIT_MARGIN_SECONDS} for a 30-minute build`,
    );
  }
  return buildSeconds / 60;
}

/** The TimeoutSeconds of the Task(s) calling `placeholder`; an error when no Task calls it. */
export function timeoutFor(timeouts: ReadonlyMap<SubstitutionName, number>, placeholder: SubstitutionName): number {
  const seconds = timeouts.get(placeholder);
  if (seconds === undefined) {
    throw new Error(
      `no Task in workflows/deploy-pipeline.asl.json calls \${${placeholder}} with TimeoutSeconds (a .waitForTaskToken Task counts in callbackTimeoutSeconds only, any other in taskTimeoutSeconds only); the stack cannot size its timeout`,
    );
  }
  return seconds;
}

/**
 * The deploy build's limits, in minutes. The Deploy state waits for a task token (its TimeoutSeconds
 * is that wait), so these are set here; the deploy lease is sized from them and must fit in that wait.
 */
export const DEPLOY_BUILD_TIMEOUT_MINUTES = 60;
export const DEPLOY_QUEUED_TIMEOUT_MINUTES = 15;
/**
 * How long a fetch or build may wait for CodeBuild capacity (CodeBuild's default is 8 hours). Their
 * build timeouts are what the waiting Task's TimeoutSeconds leaves after this and a margin.
 */
export const FETCH_QUEUED_TIMEOUT_MINUTES = 15;
export const BUILD_QUEUED_TIMEOUT_MINUTES = 15;

/** A CodeBuild project's `timeoutInMinutes` and `queuedTimeoutInMinutes`. */
export interface ProjectTimeouts {
  readonly timeoutInMinutes: number;
  readonly queuedTimeoutInMinutes: number;
}

/**
 * The timeouts of the fetch, build and deploy projects, from the definition: the one source of
 * both the stack's projects (infra/deployment-pipeline.ts) and the local runtime's (local/runtime.ts).
 */
export function projectTimeouts(
  definitionText: string = readDefinitionText(),
): Readonly<Record<'fetch' | 'build' | 'deploy', ProjectTimeouts>> {
  const timeouts = taskTimeoutSeconds(definitionText);
  const within = (placeholder: SubstitutionName, queuedTimeoutInMinutes: number): ProjectTimeouts => ({
    timeoutInMinutes: buildMinutesWithin(timeoutFor(timeouts, placeholder), queuedTimeoutInMinutes, placeholder),
    queuedTimeoutInMinutes,
  });
  return {
    fetch: within('FetchProjectName', FETCH_QUEUED_TIMEOUT_MINUTES),
    build: within('BuildProjectName', BUILD_QUEUED_TIMEOUT_MINUTES),
    deploy: { timeoutInMinutes: DEPLOY_BUILD_TIMEOUT_MINUTES, queuedTimeoutInMinutes: DEPLOY_QUEUED_TIMEOUT_MINUTES },
  };
}
