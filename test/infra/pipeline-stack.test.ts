import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import aslValidator from 'asl-validator';
import { parse as parseYaml } from 'yaml';
import {
  BUILD_QUEUED_TIMEOUT,
  BUNDLED_CONFIG_PATH,
  DEPLOY_BUILD_TIMEOUT,
  DEPLOY_QUEUED_TIMEOUT,
  FETCH_QUEUED_TIMEOUT,
  LOCAL_REPOSITORY_WARNING,
} from '../../infra/deployment-pipeline';
import { BUILD_WAIT_MARGIN_SECONDS, callbackTimeoutSeconds, taskTimeoutSeconds } from '../../infra/definition-timeouts';
import { LEASE_MARGIN } from '../../infra/deploy-function';
import { PROJECT_ROOT } from '../../infra/task-function';
import {
  SUBSTITUTION_NAMES,
  TOP_LEVEL_STATES,
  allStates,
  readDefinitionText,
  substitute,
  type StateMachineDefinition,
} from '../../workflows/definition';
import { EXAMPLE_CONFIG_PATH, logicalIdOf, makeStack } from './fixtures';

type Resources = Record<string, { Type: string; Properties: Record<string, unknown> }>;

// One bundled synth of the example config, shared by the read-only assertions below.
let template: Template;
let resources: Resources;
let assemblyDir: string;
let stackAnnotations: Annotations;

beforeAll(() => {
  const { app, stack } = makeStack({ bundle: true });
  template = Template.fromStack(stack);
  resources = template.toJSON().Resources as Resources;
  stackAnnotations = Annotations.fromStack(stack);
  assemblyDir = app.synth().directory;
});

const timeouts = taskTimeoutSeconds(readDefinitionText());
const deployWaitSeconds = callbackTimeoutSeconds(readDefinitionText()).get('DeployFunctionArn')!;
const id = (type: string, prefix: string): string => logicalIdOf(resources, type, prefix);
const arnOf = (logicalId: string) => ({ 'Fn::GetAtt': [logicalId, 'Arn'] });
const bucketId = () => id('AWS::S3::Bucket', 'Artifacts8');

/** Every Allow statement of the policies attached to a role. */
function statementsOfRole(
  roleId: string,
): Array<{ Action: string | string[]; Resource: unknown; Condition?: unknown }> {
  return Object.values(resources)
    .filter(
      (r) => r.Type === 'AWS::IAM::Policy' && JSON.stringify(r.Properties.Roles) === JSON.stringify([{ Ref: roleId }]),
    )
    .flatMap((r) => (r.Properties.PolicyDocument as { Statement: [] }).Statement);
}
const actionsOf = (s: { Action: string | string[] }) => [s.Action].flat();
/** The staged bundle of a function in the cloud assembly: `asset.<hash>`, the hash being its S3 key. */
const bundleDirOf = (fn: Resources[string]) =>
  join(assemblyDir, `asset.${(fn.Properties.Code as { S3Key: string }).S3Key.replace(/\.zip$/, '')}`);
const objectArn = (prefix: string) => ({ 'Fn::Join': ['', [arnOf(bucketId()), `/${prefix}*`]] });
const keyArn = (pattern: string) => ({ 'Fn::Join': ['', [arnOf(bucketId()), `/${pattern}`]] });
const deployProjectArn = () => arnOf(id('AWS::CodeBuild::Project', 'ProjectsDeploy'));
/** The S3 statements of a role: actions, resource, condition. */
const s3StatementsOfRole = (roleId: string) =>
  statementsOfRole(roleId)
    .filter((s) => actionsOf(s).some((a) => a.startsWith('s3:')))
    .map((s) => ({ actions: actionsOf(s), resource: s.Resource, condition: s.Condition }));
/** The version string a pinned SDK client compiles into its own code (its user agent). */
function bundledSdkVersion(client: string): string {
  const code = readFileSync(join(PROJECT_ROOT, 'node_modules', '@aws-sdk', client, 'dist-cjs', 'index.js'), 'utf8');
  const version = /\bversion = "(\d+\.\d+\.\d+)"/.exec(code)?.[1];
  if (version === undefined) throw new Error(`no version string in @aws-sdk/${client}/dist-cjs/index.js`);
  return version;
}
const listDeployments = {
  actions: ['s3:ListBucket'],
  resource: undefined as unknown,
  condition: { StringLike: { 's3:prefix': ['deployments/*'] } },
};

describe('artifacts bucket', () => {
  test('is versioned, encrypted, private and logs access to the logs bucket', () => {
    template.hasResourceProperties('AWS::S3::Bucket', {
      VersioningConfiguration: { Status: 'Enabled' },
      BucketEncryption: {
        ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }],
      },
      PublicAccessBlockConfiguration: {
        BlockPublicAcls: true,
        BlockPublicPolicy: true,
        IgnorePublicAcls: true,
        RestrictPublicBuckets: true,
      },
      LoggingConfiguration: { DestinationBucketName: { Ref: id('AWS::S3::Bucket', 'ArtifactsAccessLogs') } },
    });
    template.resourceCountIs('AWS::S3::Bucket', 2);
  });

  test('expires artifacts/, the combine cache, sources/ and approval records, noncurrent versions, and keeps deployments/', () => {
    const rules = (
      resources[bucketId()]!.Properties.LifecycleConfiguration as { Rules: Array<Record<string, unknown>> }
    ).Rules;
    expect(rules).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ Prefix: 'artifacts/', ExpirationInDays: 90, Status: 'Enabled' }),
        expect.objectContaining({ Prefix: 'sources/', ExpirationInDays: 180, Status: 'Enabled' }),
        // The cache index lives as long as the artifacts it points to.
        expect.objectContaining({ Prefix: 'combined/', ExpirationInDays: 90, Status: 'Enabled' }),
        // Past the 14 days a timed-out approval can be redriven (the redrive reads its record).
        expect.objectContaining({ Prefix: 'approvals/', ExpirationInDays: 30, Status: 'Enabled' }),
        expect.objectContaining({ NoncurrentVersionExpiration: { NoncurrentDays: 30 }, Status: 'Enabled' }),
      ]),
    );
    const expiring = rules.filter((r) => r.ExpirationInDays !== undefined);
    expect(expiring.map((r) => r.Prefix).sort()).toEqual(['approvals/', 'artifacts/', 'combined/', 'sources/']);
  });

  test('denies requests without TLS', () => {
    template.hasResourceProperties('AWS::S3::BucketPolicy', {
      Bucket: { Ref: bucketId() },
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Effect: 'Deny', Action: 's3:*', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
        ]),
      },
    });
  });
});

