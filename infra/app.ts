import { App } from 'aws-cdk-lib';
import { DEFAULT_CONFIG_PATH, loadConfig } from '../tasks/shared/config';
import { PipelineStack } from './pipeline-stack';

/**
 * `npx cdk synth|deploy [--context config=path]`: one stack per pipeline, named after
 * `pipeline` in the config. The config path also comes from STEPDEPLOY_CONFIG.
 */
function main(): void {
  const app = new App();
  const fromContext: unknown = app.node.tryGetContext('config');
  const configPath =
    typeof fromContext === 'string' && fromContext !== '' ? fromContext : process.env.STEPDEPLOY_CONFIG || DEFAULT_CONFIG_PATH;
  const config = loadConfig(configPath);
  new PipelineStack(app, config.pipeline, {
    config,
    configPath,
    env: { account: process.env.CDK_DEFAULT_ACCOUNT, region: process.env.CDK_DEFAULT_REGION },
  });
  app.synth();
}

main();
