import { Stack, type StackProps } from 'aws-cdk-lib';
import type { Construct } from 'constructs';
import type { PipelineConfig } from '../shared/config';
import { DeployRoles } from './deploy-roles';

export interface DeployRoleStackProps extends StackProps {
  readonly config: PipelineConfig;
  /** The environment account this stack deploys to: it holds the deploy roles of that account's environments. */
  readonly environmentAccount: string;
  /** The account of the pipeline stack, whose deploy project assumes the roles. */
  readonly toolingAccount: string;
}

/** This repository's deploy role stack of one environment account: a stack that holds its {@link DeployRoles}. */
export class DeployRoleStack extends Stack {
  public readonly deployRoles: DeployRoles;

  constructor(scope: Construct, id: string, props: DeployRoleStackProps) {
    super(scope, id, {
      description: `stepdeploy ${props.config.pipeline}: deploy roles of account ${props.environmentAccount}`,
      ...props,
    });
    // "Default" keeps the logical ids the roles had as the stack's own children.
    this.deployRoles = new DeployRoles(this, 'Default', {
      config: props.config,
      environmentAccount: props.environmentAccount,
      toolingAccount: props.toolingAccount,
    });
  }
}