describe('CodeBuild projects', () => {
  const buildspec = (path: string) => Match.serializedJson(parseYaml(readFileSync(join(PROJECT_ROOT, path), 'utf8')));

  test('fetch: no source of its own (CreateProject needs no GitHub credential), snapshot named by the buildspec under sources/, fetch-source.yml inline', () => {
    template.resourceCountIs('AWS::CodeBuild::Project', 3);
    template.hasResourceProperties('AWS::CodeBuild::Project', {
      Name: 'stepdeploy-example-fetch',
      Source: { Type: 'NO_SOURCE', BuildSpec: buildspec('buildspecs/fetch-source.yml') },
      Artifacts: {
        Type: 'S3',
        Location: { Ref: bucketId() },
        Path: 'sources',
        OverrideArtifactName: true,
        Packaging: 'ZIP',
        NamespaceType: 'NONE',
      },
      Environment: {
        Type: 'LINUX_CONTAINER',
        Image: Match.stringLikeRegexp('^aws/codebuild/standard:'),
        PrivilegedMode: false,
      },
      TimeoutInMinutes: 30,
      QueuedTimeoutInMinutes: FETCH_QUEUED_TIMEOUT.toMinutes(),
      LogsConfig: {
        CloudWatchLogs: { Status: 'ENABLED', GroupName: { Ref: id('AWS::Logs::LogGroup', 'ProjectsFetchLogs') } },
      },
    });
  });

  test('build and deploy: S3 sources, the config buildspecs inline; build timeout from the definition, deploy timeouts bounded for the lease', () => {
    template.hasResourceProperties('AWS::CodeBuild::Project', {
      Name: 'stepdeploy-example-build',
      Source: { Type: 'S3', BuildSpec: buildspec('buildspecs/build.yml') },
      Artifacts: { Type: 'S3', Location: { Ref: bucketId() } },
      TimeoutInMinutes:
        (timeouts.get('BuildProjectName')! - BUILD_WAIT_MARGIN_SECONDS) / 60 - BUILD_QUEUED_TIMEOUT.toMinutes(),
      QueuedTimeoutInMinutes: BUILD_QUEUED_TIMEOUT.toMinutes(),
      LogsConfig: { CloudWatchLogs: { Status: 'ENABLED' } },
    });
    template.hasResourceProperties('AWS::CodeBuild::Project', {
      Name: 'stepdeploy-example-deploy',
      Source: { Type: 'S3', BuildSpec: buildspec('buildspecs/deploy.yml') },
      Artifacts: { Type: 'NO_ARTIFACTS' },
      TimeoutInMinutes: DEPLOY_BUILD_TIMEOUT.toMinutes(),
      QueuedTimeoutInMinutes: DEPLOY_QUEUED_TIMEOUT.toMinutes(),
      LogsConfig: { CloudWatchLogs: { Status: 'ENABLED' } },
    });
  });

  test("every project's queue is bounded well below CodeBuild's 8-hour default", () => {
    const projects = Object.values(resources).filter((r) => r.Type === 'AWS::CodeBuild::Project');
    expect(projects).toHaveLength(3);
    for (const project of projects) {
      expect([project.Properties.Name, project.Properties.QueuedTimeoutInMinutes]).toEqual([
        project.Properties.Name,
        expect.any(Number),
      ]);
      expect(project.Properties.QueuedTimeoutInMinutes as number).toBeLessThanOrEqual(60);
    }
  });

  test('every Task that waits for a build waits longer than its queue and build together, so CodeBuild reports which one ran out', () => {
    const sm = resources[id('AWS::StepFunctions::StateMachine', 'StateMachine')]!.Properties;
    const substitutions = sm.DefinitionSubstitutions as Record<
      string,
      { Ref?: string; 'Fn::GetAtt'?: [string, string] }
    >;
    const definition = JSON.parse(sm.DefinitionString as string) as StateMachineDefinition;
    const projectOf = (logicalId: string) =>
      resources[logicalId]!.Properties as { TimeoutInMinutes: number; QueuedTimeoutInMinutes: number };
    const deployFunctionId = id('AWS::Lambda::Function', 'DeployFunction');
    const waits: string[] = [];
    for (const { name, state } of allStates(definition)) {
      if (state.Type !== 'Task') continue;
      const parameters = state.Parameters as Record<string, unknown>;
      const placeholder = /^\$\{(\w+)\}$/.exec(String(parameters.ProjectName ?? parameters.FunctionName))?.[1];
      const target = placeholder === undefined ? undefined : substitutions[placeholder];
      let projectId: string | undefined;
      if (state.Resource === 'arn:aws:states:::codebuild:startBuild.sync') projectId = target?.Ref;
      // Deploy waits by task token for the deploy build its function starts.
      else if (target?.['Fn::GetAtt']?.[0] === deployFunctionId)
        projectId = id('AWS::CodeBuild::Project', 'ProjectsDeploy');
      if (projectId === undefined) continue;
      const project = projectOf(projectId);
      const needed = (project.TimeoutInMinutes + project.QueuedTimeoutInMinutes) * 60 + BUILD_WAIT_MARGIN_SECONDS;
      expect([name, state.TimeoutSeconds! >= needed]).toEqual([name, true]);
      waits.push(name);
    }
    expect(waits.sort()).toEqual(['BuildTemplates', 'Deploy', 'FetchSource', 'FetchSourceThroughConnection']);
  });

  test('each role reaches only its prefixes of the bucket', () => {
    const s3Access = (roleId: string) =>
      statementsOfRole(roleId)
        .filter((s) => actionsOf(s).some((a) => a.startsWith('s3:')))
        .map((s) => ({ actions: actionsOf(s), resource: s.Resource }));
    const bucketLevel = { actions: ['s3:GetBucketAcl', 's3:GetBucketLocation'], resource: arnOf(bucketId()) };
    const read = (prefix: string) => ({
      actions: ['s3:GetObject', 's3:GetObjectVersion'],
      resource: objectArn(prefix),
    });
    const write = (prefix: string) => ({
      actions: ['s3:PutObject', 's3:AbortMultipartUpload'],
      resource: objectArn(prefix),
    });

    expect(s3Access(id('AWS::IAM::Role', 'ProjectsFetchRole'))).toEqual([bucketLevel, write('sources/')]);
    expect(s3Access(id('AWS::IAM::Role', 'ProjectsBuildRole'))).toEqual([
      bucketLevel,
      read('artifacts/'),
      write('artifacts/'),
    ]);
    // The deploy build's fence reads its environment's lease (buildspecs/deploy.yml), and nothing else under deployments/.
    expect(s3Access(id('AWS::IAM::Role', 'ProjectsDeployRole'))).toEqual([
      bucketLevel,
      read('artifacts/'),
      { actions: ['s3:GetObject'], resource: keyArn('deployments/*/lease.json') },
    ]);
  });

  test("only the deploy project may assume roles, and only the environments' deploy roles", () => {
    const assume = (roleId: string) => statementsOfRole(roleId).filter((s) => actionsOf(s).includes('sts:AssumeRole'));
    expect(assume(id('AWS::IAM::Role', 'ProjectsDeployRole'))).toEqual([
      expect.objectContaining({
        Resource: [
          'arn:aws:iam::111111111111:role/stepdeploy-deploy',
          'arn:aws:iam::222222222222:role/stepdeploy-deploy',
          'arn:aws:iam::333333333333:role/stepdeploy-deploy',
        ],
      }),
    ]);
    expect(assume(id('AWS::IAM::Role', 'ProjectsFetchRole'))).toEqual([]);
    expect(assume(id('AWS::IAM::Role', 'ProjectsBuildRole'))).toEqual([]);
  });
});

