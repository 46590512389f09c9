import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { CODEBUILD_SYNC_RULE } from '../../infra/deploy-state-machine';
import { definePipelineApp } from '../../infra/pipeline-app';
import { allStates, type StateMachineDefinition } from '../../workflows/definition';
import { EVERY_PROVIDER_CONNECTION, EVERY_PROVIDER_LEGACY_CONNECTION, everyProviderConfig } from './fixtures';

/**
 * Walks the synthesized pipeline stack: every service integration a Task of the definition uses
 * has the IAM actions its AWS documentation lists, on the resource it names, and the state
 * machine's role has nothing else; the fetch project's role has what each configured source
 * needs, and nothing else. A new integration in the ASL without an entry here fails the test.
 */

type Resources = Record<string, { Type: string; Properties: Record<string, unknown> }>;
interface Statement {
  Action: string | string[];
  Resource: unknown;
  Condition?: unknown;
}

const { pipeline } = definePipelineApp(new App({ context: { 'aws:cdk:bundling-stacks': [] } }), everyProviderConfig());
const resources = Template.fromStack(pipeline).toJSON().Resources as Resources;
const stateMachine = Object.values(resources).find((r) => r.Type === 'AWS::StepFunctions::StateMachine')!.Properties;
const definition = JSON.parse(stateMachine.DefinitionString as string) as StateMachineDefinition;
const substitutions = stateMachine.DefinitionSubstitutions as Record<string, unknown>;

const roleIdOf = (arn: unknown) => (arn as { 'Fn::GetAtt': [string, string] })['Fn::GetAtt'][0];
const statementsOf = (roleId: string): Statement[] =>
  Object.values(resources)
    .filter(
      (r) => r.Type === 'AWS::IAM::Policy' && JSON.stringify(r.Properties.Roles) === JSON.stringify([{ Ref: roleId }]),
    )
    .flatMap((r) => (r.Properties.PolicyDocument as { Statement: Statement[] }).Statement);
/** One entry per (action, resource) an identity policy allows. */
const grantsOf = (statements: Statement[]) =>
  statements.flatMap((s) =>
    [s.Action].flat().flatMap((action) => [s.Resource].flat().map((resource) => JSON.stringify([action, resource]))),
  );
/** The resource a `${Placeholder}` parameter of a Task resolves to in the template. */
const targetOf = (parameter: unknown) => substitutions[/^\$\{(\w+)\}$/.exec(String(parameter))![1]!];

// The stack deploys to the config's tooling account (999999999999), in the region it is deployed to.
const syncRuleArn = {
  'Fn::Join': [
    '',
    [
      'arn:',
      { Ref: 'AWS::Partition' },
      ':events:',
      { Ref: 'AWS::Region' },
      `:999999999999:rule/${CODEBUILD_SYNC_RULE}`,
    ],
  ],
};

/**
 * What each integration needs, from the Step Functions developer guide's IAM policies for
 * integrated services: Lambda invoke (any pattern) needs lambda:InvokeFunction on the function;
 * CodeBuild StartBuild .sync needs StartBuild, StopBuild and BatchGetBuilds on the project, and
 * events:PutTargets/PutRule/DescribeRule on the managed rule it creates.
 */
const INTEGRATIONS: Record<string, (parameters: Record<string, unknown>) => unknown[]> = {
  'arn:aws:states:::lambda:invoke': (p) => [['lambda:InvokeFunction', targetOf(p.FunctionName)]],
  'arn:aws:states:::lambda:invoke.waitForTaskToken': (p) => [['lambda:InvokeFunction', targetOf(p.FunctionName)]],
  'arn:aws:states:::codebuild:startBuild.sync': (p) => {
    const project = { 'Fn::GetAtt': [(targetOf(p.ProjectName) as { Ref: string }).Ref, 'Arn'] };
    return [
      ...['codebuild:StartBuild', 'codebuild:StopBuild', 'codebuild:BatchGetBuilds'].map((action) => [action, project]),
      ...['events:PutTargets', 'events:PutRule', 'events:DescribeRule'].map((action) => [action, syncRuleArn]),
    ];
  },
};

