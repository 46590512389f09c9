import {
  costPerDeployment,
  countTransitions,
  dollars,
  lambdaMemoryFromInfra,
  lambdaStates,
  loopingStates,
  PRICES,
  readAsl,
  type AslMachine,
  type LambdaUse,
  type RunShape,
} from './cost';

/**
 * The cost table of BENCHMARKS.md: Step Functions transitions counted from the ASL, Lambda
 * GB-seconds from infra/'s memory sizes and durations measured locally (bench/overhead.ts),
 * CodeBuild minutes, and the same flow as CodePipeline V2 actions.
 */

export interface Scenario {
  readonly name: string;
  readonly sources: number;
  readonly hooks: number;
  /** Deploy retries after DeployLeaseBusyError (another deploy of the environment running). */
  readonly leaseWaits: number;
  readonly fetchMinutes: number;
  readonly buildMinutes: number;
  readonly deployMinutes: number;
  /** The same commits as an earlier execution: ResolveSource finds the snapshots, no fetch build runs. */
  readonly snapshotsReused?: boolean;
  /** The environment requires approval: AwaitApproval waits (for any time: a Standard workflow bills transitions, not time). */
  readonly approval?: boolean;
  /** `stepdeploy rollback`: RedeployOrBuild → RedeployEarlierBuild; no fetch, combine or build, only Deploy onwards. */
  readonly rollback?: boolean;
}

export interface MeasuredDurations {
  /** Median ms of the Lambda-backed states measured locally (ValidateInput, CombineConfigAndCode, RecordDeployment, Deploy). */
  readonly lambdaMs: Readonly<Record<string, number>>;
}

/** Functions called outside the state machine, by EventBridge rules; their duration is assumed, not measured. */
// resolve-source: one HTTPS ls-refs round trip to the git host and a HeadObject.
const ASSUMED_MS = {
  'resolve-source': 300,
  'run-hook': 500,
  'deploy-complete': 100,
  notify: 100,
  'await-approval': 200,
  'decide-approval': 200,
} as const;

export interface CostTable {
  readonly transitions: number;
  readonly loops: ReadonlyArray<string>;
  readonly rows: ReadonlyArray<{ scenario: Scenario; transitions: number; cost: ReturnType<typeof costPerDeployment> }>;
  readonly lambdas: ReadonlyArray<LambdaUse>;
  readonly headline: { scenario: string; orchestration: string; codePipeline: string; codeBuild: string };
  readonly text: string;
}

function kebab(placeholder: string): string {
  return placeholder
    .replace(/FunctionArn$/, '')
    .replace(/([a-z])([A-Z])/g, '$1-$2')
    .toLowerCase();
}

/** The path a scenario takes through the definition: Map items, Deploy's lease retries, each Choice's branch. */
function runShape(scenario: Scenario): RunShape {
  return {
    mapItems: { FetchSources: scenario.sources, PostDeployHooks: scenario.hooks },
    retries: { Deploy: scenario.leaseWaits },
    choices: {
      RedeployOrBuild: scenario.rollback === true ? 'RedeployEarlierBuild' : 'FetchSources',
      SnapshotStored: scenario.snapshotsReused === true ? 'ReuseSnapshot' : 'FetchSource',
      ApprovalRequired: scenario.approval === true ? 'AwaitApproval' : 'Deploy',
    },
  };
}

export function lambdaUses(machine: AslMachine, scenario: Scenario, measured: MeasuredDurations): LambdaUse[] {
  const { sizes, defaultMb } = lambdaMemoryFromInfra();
  const memory = (task: string): number => sizes[task] ?? defaultMb;
  // One invocation per time a Lambda state is entered on the scenario's path (a retry enters again):
  // a state off the path (ApprovalTimedOut; the build states in a rollback) is not called.
  const entered = countTransitions(machine, runShape(scenario)).byState;
  const uses: LambdaUse[] = Object.entries(lambdaStates(machine)).map(([state, placeholder]) => {
    const task = kebab(placeholder);
    const measuredMs = measured.lambdaMs[state];
    const assumed = (ASSUMED_MS as Record<string, number>)[task];
    return {
      name: task,
      memoryMb: memory(task),
      invocations: entered[state] ?? 0,
      durationMs: Math.max(1, Math.ceil(measuredMs ?? assumed ?? 100)),
      source: measuredMs !== undefined ? `measured locally (${state})` : `assumed ${assumed ?? 100} ms`,
    };
  });
  // EventBridge targets: deploy-complete once per deploy build; notify for 2 execution events and 2 per build.
  if (scenario.approval === true) {
    // The decision: one call of the approval function's URL.
    uses.push({
      name: 'decide-approval',
      memoryMb: memory('decide-approval'),
      invocations: 1,
      durationMs: ASSUMED_MS['decide-approval'],
      source: `assumed ${ASSUMED_MS['decide-approval']} ms`,
    });
  }
  const builds = fetchBuilds(scenario) + (scenario.rollback === true ? 1 : 2);
  uses.push({
    name: 'deploy-complete',
    memoryMb: memory('deploy-complete'),
    invocations: 1,
    durationMs: ASSUMED_MS['deploy-complete'],
    source: `assumed ${ASSUMED_MS['deploy-complete']} ms`,
  });
  uses.push({
    name: 'notify',
    memoryMb: memory('notify'),
    invocations: 2 + 2 * builds,
    durationMs: ASSUMED_MS.notify,
    source: `assumed ${ASSUMED_MS.notify} ms`,
  });
  return uses.filter((use) => use.invocations > 0);
}