describe('task functions', () => {
  const functionIds = {
    ValidateInputFunctionArn: () => id('AWS::Lambda::Function', 'ValidateInput'),
    CombineSourcesFunctionArn: () => id('AWS::Lambda::Function', 'CombineSources'),
    RunHookFunctionArn: () => id('AWS::Lambda::Function', 'RunHook'),
    RecordDeploymentFunctionArn: () => id('AWS::Lambda::Function', 'RecordDeployment'),
  } as const;

  test('ten functions on Node.js 22 with X-Ray active and their own log groups', () => {
    template.resourceCountIs('AWS::Lambda::Function', 10);
    for (const fn of Object.values(resources).filter((r) => r.Type === 'AWS::Lambda::Function')) {
      expect(fn.Properties).toMatchObject({
        Runtime: 'nodejs22.x',
        Handler: 'index.handler',
        TracingConfig: { Mode: 'Active' },
        LoggingConfig: { LogGroup: { Ref: expect.any(String) } },
      });
    }
  });

  test('timeouts equal the TimeoutSeconds of the Task that invokes each function', () => {
    for (const [placeholder, fnId] of Object.entries(functionIds)) {
      expect([placeholder, resources[fnId()]!.Properties.Timeout]).toEqual([
        placeholder,
        timeouts.get(placeholder as never),
      ]);
    }
  });

  test('combine-sources: 512 MB memory, 4 GiB /tmp, the bucket name, the node options the bench measures with', () => {
    template.hasResourceProperties('AWS::Lambda::Function', {
      Description: Match.stringLikeRegexp('CombineConfigAndCode'),
      MemorySize: 512,
      EphemeralStorage: { Size: 4096 },
      Environment: { Variables: { ARTIFACT_BUCKET: { Ref: bucketId() }, NODE_OPTIONS: '--max-semi-space-size=4' } },
    });
  });

  test('validate-input: the config is copied into the bundle and named by STEPDEPLOY_CONFIG_PATH', () => {
    const fn = resources[functionIds.ValidateInputFunctionArn()]!;
    expect(fn.Properties.Environment).toEqual({
      Variables: { STEPDEPLOY_CONFIG_PATH: BUNDLED_CONFIG_PATH, ARTIFACT_BUCKET: { Ref: bucketId() } },
    });
    const bundle = bundleDirOf(fn);
    expect(existsSync(join(bundle, 'index.js'))).toBe(true);
    expect(readFileSync(join(bundle, 'stepdeploy.config.yml'), 'utf8')).toBe(readFileSync(EXAMPLE_CONFIG_PATH, 'utf8'));
  });

  test("every bundle carries the pinned AWS SDK it uses, never the runtime's", () => {
    // An older runtime SDK drops IfMatch/IfNoneMatch: the lease and current.json writes would overwrite blindly.
    const pinned = Object.keys(
      (JSON.parse(readFileSync(join(PROJECT_ROOT, 'package.json'), 'utf8')) as { dependencies: Record<string, string> })
        .dependencies,
    ).filter((name) => name.startsWith('@aws-sdk/'));
    const functions = Object.values(resources).filter((r) => r.Type === 'AWS::Lambda::Function');
    expect(functions).toHaveLength(10);
    for (const fn of functions) {
      const code = readFileSync(join(bundleDirOf(fn), 'index.js'), 'utf8');
      const required = pinned.filter((name) => code.includes(`require("${name}")`));
      expect([fn.Properties.Description, required]).toEqual([fn.Properties.Description, []]);
    }
    const combine = readFileSync(
      join(bundleDirOf(resources[id('AWS::Lambda::Function', 'CombineSources')]!), 'index.js'),
      'utf8',
    );
    expect(combine).toContain(`"${bundledSdkVersion('client-s3')}"`);
  });

  test('resolve-source, combine-sources and record-deployment reach only their prefixes and keys', () => {
    const s3Statements = (prefix: string) =>
      statementsOfRole(id('AWS::IAM::Role', prefix))
        .filter((s) => actionsOf(s).some((a) => a.startsWith('s3:')))
        .map((s) => ({ actions: actionsOf(s), resource: s.Resource, condition: s.Condition }));
    expect(s3Statements('CombineSourcesRole')).toEqual([
      { actions: ['s3:GetObject', 's3:GetObjectVersion'], resource: objectArn('sources/'), condition: undefined },
      { actions: ['s3:GetObject', 's3:GetObjectVersion'], resource: objectArn('artifacts/'), condition: undefined },
      { actions: ['s3:PutObject', 's3:AbortMultipartUpload'], resource: objectArn('artifacts/'), condition: undefined },
      // The reuse index: read before combining, written after a full combine.
      { actions: ['s3:GetObject', 's3:GetObjectVersion'], resource: objectArn('combined/'), condition: undefined },
      { actions: ['s3:PutObject', 's3:AbortMultipartUpload'], resource: objectArn('combined/'), condition: undefined },
      {
        actions: ['s3:ListBucket'],
        resource: arnOf(bucketId()),
        condition: { StringLike: { 's3:prefix': ['sources/*', 'artifacts/*', 'combined/*'] } },
      },
    ]);
    // What it records, and not the deploy leases that live under deployments/ too.
    const recordKeys = ['deployments/*/current.json', 'deployments/*/history/*', 'deployments/*/executions/*'].map(
      keyArn,
    );
    expect(s3Statements('RecordDeploymentRole')).toEqual([
      { actions: ['s3:GetObject'], resource: recordKeys, condition: undefined },
      { actions: ['s3:PutObject'], resource: recordKeys, condition: undefined },
      {
        actions: ['s3:ListBucket'],
        resource: arnOf(bucketId()),
        condition: { StringLike: { 's3:prefix': ['deployments/*'] } },
      },
    ]);
    // HeadObject on a snapshot key: read, and list so that a missing snapshot is a 404, not a 403.
    expect(s3Statements('ResolveSourceRole')).toEqual([
      { actions: ['s3:GetObject', 's3:GetObjectVersion'], resource: objectArn('sources/'), condition: undefined },
      {
        actions: ['s3:ListBucket'],
        resource: arnOf(bucketId()),
        condition: { StringLike: { 's3:prefix': ['sources/*'] } },
      },
    ]);
    // Only for a redeploy (rollback): the named execution's deployment record, and whether its build is stored.
    expect(s3Statements('ValidateInputRole')).toEqual([
      {
        actions: ['s3:GetObject'],
        resource: [keyArn('deployments/*/executions/*'), keyArn('artifacts/*/*/build.zip')],
        condition: undefined,
      },
      {
        actions: ['s3:ListBucket'],
        resource: arnOf(bucketId()),
        condition: { StringLike: { 's3:prefix': ['deployments/*', 'artifacts/*'] } },
      },
    ]);
    expect(s3Statements('RunHookRole')).toEqual([]);
  });
});

