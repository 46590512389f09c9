import { Duration, Stack, Token, Validations } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import { Construct } from 'constructs';

const ROLE_ARN = /^arn:(aws[a-z-]*):iam::(\d{12}):role(\/(?:[\w+=,.@-]+\/)*)([\w+=,.@-]{1,64})$/;

export interface DeployRoleProps {
  /**
   * The role as the config names it (`environments.<env>.deployRoleArn`): the role is created with
   * that name and path, in the account of that ARN, so the ARN the deploy build assumes is exactly it.
   */
  readonly roleArn: string;
  /**
   * The tooling account's deploy project role (`<pipeline>-deploy-project`), the only principal that
   * may assume this role. Trusted through its account and `aws:PrincipalArn`, not as a principal ARN:
   * IAM turns a principal ARN into the role's unique id, so a deploy project role deleted and
   * created again (a replaced pipeline stack) would lose the trust, and the tooling stack would have
   * to exist before this one.
   */
  readonly trustedRoleArn: string;
  /**
   * What the deploy build may do in the environment: managed policies for what the templates
   * deploy (e.g. your own policy scoped to your stacks' resources).
   * @default - none: the role can only be assumed
   */
  readonly managedPolicyArns?: ReadonlyArray<string>;
  /**
   * CloudFormation execution (service) roles the deploy build passes to CloudFormation
   * (`aws cloudformation deploy --role-arn`): the resource permissions then live in those roles,
   * and this role only needs CloudFormation on its stacks through `managedPolicyArns`.
   * @default - none
   */
  readonly cloudFormationExecutionRoleArns?: ReadonlyArray<string>;
  /**
   * The deploy build refreshes the role's credentials as they expire (credential_source), so one
   * session need not last the whole deploy.
   * @default Duration.hours(1)
   */
  readonly maxSessionDuration?: Duration;
}

/**
 * An environment's deploy role, in the environment's account: assumed by the deploy build of one
 * pipeline (buildspecs/deploy.yml), with nothing else allowed but what the props grant.
 */
export class DeployRole extends Construct {
  public readonly role: iam.Role;

  constructor(scope: Construct, id: string, props: DeployRoleProps) {
    super(scope, id);
    const own = ROLE_ARN.exec(props.roleArn);
    if (!own) {
      throw new Error(
        `roleArn must be an IAM role ARN such as arn:aws:iam::123456789012:role/stepdeploy-deploy, got ${props.roleArn}; fix deployRoleArn in the config`,
      );
    }
    const [, , account, path, roleName] = own;
    const stackAccount = Stack.of(this).account;
    if (!Token.isUnresolved(stackAccount) && stackAccount !== account) {
      throw new Error(
        `the deploy role ${props.roleArn} belongs to account ${account}, but this stack deploys to account ${stackAccount}; deploy it with the environment account's credentials (its stack's env.account)`,
      );
    }
    const trusted = ROLE_ARN.exec(props.trustedRoleArn);
    if (!trusted) {
      throw new Error(
        `trustedRoleArn must be the tooling account's deploy project role ARN (arn:aws:iam::123456789012:role/<pipeline>-deploy-project), got ${props.trustedRoleArn}`,
      );
    }

    this.role = new iam.Role(this, 'Resource', {
      roleName,
      path,
      description: `stepdeploy deploy role, assumed by ${props.trustedRoleArn}`,
      assumedBy: new iam.AccountPrincipal(trusted[2]).withConditions({
        ArnEquals: { 'aws:PrincipalArn': props.trustedRoleArn },
      }),
      maxSessionDuration: props.maxSessionDuration ?? Duration.hours(1),
      managedPolicies: (props.managedPolicyArns ?? []).map((arn, i) =>
        iam.ManagedPolicy.fromManagedPolicyArn(this, `Policy${i}`, arn),
      ),
    });
    const executionRoles = props.cloudFormationExecutionRoleArns ?? [];
    if (executionRoles.length > 0) {
      this.role.addToPolicy(
        new iam.PolicyStatement({
          sid: 'PassExecutionRolesToCloudFormation',
          actions: ['iam:PassRole'],
          resources: [...executionRoles],
          conditions: { StringEquals: { 'iam:PassedToService': 'cloudformation.amazonaws.com' } },
        }),
      );
    }
    for (const arn of props.managedPolicyArns ?? []) {
      if (!/:iam::aws:policy\//.test(arn)) continue;
      Validations.of(this.role).acknowledge({
        id: `AwsSolutions-IAM4[Policy::${arn}]`,
        reason:
          'An AWS managed policy named in the config (environments.<env>.deployRole.managedPolicyArns) for what the templates deploy: the owner chose it.',
      });
    }
  }
}
