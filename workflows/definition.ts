import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * The state machine definition is data: `deploy-pipeline.asl.json` is the single source of truth,
 * deployed by CDK with `definitionSubstitutions` and run locally with local substitutions.
 * Both go through this module so that they substitute the same placeholders the same way.
 */

export const DEFINITION_PATH = join(__dirname, 'deploy-pipeline.asl.json');

/** The `${Name}` placeholders the definition uses; each must be given a value. */
export const SUBSTITUTION_NAMES = [
  'ArtifactsBucket',
  'ValidateInputFunctionArn',
  'CombineSourcesFunctionArn',
  'ResolveSourceFunctionArn',
  'RunHookFunctionArn',
  'RecordDeploymentFunctionArn',
  'DeployFunctionArn',
  'AwaitApprovalFunctionArn',
  'FetchProjectName',
  'BuildProjectName',
] as const;
export type SubstitutionName = (typeof SUBSTITUTION_NAMES)[number];
export type Substitutions = Record<SubstitutionName, string>;

/** The top-level states, in the order an execution passes them; people see these names in the graph. */
export const TOP_LEVEL_STATES = [
  'ValidateInput',
  'RedeployOrBuild',
  'RedeployEarlierBuild',
  'FetchSources',
  'CombineConfigAndCode',
  'BuildTemplates',
  'ApprovalRequired',
  'AwaitApproval',
  'ApprovalTimedOut',
  'Deploy',
  'PostDeployHooks',
  'RecordDeployment',
] as const;

/** The approval branch: environments whose config requires no approval never enter these. */
export const APPROVAL_STATES = ['AwaitApproval', 'ApprovalTimedOut'] as const;

/** The branch a redeploy (rollback) takes instead of fetching, combining and building. */
export const REDEPLOY_STATES = ['RedeployEarlierBuild'] as const;

/** The top-level states a deployment of branches passes where no approval is required, in order. */
export const PATH_WITHOUT_APPROVAL: ReadonlyArray<string> = TOP_LEVEL_STATES.filter(
  (state) => ![...APPROVAL_STATES, ...REDEPLOY_STATES].includes(state as never),
);

/**
 * The states of one FetchSources iteration: a stored snapshot takes ReuseSnapshot, else FetchSource
 * (or FetchSourceThroughConnection, for a source with its own connection) + DescribeSnapshot.
 */
export const FETCH_ITERATION_STATES = [
  'ResolveSource',
  'SnapshotStored',
  'ReuseSnapshot',
  'FetchSource',
  'FetchSourceThroughConnection',
  'DescribeSnapshot',
] as const;

const PLACEHOLDER = /\$\{([A-Za-z0-9_]+)\}/g;

export function readDefinitionText(path: string = DEFINITION_PATH): string {
  return readFileSync(path, 'utf8');
}

export function placeholdersIn(text: string): string[] {
  return [...new Set([...text.matchAll(PLACEHOLDER)].map((m) => m[1]!))].sort();
}

/** Replaces every `${Name}`; an unknown or missing name is an error, never left in place. */
export function substitute(text: string, substitutions: Readonly<Record<string, string>>): string {
  const missing = placeholdersIn(text).filter((name) => substitutions[name] === undefined);
  if (missing.length > 0) {
    throw new Error(`no substitution for ${missing.map((m) => `\${${m}}`).join(', ')} in the state machine definition`);
  }
  return text.replace(PLACEHOLDER, (_, name: string) => {
    const value = substitutions[name]!;
    // Values land inside JSON strings: escape them as JSON would.
    return JSON.stringify(value).slice(1, -1);
  });
}

export interface StateDefinition {
  readonly Type: string;
  readonly Comment?: string;
  readonly Resource?: string;
  readonly Next?: string;
  readonly End?: boolean;
  readonly TimeoutSeconds?: number;
  readonly ItemProcessor?: StateMachineDefinition;
  readonly Iterator?: StateMachineDefinition;
  readonly Branches?: ReadonlyArray<StateMachineDefinition>;
  readonly Choices?: ReadonlyArray<{ readonly Next: string }>;
  readonly Default?: string;
  readonly Catch?: ReadonlyArray<{ readonly Next: string }>;
  readonly [key: string]: unknown;
}

export interface StateMachineDefinition {
  readonly StartAt: string;
  readonly States: Readonly<Record<string, StateDefinition>>;
  readonly [key: string]: unknown;
}

export function loadDefinition(substitutions: Substitutions, path: string = DEFINITION_PATH): StateMachineDefinition {
  return JSON.parse(substitute(readDefinitionText(path), substitutions)) as StateMachineDefinition;
}

export interface VisitedState {
  readonly name: string;
  readonly state: StateDefinition;
  /** Names of the enclosing Map/Parallel states, outermost first. */
  readonly parents: ReadonlyArray<string>;
}

/** Every state, nested Map and Parallel states included (local handlers are keyed by state name). */
export function allStates(definition: StateMachineDefinition, parents: ReadonlyArray<string> = []): VisitedState[] {
  const out: VisitedState[] = [];
  for (const [name, state] of Object.entries(definition.States)) {
    out.push({ name, state, parents });
    const inner = [state.ItemProcessor, state.Iterator, ...(state.Branches ?? [])].filter(
      (d): d is StateMachineDefinition => d !== undefined,
    );
    for (const d of inner) out.push(...allStates(d, [...parents, name]));
  }
  return out;
}

/** The states of one definition level that StartAt reaches through Next, Choices, Default and Catch. */
export function reachableStates(definition: StateMachineDefinition): Set<string> {
  const seen = new Set<string>();
  const queue = [definition.StartAt];
  while (queue.length > 0) {
    const name = queue.shift()!;
    if (seen.has(name)) continue;
    seen.add(name);
    const state = definition.States[name];
    if (!state) continue;
    const next = [
      state.Next,
      state.Default,
      ...(state.Choices ?? []).map((c) => c.Next),
      ...(state.Catch ?? []).map((c) => c.Next),
    ];
    for (const n of next) if (n !== undefined) queue.push(n);
  }
  return seen;
}