describe('deploy function', () => {
  const fn = () => resources[id('AWS::Lambda::Function', 'DeployFunction')]!;
  const roleId = () => id('AWS::IAM::Role', 'DeployFunctionRole');

  test("runs briefly: its timeout is its own, not the Deploy Task's wait for the token", () => {
    expect(fn().Properties.Timeout).toBe(60);
    expect(deployWaitSeconds).toBe(7200);
    expect(timeouts.has('DeployFunctionArn')).toBe(false);
  });

  test('knows the bucket, the deploy project, and a lease that outlasts queue and build and fits in the wait', () => {
    const leaseSeconds =
      DEPLOY_QUEUED_TIMEOUT.toSeconds() + DEPLOY_BUILD_TIMEOUT.toSeconds() + LEASE_MARGIN.toSeconds();
    expect(fn().Properties.Environment).toEqual({
      Variables: {
        ARTIFACT_BUCKET: { Ref: bucketId() },
        DEPLOY_PROJECT_NAME: { Ref: id('AWS::CodeBuild::Project', 'ProjectsDeploy') },
        DEPLOY_LEASE_SECONDS: String(leaseSeconds),
      },
    });
    expect(leaseSeconds + (fn().Properties.Timeout as number)).toBeLessThanOrEqual(deployWaitSeconds);
  });

  test('starts, watches and stops builds of the deploy project only', () => {
    const codebuild = statementsOfRole(roleId()).filter((s) => actionsOf(s).some((a) => a.startsWith('codebuild:')));
    expect(codebuild).toEqual([
      expect.objectContaining({
        Action: [
          'codebuild:StartBuild',
          'codebuild:StopBuild',
          'codebuild:BatchGetBuilds',
          'codebuild:ListBuildsForProject',
        ],
        Resource: deployProjectArn(),
      }),
    ]);
  });

  test('reads current.json and the lease, writes only the lease, and lists deployments/ (404 for a first deploy)', () => {
    expect(s3StatementsOfRole(roleId())).toEqual([
      {
        actions: ['s3:GetObject'],
        resource: [keyArn('deployments/*/current.json'), keyArn('deployments/*/lease.json')],
        condition: undefined,
      },
      { actions: ['s3:PutObject'], resource: keyArn('deployments/*/lease.json'), condition: undefined },
      { ...listDeployments, resource: arnOf(bucketId()) },
    ]);
  });

  test('the bundle carries the pinned CodeBuild client', () => {
    const code = readFileSync(join(bundleDirOf(fn()), 'index.js'), 'utf8');
    expect(code).not.toContain('require("@aws-sdk/client-codebuild")');
    expect(code).toContain(`"${bundledSdkVersion('client-codebuild')}"`);
  });
});