/** Added by the StateMachine construct for logging ALL and X-Ray: these take no resource ("*"). */
const LOGGING_AND_TRACING = [
  'logs:CreateLogDelivery',
  'logs:GetLogDelivery',
  'logs:UpdateLogDelivery',
  'logs:DeleteLogDelivery',
  'logs:ListLogDeliveries',
  'logs:PutResourcePolicy',
  'logs:DescribeResourcePolicies',
  'logs:DescribeLogGroups',
  'xray:PutTraceSegments',
  'xray:PutTelemetryRecords',
  'xray:GetSamplingRules',
  'xray:GetSamplingTargets',
].map((action) => JSON.stringify([action, '*']));

describe('state machine role: each integration of the definition has exactly its documented IAM', () => {
  const tasks = allStates(definition).filter(({ state }) => state.Type === 'Task');
  const roleId = roleIdOf(stateMachine.RoleArn);
  const granted = new Set(grantsOf(statementsOf(roleId)));

  test.each(tasks.map(({ name, state }) => [name, state.Resource!, state.Parameters as Record<string, unknown>]))(
    '%s (%s)',
    (_name, resource, parameters) => {
      const expected = INTEGRATIONS[resource];
      if (expected === undefined) {
        throw new Error(
          `no IAM expectation for the integration ${resource}: grant what its documentation lists in infra/deploy-state-machine.ts and add it here`,
        );
      }
      for (const grant of expected(parameters)) expect([...granted]).toContain(JSON.stringify(grant));
    },
  );

  test('nothing beyond: every grant is one of an integration, a qualified function version, or logging and tracing', () => {
    const needed = new Set(
      tasks
        .flatMap(({ state }) => INTEGRATIONS[state.Resource!]?.(state.Parameters as Record<string, unknown>) ?? [])
        .map((g) => JSON.stringify(g)),
    );
    const qualified = [...needed]
      .map((g) => JSON.parse(g) as [string, unknown])
      .filter(([action]) => action === 'lambda:InvokeFunction')
      .map(([action, arn]) => JSON.stringify([action, { 'Fn::Join': ['', [arn, ':*']] }]));
    const allowed = new Set([...needed, ...qualified, ...LOGGING_AND_TRACING]);
    expect([...granted].filter((g) => !allowed.has(g))).toEqual([]);
  });
});

describe('fetch project role: each source type has what it needs to be cloned, and nothing beyond', () => {
  const fetchRoleId = Object.keys(resources).find(
    (id) => resources[id]!.Type === 'AWS::IAM::Role' && id.startsWith('ProjectsFetchRole'),
  )!;
  const sourceGrants = grantsOf(statementsOf(fetchRoleId)).filter((g) => !/^\["(s3|logs|codebuild):/.test(g));

  test('CodeCommit: GitPull on each repository; connections: token and describe, with the prefix of their ARN', () => {
    const codecommit = (region: string, name: string) => ({
      'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, `:codecommit:${region}:999999999999:${name}`]],
    });
    expect(sourceGrants.sort()).toEqual(
      [
        ['codecommit:GitPull', codecommit('eu-west-1', 'shop-settings')],
        ['codecommit:GitPull', codecommit('us-east-1', 'shop-us')],
        ['codeconnections:GetConnectionToken', EVERY_PROVIDER_CONNECTION],
        ['codeconnections:GetConnection', EVERY_PROVIDER_CONNECTION],
        ['codestar-connections:GetConnectionToken', EVERY_PROVIDER_LEGACY_CONNECTION],
        ['codestar-connections:GetConnection', EVERY_PROVIDER_LEGACY_CONNECTION],
      ]
        .map((g) => JSON.stringify(g))
        .sort(),
    );
  });
});
