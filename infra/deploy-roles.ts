import { CfnOutput, Stack, Token } from 'aws-cdk-lib';
import { Construct } from 'constructs';
import type { PipelineConfig } from '../shared/config';
import { DeployRole } from './deploy-role';
import { configOf } from './pipeline-config';
import { deployProjectRoleName } from './pipeline-projects';

/** What {@link DeployRoles} is built from: the pipeline config (one of `configPath`, `config`) and the accounts. */
export interface DeployRolesProps {
  /**
   * The config file, `stepdeploy.config.yml`.
   * @default - none: `config` is required
   */
  readonly configPath?: string;
  /**
   * The config, loaded already (`loadConfig`); validated again here.
   * @default - loaded from `configPath`
   */
  readonly config?: PipelineConfig;
  /**
   * The environment account these roles are in: the roles of the environments in that account are made.
   * @default - the account of the stack (its `env.account`)
   */
  readonly environmentAccount?: string;
  /**
   * The account of the pipeline's stack, whose deploy project assumes the roles.
   * @default - `toolingAccount` in the config
   */
  readonly toolingAccount?: string;
}

/**
 * The deploy roles of one environment account, for a stack of yours deployed to that account (in
 * any region: IAM is global): one role per distinct `deployRoleArn` among the environments in that
 * account (environments sharing a role share its grants), each trusting only the pipeline's deploy
 * project role in the tooling account, by its fixed name (`<pipeline>-deploy-project`), so this
 * stack and the pipeline's may be deployed in either order.
 */
export class DeployRoles extends Construct {
  public readonly roles: ReadonlyArray<DeployRole>;

  constructor(scope: Construct, id: string, props: DeployRolesProps) {
    super(scope, id);
    const config = configOf(props, 'DeployRoles');
    const accounts = [...new Set(Object.values(config.environments).map((e) => e.account))];
    const stackAccount = Stack.of(this).account;
    const environmentAccount =
      props.environmentAccount ?? (Token.isUnresolved(stackAccount) ? undefined : stackAccount);
    if (environmentAccount === undefined) {
      throw new Error(
        `DeployRoles ${this.node.path} needs the environment account, got none: the stack has no env.account; give the stack env: { account } or pass environmentAccount (one of ${accounts.join(', ')})`,
      );
    }
    const toolingAccount = props.toolingAccount ?? config.toolingAccount;
    if (toolingAccount === undefined || !/^\d{12}$/.test(toolingAccount)) {
      throw new Error(
        `DeployRoles needs the tooling account (where the pipeline's stack is) as 12 digits, got ${toolingAccount ?? 'none'}; set toolingAccount in the config or pass toolingAccount`,
      );
    }
    const environments = Object.entries(config.environments).filter(([, e]) => e.account === environmentAccount);
    if (environments.length === 0) {
      throw new Error(
        `environmentAccount ${environmentAccount} is the account of no environment in the config; use one of ${accounts.join(', ')}`,
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
        trustedRoleArn: `arn:${roleArn.split(':')[1]!}:iam::${toolingAccount}:role/${deployProjectRoleName(config.pipeline)}`,
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
