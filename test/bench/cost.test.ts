import { costPerDeployment, countTransitions, loopingStates, readAsl, type AslMachine } from '../../bench/cost';
import { costTable, lambdaUses } from '../../bench/cost-table';
import { planFor } from '../../bench/run';
import { summarize } from '../../bench/stats';

describe('bench: cost per deployment from the ASL', () => {
  const machine = readAsl();

  test('counts 9 + 4 per fetched source (3 per reused one) + 1 per hook transitions, plus one per lease wait and one for an approval', () => {
    const base = countTransitions(machine, { mapItems: { FetchSources: 2, PostDeployHooks: 1 } });
    const waited = countTransitions(machine, {
      mapItems: { FetchSources: 2, PostDeployHooks: 1 },
      retries: { Deploy: 10 },
    });
    const reused = countTransitions(machine, {
      mapItems: { FetchSources: 2, PostDeployHooks: 1 },
      choices: { SnapshotStored: 'ReuseSnapshot' },
    });

    const approved = countTransitions(machine, {
      mapItems: { FetchSources: 2, PostDeployHooks: 1 },
      choices: { ApprovalRequired: 'AwaitApproval' },
    });

    expect(base.total).toBe(18);
    expect(approved.total).toBe(19);
    expect(approved.byState).toMatchObject({ ApprovalRequired: 1, AwaitApproval: 1, Deploy: 1 });
    expect(base.byState).toMatchObject({
      ResolveSource: 2,
      SnapshotStored: 2,
      FetchSource: 2,
      DescribeSnapshot: 2,
      RunHook: 1,
      Deploy: 1,
    });
    expect(base.byState).not.toHaveProperty('ReuseSnapshot');
    expect(waited.total).toBe(28);
    expect(reused.total).toBe(16);
    // A rollback: no fetch, no combine, no build.
    const rollback = countTransitions(machine, {
      mapItems: { FetchSources: 2, PostDeployHooks: 1 },
      choices: { RedeployOrBuild: 'RedeployEarlierBuild' },
    });
    expect(rollback.total).toBe(8);
    expect(rollback.byState).not.toHaveProperty('FetchSources');
    expect(rollback.byState).not.toHaveProperty('BuildTemplates');
    expect(reused.byState).toMatchObject({ ResolveSource: 2, SnapshotStored: 2, ReuseSnapshot: 2 });
    expect(reused.byState).not.toHaveProperty('FetchSource');
  });

  test('a Choice must be told a branch it has', () => {
    expect(() =>
      countTransitions(machine, {
        mapItems: { FetchSources: 1, PostDeployHooks: 0 },
        choices: { SnapshotStored: 'Deploy' },
      }),
    ).toThrow(
      'Choice SnapshotStored: say which of ReuseSnapshot, FetchSourceThroughConnection, FetchSource it takes (choices.SnapshotStored), got Deploy',
    );
  });

  test('the definition has no loop, so transitions do not grow with build duration', () => {
    expect(loopingStates(machine)).toEqual([]);
  });

  test('fails on a polling loop', () => {
    const polling: AslMachine = {
      StartAt: 'Check',
      States: {
        Check: { Type: 'Task', Resource: 'x', Next: 'Done?' },
        'Done?': { Type: 'Choice', Choices: [{ Next: 'Wait' }], Default: 'End' },
        Wait: { Type: 'Wait', Next: 'Check' },
        End: { Type: 'Succeed' },
      },
    };

    expect(loopingStates(polling).sort()).toEqual(['Check', 'Done?', 'Wait']);
  });

  test('rounds CodeBuild minutes and CodePipeline actions up to whole minutes', () => {
    const cost = costPerDeployment({
      transitions: 1000,
      lambdas: [{ name: 'f', memoryMb: 1024, invocations: 2, durationMs: 500, source: 'test' }],
      buildMinutes: [0.2, 1.5],
      pipelineActions: [
        { name: 'a', minutes: 0.1 },
        { name: 'b', minutes: 2.01 },
      ],
    });

    expect(cost.stepFunctions).toBeCloseTo(0.025);
    expect(cost.lambdaGbSeconds).toBeCloseTo(1);
    expect(cost.codeBuildMinutes).toBe(3);
    expect(cost.codePipelineActionMinutes).toBe(4);
  });

  test('the table keeps Step Functions flat while CodePipeline grows with build minutes', () => {
    const table = costTable({
      lambdaMs: { ValidateInput: 5, CombineConfigAndCode: 50, RecordDeployment: 50, Deploy: 40 },
    });

    const [short, typical, waiting, reused, long, approved] = table.rows;
    expect(short!.transitions).toBe(typical!.transitions);
    expect(long!.cost.stepFunctions).toBe(short!.cost.stepFunctions);
    expect(waiting!.transitions).toBe(typical!.transitions + 10);
    expect(long!.cost.codePipeline).toBeGreaterThan(short!.cost.codePipeline);
    // Same commits again: one transition fewer per source, and no fetch build minutes.
    expect(reused!.transitions).toBe(typical!.transitions - 2);
    expect(reused!.cost.codeBuildMinutes).toBe(typical!.cost.codeBuildMinutes - 2);
    expect(reused!.cost.codePipeline).toBe(typical!.cost.codePipeline);
    expect(table.text).toContain('| typical: build 5 min, deploy 10 min |');
    // An approval costs one transition and two short Lambda calls, however long the wait.
    expect(approved!.transitions).toBe(typical!.transitions + 1);
    expect(approved!.cost.lambdaGbSeconds).toBeGreaterThan(typical!.cost.lambdaGbSeconds);
    expect(approved!.cost.codeBuildMinutes).toBe(typical!.cost.codeBuildMinutes);
    expect(table.lambdas.map((l) => l.name)).not.toContain('await-approval');
  });

  test('a rollback row: the transitions of the redeploy path, only the deploy build, no fetch or combine Lambda', () => {
    const measured = { lambdaMs: { ValidateInput: 5, CombineConfigAndCode: 50, RecordDeployment: 50, Deploy: 40 } };
    const table = costTable(measured);
    const rollback = table.rows.find((r) => r.scenario.rollback === true)!;
    const typical = table.rows[1]!;

    // ValidateInput, RedeployOrBuild, RedeployEarlierBuild, ApprovalRequired, Deploy, PostDeployHooks, RunHook, RecordDeployment.
    expect(rollback.transitions).toBe(8);
    expect(rollback.cost.codeBuildMinutes).toBe(typical.scenario.deployMinutes);
    // CodePipeline's stage rollback runs the deploy stage again: deploy, the hook, the record.
    expect(rollback.cost.codePipelineActionMinutes).toBe(typical.scenario.deployMinutes + 2);
    expect(rollback.cost.orchestration).toBeLessThan(typical.cost.orchestration);
    const called = lambdaUses(readAsl(), rollback.scenario, measured).map((l) => [l.name, l.invocations]);
    expect(called).toEqual([
      ['validate-input', 1],
      ['deploy', 1],
      ['run-hook', 1],
      ['record-deployment', 1],
      ['deploy-complete', 1],
      ['notify', 4],
    ]);
    expect(table.text).toContain('| typical rollback (deploy 10 min, no fetch or build) | 8 |');
  });
});