describe('deploy completion', () => {
  const fnId = () => id('AWS::Lambda::Function', 'DeployCompletionFunction');
  const roleId = () => id('AWS::IAM::Role', 'DeployCompletionFunctionRole');
  const queueArn = () => arnOf(id('AWS::SQS::Queue', 'DeployCompletionDeadLetters'));
  const target = () =>
    Match.objectLike({
      Arn: arnOf(fnId()),
      RetryPolicy: { MaximumEventAgeInSeconds: deployWaitSeconds, MaximumRetryAttempts: 185 },
      DeadLetterConfig: { Arn: queueArn() },
    });

  test('ended builds of the deploy project reach deploy-complete', () => {
    template.hasResourceProperties('AWS::Events::Rule', {
      EventPattern: {
        source: ['aws.codebuild'],
        'detail-type': ['CodeBuild Build State Change'],
        detail: {
          'project-name': [{ Ref: id('AWS::CodeBuild::Project', 'ProjectsDeploy') }],
          'build-status': ['SUCCEEDED', 'FAILED', 'FAULT', 'STOPPED', 'TIMED_OUT'],
        },
      },
      Targets: [target()],
    });
  });

  test("this state machine's failed, aborted and timed-out executions reach deploy-complete", () => {
    template.hasResourceProperties('AWS::Events::Rule', {
      EventPattern: {
        source: ['aws.states'],
        'detail-type': ['Step Functions Execution Status Change'],
        detail: {
          stateMachineArn: [{ Ref: id('AWS::StepFunctions::StateMachine', 'StateMachine') }],
          status: ['FAILED', 'ABORTED', 'TIMED_OUT'],
        },
      },
      Targets: [target()],
    });
  });

  test('failed handling is retried for as long as the Deploy task waits, then kept in an encrypted, SSL-only dead-letter queue', () => {
    template.hasResourceProperties('AWS::Lambda::EventInvokeConfig', {
      FunctionName: { Ref: fnId() },
      MaximumRetryAttempts: 2,
      MaximumEventAgeInSeconds: deployWaitSeconds,
      DestinationConfig: { OnFailure: { Destination: queueArn() } },
    });
    template.resourceCountIs('AWS::SQS::Queue', 1);
    template.hasResourceProperties('AWS::SQS::Queue', {
      SqsManagedSseEnabled: true,
      MessageRetentionPeriod: 14 * 24 * 3600,
    });
    template.hasResourceProperties('AWS::SQS::QueuePolicy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Effect: 'Deny',
            Action: 'sqs:*',
            Condition: { Bool: { 'aws:SecureTransport': 'false' } },
          }),
        ]),
      },
    });
  });

  test('knows the bucket and the deploy project (whose builds it finds by lease id)', () => {
    expect(resources[fnId()]!.Properties.Environment).toEqual({
      Variables: {
        ARTIFACT_BUCKET: { Ref: bucketId() },
        DEPLOY_PROJECT_NAME: { Ref: id('AWS::CodeBuild::Project', 'ProjectsDeploy') },
      },
    });
  });

  test('reads and writes the lease only, and lists deployments/ (404 for an environment never deployed)', () => {
    expect(s3StatementsOfRole(roleId())).toEqual([
      { actions: ['s3:GetObject'], resource: keyArn('deployments/*/lease.json'), condition: undefined },
      { actions: ['s3:PutObject'], resource: keyArn('deployments/*/lease.json'), condition: undefined },
      { ...listDeployments, resource: arnOf(bucketId()) },
    ]);
  });

  test('completes Deploy tasks, stops deploy builds, and sends failed events to its queue; nothing more', () => {
    const statements = statementsOfRole(roleId()).filter((s) => !actionsOf(s).some((a) => /^(s3|logs|xray):/.test(a)));
    expect(statements).toEqual([
      expect.objectContaining({
        Action: ['codebuild:StopBuild', 'codebuild:BatchGetBuilds', 'codebuild:ListBuildsForProject'],
        Resource: deployProjectArn(),
      }),
      expect.objectContaining({
        Action: ['sqs:SendMessage', 'sqs:GetQueueAttributes', 'sqs:GetQueueUrl'],
        Resource: queueArn(),
      }),
      // SendTask* take no resource type (Service Authorization Reference): the task token names the task.
      expect.objectContaining({ Action: ['states:SendTaskSuccess', 'states:SendTaskFailure'], Resource: '*' }),
    ]);
  });
});

