import { Stack, type StackProps } from 'aws-cdk-lib';
import type { Construct } from 'constructs';
import type { PipelineConfig } from '../shared/config';
import { DeploymentPipeline } from './deployment-pipeline';

export interface PipelineStackProps extends StackProps {
  /** The validated pipeline config (shared/config.ts `loadConfig`). */
  readonly config: PipelineConfig;
  /** The config file: validate-input bundles it, and the build and deploy buildspecs are relative to its folder. */
  readonly configPath: string;
}

/**
 * This repository's pipeline stack: a stack that holds one {@link DeploymentPipeline} and nothing
 * else, the way a user's own stack holds it (index.ts), so there is one way to build a pipeline.
 */
export class PipelineStack extends Stack {
  public readonly pipeline: DeploymentPipeline;

  constructor(scope: Construct, id: string, props: PipelineStackProps) {
    super(scope, id, { description: `stepdeploy pipeline ${props.config.pipeline}`, ...props });
    // "Default" adds nothing to the logical ids: the stack's resources keep the ids they had when
    // they were the stack's own children, so an existing deployment is updated, not replaced.
    this.pipeline = new DeploymentPipeline(this, 'Default', { config: props.config, configPath: props.configPath });
  }
}
