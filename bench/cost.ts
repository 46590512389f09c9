import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Cost per deployment on AWS, computed from the state machine definition itself: which states
 * run, how often, and which Lambdas and builds they call. Pure functions; bench/run.ts feeds in
 * durations measured on the local runtime.
 */

/** Published on-demand prices (us-east-1), with where they come from: BENCHMARKS.md cites them. */
export const PRICES = {
  /** Step Functions Standard: $0.025 per 1,000 state transitions (aws.amazon.com/step-functions/pricing). */
  stepFunctionsPerTransition: 0.025 / 1000,
  /** Lambda arm64: $0.0000133334 per GB-second (aws.amazon.com/lambda/pricing). */
  lambdaArmPerGbSecond: 0.0000133334,
  /** Lambda: $0.20 per 1M requests (aws.amazon.com/lambda/pricing). */
  lambdaPerRequest: 0.2 / 1_000_000,
  /** CodeBuild on-demand general1.small Linux: $0.005 per build minute (aws.amazon.com/codebuild/pricing). */
  codeBuildSmallPerMinute: 0.005,
  /** CodePipeline V2: $0.002 per action execution minute, each action rounded up to the minute (aws.amazon.com/codepipeline/pricing). */
  codePipelineV2PerActionMinute: 0.002,
} as const;

interface AslState {
  readonly Type: string;
  readonly Next?: string;
  readonly End?: boolean;
  readonly Resource?: string;
  readonly Retry?: ReadonlyArray<{ readonly ErrorEquals: ReadonlyArray<string> }>;
  readonly Catch?: ReadonlyArray<{ readonly Next: string }>;
  readonly Choices?: ReadonlyArray<{ readonly Next: string }>;
  readonly Default?: string;
  readonly ItemProcessor?: AslMachine;
  readonly Iterator?: AslMachine;
  readonly Branches?: ReadonlyArray<AslMachine>;
  readonly Parameters?: Record<string, unknown>;
}

export interface AslMachine {
  readonly StartAt: string;
  readonly States: Readonly<Record<string, AslState>>;
}

export function readAsl(path = join(__dirname, '..', 'workflows', 'deploy-pipeline.asl.json')): AslMachine {
  return JSON.parse(readFileSync(path, 'utf8')) as AslMachine;
}

/**
 * Where a state goes when it succeeds. A Catch is left out: it is taken on a failure, not while
 * waiting, so a cycle through one (AwaitApproval's timeout → ApprovalTimedOut → AwaitApproval,
 * which only a redrive follows) grows with failures, not with time.
 */
function successors(state: AslState): string[] {
  return [
    ...(state.Next ? [state.Next] : []),
    ...(state.Choices ?? []).map((c) => c.Next),
    ...(state.Default ? [state.Default] : []),
  ];
}

/**
 * States that can be entered again in the same execution (a cycle: Choice → Wait → … → Choice, the
 * shape of a polling loop). With none, the number of transitions cannot grow with a build's duration.
 */
export function loopingStates(machine: AslMachine): string[] {
  const looping = new Set<string>();
  const visit = (m: AslMachine): void => {
    for (const name of Object.keys(m.States)) {
      const seen = new Set<string>();
      const stack = successors(m.States[name]!);
      while (stack.length > 0) {
        const next = stack.pop()!;
        if (next === name) looping.add(name);
        if (seen.has(next) || !m.States[next]) continue;
        seen.add(next);
        stack.push(...successors(m.States[next]!));
      }
      const s = m.States[name]!;
      for (const inner of [s.ItemProcessor, s.Iterator, ...(s.Branches ?? [])]) if (inner) visit(inner);
    }
  };
  visit(machine);
  return [...looping];
}

export interface RunShape {
  /** Items of each Map state by name (FetchSources: the number of sources; PostDeployHooks: hooks). */
  readonly mapItems: Readonly<Record<string, number>>;
  /** Extra attempts of a state (its Retry), e.g. Deploy's DeployLeaseBusyError waits. */
  readonly retries?: Readonly<Record<string, number>>;
  /** The state a Choice goes to, by Choice name (SnapshotStored → ReuseSnapshot); its Default otherwise. */
  readonly choices?: Readonly<Record<string, string>>;
}

export interface TransitionCount {
  readonly total: number;
  /** Transitions per state name (Map iterations included under their inner states). */
  readonly byState: Readonly<Record<string, number>>;
}

/**
 * State transitions of one successful execution: every state entered counts one, a Map's inner
 * states once per item, and each retry one more (Step Functions bills retries as transitions).
 * Follows the success path (Next) from StartAt, a Choice to `shape.choices` or its Default;
 * Catch branches are not taken.
 */
export function countTransitions(machine: AslMachine, shape: RunShape): TransitionCount {
  const byState: Record<string, number> = {};
  const walk = (m: AslMachine, times: number): void => {
    let name: string | undefined = m.StartAt;
    const seen = new Set<string>();
    while (name !== undefined) {
      if (seen.has(name))
        throw new Error(`state ${name} is entered twice on the success path: a loop; transitions would grow with time`);
      seen.add(name);
      const state: AslState | undefined = m.States[name];
      if (!state) throw new Error(`state ${name} is not defined`);
      const attempts = 1 + (shape.retries?.[name] ?? 0);
      byState[name] = (byState[name] ?? 0) + times * attempts;
      const inner = state.ItemProcessor ?? state.Iterator;
      if (state.Type === 'Map' && inner) {
        const items = shape.mapItems[name];
        if (items === undefined) throw new Error(`Map state ${name}: say how many items it has (mapItems.${name})`);
        walk(inner, times * items);
      }
      for (const branch of state.Branches ?? []) walk(branch, times);
      name = state.End === true ? undefined : state.Type === 'Choice' ? choiceOf(name, state, shape) : state.Next;
    }
  };
  walk(machine, 1);
  return { total: Object.values(byState).reduce((a, b) => a + b, 0), byState };
}