describe('state machine', () => {
  test('Standard, logging ALL with execution data, X-Ray', () => {
    template.resourceCountIs('AWS::StepFunctions::StateMachine', 1);
    template.hasResourceProperties('AWS::StepFunctions::StateMachine', {
      StateMachineName: 'stepdeploy-example',
      StateMachineType: 'STANDARD',
      LoggingConfiguration: {
        Level: 'ALL',
        IncludeExecutionData: true,
        Destinations: [
          { CloudWatchLogsLogGroup: { LogGroupArn: arnOf(id('AWS::Logs::LogGroup', 'StateMachineLogs')) } },
        ],
      },
      TracingConfiguration: { Enabled: true },
    });
    template.hasResourceProperties('AWS::Logs::LogGroup', {
      LogGroupName: {
        'Fn::Join': [
          '',
          [
            '/aws/vendedlogs/states/stepdeploy-example-',
            { 'Fn::Select': [2, { 'Fn::Split': ['/', { Ref: 'AWS::StackId' }] }] },
          ],
        ],
      },
    });
  });

  test('every retained log group has a name no later stack can collide with (delete-stack, then deploy again)', () => {
    const retained = Object.entries(template.findResources('AWS::Logs::LogGroup')).filter(
      ([, r]) => r.DeletionPolicy === 'Retain',
    );
    expect(retained.length).toBeGreaterThan(0);
    for (const [logicalId, group] of retained) {
      const name = (group.Properties as { LogGroupName?: unknown }).LogGroupName;
      // Either CloudFormation names it (unique per creation) or the name carries this stack's own id.
      expect([logicalId, name === undefined || JSON.stringify(name).includes('{"Ref":"AWS::StackId"}')]).toEqual([
        logicalId,
        true,
      ]);
    }
  });

  test('substitutes every placeholder with the resource it names', () => {
    const sm = resources[id('AWS::StepFunctions::StateMachine', 'StateMachine')]!.Properties;
    expect(sm.DefinitionString).toBe(readDefinitionText());
    expect(sm.DefinitionSubstitutions).toEqual({
      ArtifactsBucket: { Ref: bucketId() },
      ValidateInputFunctionArn: arnOf(id('AWS::Lambda::Function', 'ValidateInput')),
      CombineSourcesFunctionArn: arnOf(id('AWS::Lambda::Function', 'CombineSources')),
      ResolveSourceFunctionArn: arnOf(id('AWS::Lambda::Function', 'ResolveSource')),
      RunHookFunctionArn: arnOf(id('AWS::Lambda::Function', 'RunHook')),
      RecordDeploymentFunctionArn: arnOf(id('AWS::Lambda::Function', 'RecordDeployment')),
      DeployFunctionArn: arnOf(id('AWS::Lambda::Function', 'DeployFunction')),
      AwaitApprovalFunctionArn: arnOf(id('AWS::Lambda::Function', 'ApprovalAwait')),
      FetchProjectName: { Ref: id('AWS::CodeBuild::Project', 'ProjectsFetch') },
      BuildProjectName: { Ref: id('AWS::CodeBuild::Project', 'ProjectsBuild') },
    });
    expect(Object.keys(sm.DefinitionSubstitutions as object).sort()).toEqual([...SUBSTITUTION_NAMES].sort());
  });

  test('the definition, substituted as CloudFormation would, passes asl-validator with the seven top-level states', () => {
    const sm = resources[id('AWS::StepFunctions::StateMachine', 'StateMachine')]!.Properties;
    // What CloudFormation puts in place of each Ref / Fn::GetAtt, with this account and region.
    const standIn = (value: unknown): string => {
      const ref = (value as { Ref?: string }).Ref;
      const getAtt = (value as { 'Fn::GetAtt'?: [string, string] })['Fn::GetAtt'];
      if (ref && resources[ref]?.Type === 'AWS::CodeBuild::Project') return resources[ref]!.Properties.Name as string;
      if (ref && resources[ref]?.Type === 'AWS::S3::Bucket') return `pipeline-artifacts-${ref.toLowerCase()}`;
      if (getAtt && getAtt[1] === 'Arn' && resources[getAtt[0]]?.Type === 'AWS::Lambda::Function') {
        return `arn:aws:lambda:eu-west-1:123456789012:function:Pipeline-${getAtt[0]}`;
      }
      throw new Error(`no stand-in for ${JSON.stringify(value)}`);
    };
    const values = Object.fromEntries(
      Object.entries(sm.DefinitionSubstitutions as object).map(([k, v]) => [k, standIn(v)]),
    );
    const definition = JSON.parse(substitute(sm.DefinitionString as string, values)) as StateMachineDefinition;

    const { isValid, errors } = aslValidator(definition, { checkArn: true, checkPaths: true });
    expect(errors).toEqual([]);
    expect(isValid).toBe(true);
    expect(Object.keys(definition.States)).toEqual([...TOP_LEVEL_STATES]);
    expect(definition.States.ValidateInput!.Parameters).toMatchObject({
      FunctionName: values.ValidateInputFunctionArn,
    });
    expect(definition.States.Deploy).toMatchObject({
      Resource: 'arn:aws:states:::lambda:invoke.waitForTaskToken',
      Parameters: { FunctionName: values.DeployFunctionArn },
    });
  });

  test('its role may invoke the seven task functions, run the fetch and build builds (.sync) and manage the .sync events rule', () => {
    const statements = statementsOfRole(id('AWS::IAM::Role', 'StateMachineRole'));
    const fnIds = [
      'ValidateInput',
      'ResolveSource',
      'CombineSources',
      'RunHook',
      'RecordDeployment',
      'DeployFunction',
      'ApprovalAwait',
    ].map((p) => id('AWS::Lambda::Function', p));
    expect(statements).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          Action: 'lambda:InvokeFunction',
          Resource: fnIds.flatMap((f) => [arnOf(f), { 'Fn::Join': ['', [arnOf(f), ':*']] }]),
        }),
        expect.objectContaining({
          Action: ['codebuild:StartBuild', 'codebuild:StopBuild', 'codebuild:BatchGetBuilds'],
          Resource: ['ProjectsFetch', 'ProjectsBuild'].map((p) => arnOf(id('AWS::CodeBuild::Project', p))),
        }),
        expect.objectContaining({
          Action: ['events:PutTargets', 'events:PutRule', 'events:DescribeRule'],
          Resource: {
            'Fn::Join': [
              '',
              [
                'arn:',
                { Ref: 'AWS::Partition' },
                ':events:',
                { Ref: 'AWS::Region' },
                ':',
                { Ref: 'AWS::AccountId' },
                ':rule/StepFunctionsGetEventForCodeBuildStartBuildRule',
              ],
            ],
          },
        }),
      ]),
    );
    const notify = id('AWS::Lambda::Function', 'NotificationsNotify');
    expect(JSON.stringify(statements)).not.toContain(notify);
    expect(JSON.stringify(statements)).not.toContain(id('AWS::Lambda::Function', 'DeployCompletionFunction'));
  });

  test('its role can no longer start, stop or watch deploy builds: the deploy function does', () => {
    const statements = statementsOfRole(id('AWS::IAM::Role', 'StateMachineRole'));
    const deployProjectId = id('AWS::CodeBuild::Project', 'ProjectsDeploy');
    const onDeploy = statements.filter(
      (s) => JSON.stringify(s.Resource).includes(`"${deployProjectId}"`) || s.Resource === '*',
    );
    expect(onDeploy.flatMap(actionsOf).filter((a) => a.startsWith('codebuild:'))).toEqual([]);
  });
});

