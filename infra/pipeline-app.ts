import type { App } from 'aws-cdk-lib';
import { loadConfig } from '../shared/config';
import { DeployRoleStack } from './deploy-role-stack';
import { PipelineStack } from './pipeline-stack';

export interface PipelineAppStacks {
  readonly pipeline: PipelineStack;
  /** One per environment account; none until the config names the tooling account. */
  readonly deployRoles: ReadonlyArray<DeployRoleStack>;
}

/**
 * The stacks of one pipeline config: the pipeline stack `<pipeline>` in the tooling account and,
 * once `toolingAccount` is set, one `<pipeline>-deploy-roles-<account>` per environment account,
 * in the region of that account's first environment (which must be bootstrapped anyway).
 */
export function definePipelineApp(app: App, configPath: string): PipelineAppStacks {
  const config = loadConfig(configPath);
  const pipeline = new PipelineStack(app, config.pipeline, {
    config,
    configPath,
    env: { account: config.toolingAccount ?? process.env.CDK_DEFAULT_ACCOUNT, region: process.env.CDK_DEFAULT_REGION },
  });
  const toolingAccount = config.toolingAccount;
  if (toolingAccount === undefined) return { pipeline, deployRoles: [] };
  const regionOf = new Map<string, string>();
  for (const environment of Object.values(config.environments)) {
    if (!regionOf.has(environment.account)) regionOf.set(environment.account, environment.region);
  }
  const deployRoles = [...regionOf].map(
    ([account, region]) =>
      new DeployRoleStack(app, `${config.pipeline}-deploy-roles-${account}`, {
        config,
        environmentAccount: account,
        toolingAccount,
        env: { account, region },
      }),
  );
  return { pipeline, deployRoles };
}
