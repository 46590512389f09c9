import type { S3Client } from '@aws-sdk/client-s3';
import type { PipelineConfig } from '../../shared/config';
import type { DeploymentRecord, FetchedSource, Plan, RedeployPrepared } from '../../shared/contracts';
import { headObject, readJsonObject } from '../shared/s3';
import { buildEnvironment, deployEnvironment } from '../combine-sources/environment';
import { InvalidInputError } from './errors';

/**
 * A redeploy (`stepdeploy rollback`): the input names an earlier execution whose build this one
 * deploys again, skipping FetchSources, CombineConfigAndCode and BuildTemplates. Checked here,
 * before any state runs: the execution must have deployed to this very environment (its record
 * `deployments/<env>/executions/<execution>.json`, written by RecordDeployment), and its build.zip
 * must still be in the bucket (the lifecycle of artifacts/ removes old ones).
 */

export interface RedeployDependencies {
  readonly s3: S3Client;
  readonly bucket: string;
}

function recordKey(environment: string, execution: string): string {
  return `deployments/${environment}/executions/${execution}.json`;
}

/** What an earlier deployment left, as the rest of the execution reads it (FetchSources', CombineConfigAndCode's, BuildTemplates' results). */
export async function prepareRedeploy(
  plan: Plan,
  redeploy: string,
  config: PipelineConfig,
  deps: RedeployDependencies,
): Promise<RedeployPrepared> {
  const { environment } = plan;
  const field = 'redeploy';
  const record = (await readJsonObject<DeploymentRecord>(deps.s3, deps.bucket, recordKey(environment, redeploy)))
    ?.value;
  if (!record) {
    const elsewhere: string[] = [];
    for (const other of Object.keys(config.environments)) {
      if (other === environment) continue;
      if (await headObject(deps.s3, deps.bucket, recordKey(other, redeploy))) elsewhere.push(other);
    }
    throw new InvalidInputError([
      elsewhere.length > 0
        ? `${field}: ${JSON.stringify(redeploy)} deployed to ${elsewhere.join(', ')}, not to ${environment}: a build is made for its environment (its variables, account, region); roll back to a deployment of ${environment} (stepdeploy status / rollback --env ${environment})`
        : `${field}: ${JSON.stringify(redeploy)} never deployed to ${environment} (no ${recordKey(environment, redeploy)}): name an execution that deployed there successfully`,
    ]);
  }
  // A rollback's record names the build it deployed: redeploying it deploys that build again.
  const original = record.redeployOf ?? record.execution;
  const buildPath = `artifacts/${environment}/${original}`;
  if (!(await headObject(deps.s3, deps.bucket, `${buildPath}/build.zip`))) {
    throw new InvalidInputError([
      `${field}: the build of ${JSON.stringify(original)} (s3://${deps.bucket}/${buildPath}/build.zip) is gone: the bucket's lifecycle removed it; deploy its branches again with stepdeploy start (${record.sources.map((s) => `${s.name}=${s.branch}`).join(' ')})`,
    ]);
  }
  const fetched: FetchedSource[] = record.sources.map((s) => ({
    name: s.name,
    branch: s.branch,
    path: config.sources[s.name]?.path ?? '.',
    commit: s.commit,
    fetchBuildId: null,
    snapshotKey: `sources/${s.name}/${s.commit}.zip`,
  }));
  const build = buildEnvironment(
    {
      environment,
      execution: plan.execution,
      requestedBy: plan.requestedBy,
      createdAt: record.deployedAt,
      sources: fetched.map(({ name, branch, commit, snapshotKey, path }) => ({
        name,
        branch,
        commit,
        snapshotKey,
        path,
      })),
    },
    plan.variables,
    plan,
  );
  return {
    redeployOf: original,
    // What `stepdeploy executions` shows: the branches that build was made from.
    sources: plan.sources.map((source) => ({
      ...source,
      branch: record.sources.find((s) => s.name === source.name)?.branch ?? source.branch,
    })),
    fetched,
    artifact: {
      key: record.artifactKey,
      location: `${deps.bucket}/${record.artifactKey}`,
      buildPath,
      buildEnvironment: build,
      deployEnvironment: deployEnvironment(build, plan.deployRoleArn),
    },
    build: { buildId: record.buildId },
  };
}