describe('notifications', () => {
  test('execution status changes of this state machine reach notify', () => {
    template.hasResourceProperties('AWS::Events::Rule', {
      EventPattern: {
        source: ['aws.states'],
        'detail-type': ['Step Functions Execution Status Change'],
        detail: { stateMachineArn: [{ Ref: id('AWS::StepFunctions::StateMachine', 'StateMachine') }] },
      },
      Targets: [Match.objectLike({ Arn: arnOf(id('AWS::Lambda::Function', 'NotificationsNotify')) })],
    });
  });

  test("build state changes of this pipeline's three projects reach notify", () => {
    template.hasResourceProperties('AWS::Events::Rule', {
      EventPattern: {
        source: ['aws.codebuild'],
        'detail-type': ['CodeBuild Build State Change'],
        detail: {
          'project-name': ['ProjectsFetch', 'ProjectsBuild', 'ProjectsDeploy'].map((p) => ({
            Ref: id('AWS::CodeBuild::Project', p),
          })),
        },
      },
      Targets: [Match.objectLike({ Arn: arnOf(id('AWS::Lambda::Function', 'NotificationsNotify')) })],
    });
    // notify's two rules and deploy-complete's two.
    template.resourceCountIs('AWS::Events::Rule', 4);
  });

  test('notify reads the Slack webhook secret named in the config, and only that secret', () => {
    template.hasResourceProperties('AWS::Lambda::Function', {
      Environment: { Variables: { SLACK_WEBHOOK_SECRET_NAME: 'stepdeploy/slack-webhook' } },
    });
    const statements = statementsOfRole(id('AWS::IAM::Role', 'NotificationsNotifyRole'));
    const secrets = statements.filter((s) => actionsOf(s).some((a) => a.startsWith('secretsmanager:')));
    expect(secrets).toEqual([
      expect.objectContaining({
        Action: 'secretsmanager:GetSecretValue',
        Resource: {
          'Fn::Join': [
            '',
            [
              'arn:',
              { Ref: 'AWS::Partition' },
              ':secretsmanager:',
              { Ref: 'AWS::Region' },
              ':',
              { Ref: 'AWS::AccountId' },
              ':secret:stepdeploy/slack-webhook-??????',
            ],
          ],
        },
      }),
    ]);
    expect(statements).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          Action: ['states:DescribeExecution', 'states:GetExecutionHistory'],
          Resource: {
            'Fn::Join': [
              '',
              expect.arrayContaining([
                ':execution:',
                { 'Fn::GetAtt': [id('AWS::StepFunctions::StateMachine', 'StateMachine'), 'Name'] },
                ':*',
              ]),
            ],
          },
        }),
      ]),
    );
  });
});

