import { allStates, readDefinitionText, type StateMachineDefinition, type SubstitutionName } from '../workflows/definition';

/**
 * The Task timeouts of the state machine definition, keyed by the placeholder that names the
 * function or project each Task calls. A Lambda or CodeBuild timeout longer than its Task's
 * TimeoutSeconds would keep running after the execution has given up on it; a shorter one would
 * fail a step the state machine still allows. Reading them from the ASL keeps the two in step.
 */
export function taskTimeoutSeconds(definitionText: string = readDefinitionText()): Map<SubstitutionName, number> {
  // Placeholders sit inside JSON strings, so the unsubstituted text parses as it is.
  const definition = JSON.parse(definitionText) as StateMachineDefinition;
  const timeouts = new Map<SubstitutionName, number>();
  for (const { name, state } of allStates(definition)) {
    if (state.Type !== 'Task') continue;
    const parameters = (state.Parameters ?? {}) as Record<string, unknown>;
    const target = parameters.FunctionName ?? parameters.ProjectName;
    const placeholder = typeof target === 'string' ? /^\$\{([A-Za-z0-9]+)\}$/.exec(target)?.[1] : undefined;
    if (placeholder === undefined) continue;
    if (typeof state.TimeoutSeconds !== 'number') {
      throw new Error(
        `state ${name} calls \${${placeholder}} but has no TimeoutSeconds; add one to workflows/deploy-pipeline.asl.json`,
      );
    }
    const known = timeouts.get(placeholder as SubstitutionName);
    timeouts.set(placeholder as SubstitutionName, Math.max(known ?? 0, state.TimeoutSeconds));
  }
  return timeouts;
}

/** The TimeoutSeconds of the Task(s) calling `placeholder`; an error when no Task calls it. */
export function timeoutFor(timeouts: ReadonlyMap<SubstitutionName, number>, placeholder: SubstitutionName): number {
  const seconds = timeouts.get(placeholder);
  if (seconds === undefined) {
    throw new Error(
      `no Task in workflows/deploy-pipeline.asl.json calls \${${placeholder}} with TimeoutSeconds; the stack cannot size its timeout`,
    );
  }
  return seconds;
}