describe('bench: plan and statistics', () => {
  test('quick mode is smaller than the full run', () => {
    const quick = planFor(['--quick']);
    const full = planFor([]);

    expect(full.fetch.shape.files).toBe(20_000);
    expect(full.scale.executions).toBe(20);
    expect(full.overhead.runs).toBeGreaterThanOrEqual(5);
    expect(quick.fetch.shape.files).toBeLessThan(full.fetch.shape.files);
  });

  test('fails on a bad --runs', () => {
    expect(() => planFor(['--runs', '0'])).toThrow('--runs must be a positive integer');
  });

  test('takes --entries for the memory-per-entry figure, and refuses an unknown option or section', () => {
    expect(planFor(['--entries', '1000000']).memoryEntries.entries).toBe(1_000_000);
    expect(planFor([]).memoryEntries.entries).toBe(100_000);
    expect(() => planFor(['--entries', '1e3x'])).toThrow('--entries must be a positive integer, got 1e3x');
    expect(() => planFor(['--only', 'fetch'])).toThrow('--only must be one of entries, got fetch');
    expect(() => planFor(['--qiuck'])).toThrow("Unknown option '--qiuck'");
  });

  test('median, min and max', () => {
    expect(summarize([3, 1, 2])).toEqual({ median: 2, min: 1, max: 3, runs: 3 });
    expect(summarize([4, 1, 2, 3]).median).toBe(2.5);
  });
});