function fetchBuilds(scenario: Scenario): number {
  return scenario.snapshotsReused === true || scenario.rollback === true ? 0 : scenario.sources;
}

export const SCENARIOS: ReadonlyArray<Scenario> = [
  {
    name: 'short builds (1 min each), no waiting',
    sources: 2,
    hooks: 1,
    leaseWaits: 0,
    fetchMinutes: 1,
    buildMinutes: 1,
    deployMinutes: 1,
  },
  {
    name: 'typical: build 5 min, deploy 10 min',
    sources: 2,
    hooks: 1,
    leaseWaits: 0,
    fetchMinutes: 1,
    buildMinutes: 5,
    deployMinutes: 10,
  },
  {
    name: 'typical, waiting behind another deploy (10 lease retries)',
    sources: 2,
    hooks: 1,
    leaseWaits: 10,
    fetchMinutes: 1,
    buildMinutes: 5,
    deployMinutes: 10,
  },
  {
    name: 'typical, same commits again (snapshots reused, no fetch build)',
    sources: 2,
    hooks: 1,
    leaseWaits: 0,
    fetchMinutes: 1,
    buildMinutes: 5,
    deployMinutes: 10,
    snapshotsReused: true,
  },
  {
    name: 'long: build 30 min, deploy 60 min',
    sources: 2,
    hooks: 1,
    leaseWaits: 0,
    fetchMinutes: 1,
    buildMinutes: 30,
    deployMinutes: 60,
  },
  {
    // However long it waits: AwaitApproval is one transition and two short Lambda calls.
    name: 'typical, approved (any wait)',
    sources: 2,
    hooks: 1,
    leaseWaits: 0,
    fetchMinutes: 1,
    buildMinutes: 5,
    deployMinutes: 10,
    approval: true,
  },
  {
    // CodePipeline V2's stage rollback runs the stage's actions again on the earlier artifacts: deploy, hook, record.
    name: 'typical rollback (deploy 10 min, no fetch or build)',
    sources: 2,
    hooks: 1,
    leaseWaits: 0,
    fetchMinutes: 1,
    buildMinutes: 5,
    deployMinutes: 10,
    rollback: true,
  },
];

export function costTable(
  measured: MeasuredDurations,
  machine: AslMachine = readAsl(),
  scenarios: ReadonlyArray<Scenario> = SCENARIOS,
): CostTable {
  const rows = scenarios.map((scenario) => {
    const transitions = countTransitions(machine, runShape(scenario)).total;
    const rollback = scenario.rollback === true;
    const cost = costPerDeployment({
      transitions,
      lambdas: lambdaUses(machine, scenario, measured),
      buildMinutes: [
        ...Array.from({ length: fetchBuilds(scenario) }, () => scenario.fetchMinutes),
        ...(rollback ? [] : [scenario.buildMinutes]),
        scenario.deployMinutes,
      ],
      // CodePipeline runs every source action on every execution: it has no commit-level reuse.
      pipelineActions: [
        ...(rollback
          ? []
          : [
              ...Array.from({ length: scenario.sources }, (_, i) => ({
                name: `Source ${i + 1}`,
                minutes: scenario.fetchMinutes,
              })),
              { name: 'Build (CodeBuild)', minutes: scenario.buildMinutes },
            ]),
        { name: 'Deploy (CodeBuild)', minutes: scenario.deployMinutes },
        ...Array.from({ length: scenario.hooks }, (_, i) => ({ name: `Hook ${i + 1} (Lambda invoke)`, minutes: 1 })),
        { name: 'Record (Lambda invoke)', minutes: 1 },
      ],
    });
    return { scenario, transitions, cost };
  });
  const base = countTransitions(machine, { mapItems: { FetchSources: 2, PostDeployHooks: 1 } }).total;
  const header =
    '| scenario (2 sources, 1 hook) | transitions | Step Functions | Lambda (GB-s) | SFN + Lambda | CodePipeline V2 (action-min) | CodeBuild (min) |';
  const lines = [
    header,
    '|---|---|---|---|---|---|---|',
    ...rows.map(
      ({ scenario, transitions, cost }) =>
        `| ${scenario.name} | ${transitions} | ${dollars(cost.stepFunctions)} | ${dollars(cost.lambdaRequests + cost.lambdaCompute)} (${cost.lambdaGbSeconds.toFixed(2)}) | **${dollars(cost.orchestration)}** | **${dollars(cost.codePipeline)}** (${cost.codePipelineActionMinutes}) | ${dollars(cost.codeBuild)} (${cost.codeBuildMinutes}) |`,
    ),
  ];
  const lambdas = lambdaUses(machine, SCENARIOS[1]!, measured);
  const typical = rows[1]!;
  return {
    transitions: base,
    loops: loopingStates(machine),
    rows,
    lambdas,
    headline: {
      scenario: typical.scenario.name,
      orchestration: dollars(typical.cost.orchestration),
      codePipeline: dollars(typical.cost.codePipeline),
      codeBuild: dollars(typical.cost.codeBuild),
    },
    text: [
      ...lines,
      `prices: Step Functions $${PRICES.stepFunctionsPerTransition * 1000}/1,000 transitions; Lambda arm64 $${PRICES.lambdaArmPerGbSecond}/GB-s + $0.20/1M requests; CodeBuild general1.small $${PRICES.codeBuildSmallPerMinute}/min; CodePipeline V2 $${PRICES.codePipelineV2PerActionMinute}/action-minute`,
    ].join('\n'),
  };
}