function choiceOf(name: string, state: AslState, shape: RunShape): string {
  const chosen = shape.choices?.[name] ?? state.Default;
  const possible = [...(state.Choices ?? []).map((c) => c.Next), ...(state.Default ? [state.Default] : [])];
  if (chosen === undefined || !possible.includes(chosen)) {
    throw new Error(
      `Choice ${name}: say which of ${possible.join(', ')} it takes (choices.${name}), got ${String(chosen)}`,
    );
  }
  return chosen;
}

/** Lambda-backed states by state name → the function placeholder they call (`${DeployFunctionArn}` → DeployFunctionArn). */
export function lambdaStates(machine: AslMachine): Record<string, string> {
  const out: Record<string, string> = {};
  const visit = (m: AslMachine): void => {
    for (const [name, s] of Object.entries(m.States)) {
      if (s.Type === 'Task' && s.Resource?.startsWith('arn:aws:states:::lambda:invoke')) {
        const fn = String(s.Parameters?.FunctionName ?? '');
        out[name] = /^\$\{(\w+)\}$/.exec(fn)?.[1] ?? fn;
      }
      for (const inner of [s.ItemProcessor, s.Iterator, ...(s.Branches ?? [])]) if (inner) visit(inner);
    }
  };
  visit(machine);
  return out;
}

export interface LambdaUse {
  readonly name: string;
  readonly memoryMb: number;
  readonly invocations: number;
  /** Billed duration of one invocation (ms, rounded up to 1 ms as Lambda bills). */
  readonly durationMs: number;
  /** Where the duration comes from (measured locally, or an assumption). */
  readonly source: string;
}

export interface CostInputs {
  readonly transitions: number;
  readonly lambdas: ReadonlyArray<LambdaUse>;
  /** Duration of each CodeBuild build in minutes (fetches, build, deploy). */
  readonly buildMinutes: ReadonlyArray<number>;
  /** CodePipeline V2 actions for the same flow, each with its duration in minutes. */
  readonly pipelineActions: ReadonlyArray<{ readonly name: string; readonly minutes: number }>;
}

export interface CostBreakdown {
  readonly stepFunctions: number;
  readonly lambdaRequests: number;
  readonly lambdaCompute: number;
  readonly lambdaGbSeconds: number;
  /** Orchestration on Step Functions: transitions + Lambda. */
  readonly orchestration: number;
  readonly codeBuild: number;
  readonly codeBuildMinutes: number;
  readonly codePipelineActionMinutes: number;
  /** Orchestration on CodePipeline V2 instead: its action-minutes. */
  readonly codePipeline: number;
}

export function costPerDeployment(inputs: CostInputs): CostBreakdown {
  const stepFunctions = inputs.transitions * PRICES.stepFunctionsPerTransition;
  const requests = inputs.lambdas.reduce((n, l) => n + l.invocations, 0);
  const lambdaGbSeconds = inputs.lambdas.reduce(
    (s, l) => s + l.invocations * (Math.ceil(l.durationMs) / 1000) * (l.memoryMb / 1024),
    0,
  );
  const lambdaRequests = requests * PRICES.lambdaPerRequest;
  const lambdaCompute = lambdaGbSeconds * PRICES.lambdaArmPerGbSecond;
  // CodeBuild bills each build by the minute, rounded up.
  const codeBuildMinutes = inputs.buildMinutes.reduce((s, m) => s + Math.max(1, Math.ceil(m)), 0);
  const codePipelineActionMinutes = inputs.pipelineActions.reduce((s, a) => s + Math.max(1, Math.ceil(a.minutes)), 0);
  return {
    stepFunctions,
    lambdaRequests,
    lambdaCompute,
    lambdaGbSeconds,
    orchestration: stepFunctions + lambdaRequests + lambdaCompute,
    codeBuild: codeBuildMinutes * PRICES.codeBuildSmallPerMinute,
    codeBuildMinutes,
    codePipelineActionMinutes,
    codePipeline: codePipelineActionMinutes * PRICES.codePipelineV2PerActionMinute,
  };
}

/**
 * Memory sizes of the task Lambdas as infra/ declares them: `memorySize: N` next to `task: '<name>'`,
 * else TaskFunction's default. Read from the source text, so the table follows infra/ as it changes.
 */
export function lambdaMemoryFromInfra(infraDir = join(__dirname, '..', 'infra')): {
  sizes: Record<string, number>;
  defaultMb: number;
} {
  const read = (file: string): string => {
    try {
      return readFileSync(join(infraDir, file), 'utf8');
    } catch {
      return '';
    }
  };
  const defaultMb = Number(/memorySize:\s*props\.memorySize\s*\?\?\s*(\d+)/.exec(read('task-function.ts'))?.[1] ?? 128);
  const sizes: Record<string, number> = {};
  for (const file of ['pipeline-stack.ts', 'deploy-function.ts', 'deploy-completion.ts', 'notifications.ts']) {
    const text = read(file);
    for (const m of text.matchAll(/task:\s*'([a-z-]+)'([\s\S]*?)\}\);/g)) {
      const size = /memorySize:\s*(\d+)/.exec(m[2] ?? '')?.[1];
      sizes[m[1]!] = size === undefined ? defaultMb : Number(size);
    }
  }
  return { sizes, defaultMb };
}

export function dollars(value: number): string {
  if (value === 0) return '$0';
  if (value < 0.01) return `$${value.toFixed(6)}`;
  return `$${value.toFixed(4)}`;
}
