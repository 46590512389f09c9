/**
 * stepdeploy as a library, for your own CDK app (the `stepdeploy` package's entry point).
 *
 * ```ts
 * import { App, Stack } from 'aws-cdk-lib';
 * import { DeploymentPipeline, DeployRoles, loadConfig } from 'stepdeploy';
 *
 * const app = new App();
 * const config = loadConfig('stepdeploy.config.yml');
 * // In the tooling account, beside your other constructs:
 * const tooling = new Stack(app, 'Tooling', { env: { account: config.toolingAccount, region: 'eu-west-1' } });
 * new DeploymentPipeline(tooling, 'Pipeline', { configPath: 'stepdeploy.config.yml' });
 * // In each environment account: the role its deployments assume.
 * const production = new Stack(app, 'ProductionDeployRoles', { env: { account: '333333333333', region: 'eu-west-1' } });
 * new DeployRoles(production, 'DeployRoles', { config });
 * ```
 *
 * `stepdeploy init` writes such an app (`cdk.json` and its entry point) and a commented config.
 * The constructs are made with the aws-cdk-lib and constructs packages your app has: install
 * aws-cdk-lib 2 and constructs 10 beside stepdeploy.
 *
 * @packageDocumentation
 */

export { DeploymentPipeline, type DeploymentPipelineProps } from './infra/deployment-pipeline';
export { DeployRoles, type DeployRolesProps } from './infra/deploy-roles';
export { loadConfig, type PipelineConfig } from './shared/config';
export { GitHubActionsRole, type GitHubActionsRoleProps } from './infra/github-actions-role';
