import { CfnOutput, Stack, type StackProps } from 'aws-cdk-lib';
import type { Construct } from 'constructs';
import type { PipelineConfig } from '../shared/config';
import { DeployRole } from './deploy-role';
import { deployProjectRoleName } from './pipeline-projects';

export interface DeployRoleStackProps extends StackProps {
  readonly config: PipelineConfig;
  /** The environment account this stack deploys to: it holds the deploy roles of that account's environments. */
  readonly environmentAccount: string;
  /** The account of the pipeline stack, whose deploy project assumes the roles. */
  readonly toolingAccount: string;
}

/**
 * The deploy roles of one environment account: one role per distinct `deployRoleArn` among the
 * environments in that account (environments sharing a role share its grants), each trusting the
 * pipeline's deploy project role in the tooling account by its fixed name.
 */
export class DeployRoleStack extends Stack {
  public readonly roles: ReadonlyArray<DeployRole>;

  constructor(scope: Construct, id: string, props: DeployRoleStackProps) {
    super(scope, id, {
      description: `stepdeploy ${props.config.pipeline}: deploy roles of account ${props.environmentAccount}`,
      ...props,
    });
    const { config } = props;
    const environments = Object.entries(config.environments).filter(([, e]) => e.account === props.environmentAccount);
    if (environments.length === 0) {
      throw new Error(
        `environmentAccount ${props.environmentAccount} is the account of no environment in the config; use one of ${[...new Set(Object.values(config.environments).map((e) => e.account))].join(', ')}`,
      );
    }
    const byRole = new Map<string, { names: string[]; policies: Set<string>; executionRoles: Set<string> }>();
    for (const [name, environment] of environments) {
      const entry = byRole.get(environment.deployRoleArn) ?? {
        names: [],
        policies: new Set<string>(),
        executionRoles: new Set<string>(),
      };
      entry.names.push(name);
      for (const arn of environment.deployRole.managedPolicyArns) entry.policies.add(arn);
      for (const arn of environment.deployRole.cloudFormationExecutionRoleArns) entry.executionRoles.add(arn);
      byRole.set(environment.deployRoleArn, entry);
    }
    this.roles = [...byRole].map(([roleArn, entry]) => {
      const id = entry.names.join('-');
      const role = new DeployRole(this, id, {
        roleArn,
        // Same partition as the role itself (aws, aws-cn, aws-us-gov): a plain string, known at synth.
        trustedRoleArn: `arn:${roleArn.split(':')[1]!}:iam::${props.toolingAccount}:role/${deployProjectRoleName(config.pipeline)}`,
        managedPolicyArns: [...entry.policies],
        cloudFormationExecutionRoleArns: [...entry.executionRoles],
      });
      new CfnOutput(this, `${id}RoleArn`, {
        description: `Deploy role of ${entry.names.join(', ')}`,
        value: role.role.roleArn,
      });
      return role;
    });
  }
}
