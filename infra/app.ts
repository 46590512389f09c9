import { App } from 'aws-cdk-lib';
import { DEFAULT_CONFIG_PATH } from '../shared/config';
import { definePipelineApp } from './pipeline-app';

/**
 * `npx cdk synth|deploy [--context config=path]`: the stacks of one pipeline (infra/pipeline-app.ts),
 * named after `pipeline` in the config. The config path also comes from STEPDEPLOY_CONFIG.
 */
function main(): void {
  const app = new App();
  const fromContext: unknown = app.node.tryGetContext('config');
  const configPath =
    typeof fromContext === 'string' && fromContext !== ''
      ? fromContext
      : process.env.STEPDEPLOY_CONFIG || DEFAULT_CONFIG_PATH;
  definePipelineApp(app, configPath);
  app.synth();
}

main();