describe('operator policy', () => {
  const statements = () =>
    (
      resources[id('AWS::IAM::ManagedPolicy', 'OperatorPolicy')]!.Properties.PolicyDocument as {
        Statement: Array<{ Sid: string; Action: string | string[]; Resource: unknown }>;
      }
    ).Statement;

  test('allows exactly the operator actions', () => {
    expect(statements().flatMap(actionsOf).sort()).toEqual(
      [
        'states:StartExecution',
        'states:RedriveExecution',
        'states:StopExecution',
        'states:DescribeExecution',
        'states:DescribeStateMachine',
        'states:DescribeStateMachineForExecution',
        'states:ListExecutions',
        'states:GetExecutionHistory',
        'codebuild:BatchGetBuilds',
        's3:GetObject',
        's3:ListBucket',
        'logs:GetLogEvents',
        'logs:FilterLogEvents',
        'logs:DescribeLogStreams',
        'lambda:InvokeFunctionUrl',
        'lambda:InvokeFunction',
      ].sort(),
    );
  });

  test('approvers call the decision function through its AWS_IAM URL only: no SendTaskSuccess, no direct invoke', () => {
    const decide = arnOf(id('AWS::Lambda::Function', 'ApprovalDecide'));
    expect(statements()).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          Action: 'lambda:InvokeFunctionUrl',
          Resource: decide,
          Condition: { StringEquals: { 'lambda:FunctionUrlAuthType': 'AWS_IAM' } },
        }),
        expect.objectContaining({
          Action: 'lambda:InvokeFunction',
          Resource: decide,
          Condition: { Bool: { 'lambda:InvokedViaFunctionUrl': 'true' } },
        }),
      ]),
    );
    expect(statements().flatMap(actionsOf)).not.toContain('states:SendTaskSuccess');
    template.hasResourceProperties('AWS::Lambda::Url', {
      AuthType: 'AWS_IAM',
      TargetFunctionArn: decide,
    });
    template.resourceCountIs('AWS::Lambda::Url', 1);
  });

  test('Step Functions actions apply to this state machine and its executions only', () => {
    const smId = id('AWS::StepFunctions::StateMachine', 'StateMachine');
    for (const statement of statements().filter((s) => actionsOf(s).some((a) => a.startsWith('states:')))) {
      const resource = JSON.stringify(statement.Resource);
      expect(
        resource === JSON.stringify({ Ref: smId }) ||
          (resource.includes(':execution:') && resource.includes(`"${smId}","Name"`)),
      ).toBe(true);
    }
    expect(JSON.stringify(statements())).not.toMatch(/"Resource":"\*"/);
  });

  test('reads deployments/ only, and the build logs', () => {
    expect(statements()).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ Action: 's3:GetObject', Resource: objectArn('deployments/') }),
        expect.objectContaining({
          Action: 's3:ListBucket',
          Condition: { StringLike: { 's3:prefix': ['deployments/*'] } },
        }),
        expect.objectContaining({
          Action: ['logs:GetLogEvents', 'logs:FilterLogEvents', 'logs:DescribeLogStreams'],
          Resource: ['ProjectsFetchLogs', 'ProjectsBuildLogs', 'ProjectsDeployLogs'].map((p) =>
            arnOf(id('AWS::Logs::LogGroup', p)),
          ),
        }),
      ]),
    );
  });

  test('outputs its ARN, the state machine ARN, the bucket name and the role deploy roles must trust', () => {
    template.hasOutput('OperatorPolicyArn', { Value: { Ref: id('AWS::IAM::ManagedPolicy', 'OperatorPolicy') } });
    template.hasOutput('StateMachineArn', { Value: { Ref: id('AWS::StepFunctions::StateMachine', 'StateMachine') } });
    template.hasOutput('ArtifactsBucketName', { Value: { Ref: bucketId() } });
    template.hasOutput('DeployProjectRoleArn', { Value: arnOf(id('AWS::IAM::Role', 'ProjectsDeployRole')) });
  });
});

describe('local repositories', () => {
  test('each source with a local path gets a warning that CodeBuild cannot fetch it', () => {
    for (const name of ['app', 'config']) {
      stackAnnotations.hasWarning(
        '/Pipeline/Default',
        Match.stringLikeRegexp(
          `sources\\.${name}\\.repository is a local path .*CodeBuild on AWS cannot fetch .*repository URL`,
        ),
      );
    }
    expect(
      stackAnnotations.findWarning('/Pipeline/Default', Match.stringLikeRegexp(LOCAL_REPOSITORY_WARNING)),
    ).toHaveLength(2);
  });
});

describe('approval functions', () => {
  const roleOf = (fn: string) =>
    (resources[id('AWS::Lambda::Function', fn)]!.Properties.Role as { 'Fn::GetAtt': [string, string] })[
      'Fn::GetAtt'
    ][0];

  test('only the two approval functions may read approvals/, where the task tokens are', () => {
    const readers = Object.values(resources)
      .filter((r) => r.Type === 'AWS::IAM::Policy' || r.Type === 'AWS::IAM::ManagedPolicy')
      .filter((r) => JSON.stringify(r.Properties.PolicyDocument).includes('/approvals/'))
      .flatMap(
        (r) => (r.Properties.Roles as Array<{ Ref: string }> | undefined)?.map((role) => role.Ref) ?? ['managed'],
      );
    expect([...new Set(readers)].sort()).toEqual([roleOf('ApprovalAwait'), roleOf('ApprovalDecide')].sort());
  });

  test('only decide-approval may answer a task; AwaitApproval cannot approve its own request', () => {
    const sendTask = (roleId: string) =>
      statementsOfRole(roleId)
        .flatMap(actionsOf)
        .filter((a) => a.startsWith('states:SendTask'));
    expect(sendTask(roleOf('ApprovalDecide')).sort()).toEqual(['states:SendTaskFailure', 'states:SendTaskSuccess']);
    expect(sendTask(roleOf('ApprovalAwait'))).toEqual([]);
    expect(s3StatementsOfRole(roleOf('ApprovalDecide'))).toEqual(
      expect.arrayContaining([
        { actions: ['s3:GetObject', 's3:GetObjectVersion'], resource: objectArn('approvals/'), condition: undefined },
        {
          actions: ['s3:GetObject'],
          resource: [keyArn('deployments/*/current.json'), keyArn('deployments/*/lease.json')],
          condition: undefined,
        },
      ]),
    );
  });

  test('outputs the approval URL the CLI sends decisions to', () => {
    expect(template.toJSON().Outputs.ApprovalUrl.Value).toEqual({
      'Fn::GetAtt': [id('AWS::Lambda::Url', 'ApprovalDecideFunctionUrl'), 'FunctionUrl'],
    });
  });
});
