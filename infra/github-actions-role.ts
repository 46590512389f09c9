import { Arn, ArnFormat, Duration, Stack, Token, Validations } from 'aws-cdk-lib';
import type * as codebuild from 'aws-cdk-lib/aws-codebuild';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import { findingArnPrefix } from './logical-id';

/** The issuer of GitHub Actions' OIDC tokens (github.com; GHE.com and GHES have their own). */
export const GITHUB_OIDC_ISSUER = 'token.actions.githubusercontent.com';
/** The audience configure-aws-credentials asks for. */
export const GITHUB_OIDC_AUDIENCE = 'sts.amazonaws.com';

// GitHub's owner and repository names: letters, digits, "-", "_" and "." (owners: no "."), never a wildcard.
const REPOSITORY = /^[A-Za-z0-9-]{1,39}\/[A-Za-z0-9._-]{1,100}$/;
// What may stand in the `sub` condition for a branch: stepdeploy's branch characters and "*".
// "?" is left out on purpose: in StringLike it matches any one character.
const BRANCH_PATTERN = /^[A-Za-z0-9._/*-]{1,200}$/;

export interface GitHubActionsRoleProps {
  /** The repository whose workflow starts deployments, `owner/name` (e.g. `octo-org/shop-app`). */
  readonly repository: string;
  /**
   * The branches whose pushes may start deployments, as in the workflow's `on.push.branches`;
   * `*` stands for any run of characters (`release/*`). The token's `sub` is restricted to them.
   */
  readonly branches: ReadonlyArray<string>;
  /** The pipeline's state machine (the stack output StateMachineArn). */
  readonly stateMachine: sfn.IStateMachine;
  /**
   * The pipeline's CodeBuild projects: `start --wait` shows their running builds (BatchGetBuilds).
   * @default - none: `start --wait` fails with AccessDenied when it asks for a running build
   */
  readonly projects?: ReadonlyArray<codebuild.IProject>;
  /**
   * The account's OIDC provider for token.actions.githubusercontent.com. An account holds one per
   * issuer URL: pass the existing one (`iam.OidcProviderNative.fromOidcProviderArn`) if it has it.
   * @default - a new provider in this stack
   */
  readonly oidcProvider?: iam.IOidcProvider;
}

/**
 * The role a GitHub Actions workflow assumes through OIDC to run `stepdeploy start --wait`
 * (examples/github-actions/deploy.yml): only pushes to the named branches of the one repository
 * get it, and it may only start executions of this pipeline and follow them, the operator
 * policy's start and describe statements. It cannot stop, redrive, approve or read artifacts.
 * The environment's branch policy and approval still apply to what it starts.
 */
export class GitHubActionsRole extends Construct {
  public readonly role: iam.Role;
  public readonly oidcProvider: iam.IOidcProvider;

  constructor(scope: Construct, id: string, props: GitHubActionsRoleProps) {
    super(scope, id);
    validate(props);
    this.oidcProvider =
      props.oidcProvider ??
      new iam.OidcProviderNative(this, 'Provider', {
        url: `https://${GITHUB_OIDC_ISSUER}`,
        clientIds: [GITHUB_OIDC_AUDIENCE],
      });
    const subjects = props.branches.map((branch) => `repo:${props.repository}:ref:refs/heads/${branch}`);
    const wildcard = props.branches.some((branch) => branch.includes('*'));
    this.role = new iam.Role(this, 'Resource', {
      description: `stepdeploy: GitHub Actions of ${props.repository} (${props.branches.join(', ')}) start and follow deployments`,
      maxSessionDuration: Duration.hours(1),
      assumedBy: new iam.OpenIdConnectPrincipal(this.oidcProvider, {
        StringEquals: {
          [`${GITHUB_OIDC_ISSUER}:aud`]: GITHUB_OIDC_AUDIENCE,
          ...(wildcard ? {} : { [`${GITHUB_OIDC_ISSUER}:sub`]: subjects }),
        },
        ...(wildcard ? { StringLike: { [`${GITHUB_OIDC_ISSUER}:sub`]: subjects } } : {}),
      }),
    });
    props.stateMachine.grantStartExecution(this.role);
    const stack = Stack.of(this);
    const machineName = Arn.split(props.stateMachine.stateMachineArn, ArnFormat.COLON_RESOURCE_NAME).resourceName!;
    this.role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        // What `start --wait` reads while it follows the execution (cli/follow.ts, cli/commands/summary.ts).
        actions: ['states:DescribeExecution', 'states:DescribeStateMachineForExecution', 'states:GetExecutionHistory'],
        resources: [
          stack.formatArn({
            service: 'states',
            resource: 'execution',
            resourceName: `${machineName}:*`,
            arnFormat: ArnFormat.COLON_RESOURCE_NAME,
          }),
        ],
      }),
    );
    const shownName = stack.resolve(machineName);
    Validations.of(this.role).acknowledge({
      id: `AwsSolutions-IAM5[Resource::${findingArnPrefix(this, 'states')}execution:${typeof shownName === 'string' ? shownName : JSON.stringify(shownName)}:*]`,
      reason: 'Executions of this state machine only, read-only; their names are generated per run.',
    });
    const projects = props.projects ?? [];
    if (projects.length > 0) {
      this.role.addToPrincipalPolicy(
        new iam.PolicyStatement({
          actions: ['codebuild:BatchGetBuilds'],
          resources: projects.map((project) => project.projectArn),
        }),
      );
    }
  }
}

function validate(props: GitHubActionsRoleProps): void {
  if (!Token.isUnresolved(props.repository) && !REPOSITORY.test(props.repository)) {
    throw new Error(
      `repository must be a GitHub repository as owner/name (e.g. octo-org/shop-app), got ${JSON.stringify(props.repository)}`,
    );
  }
  if (props.branches.length === 0) {
    throw new Error('branches must name at least one branch (e.g. ["main"]): the role trusts pushes to those only');
  }
  for (const branch of props.branches) {
    if (Token.isUnresolved(branch)) continue;
    if (branch === '*' || !BRANCH_PATTERN.test(branch) || branch.startsWith('-')) {
      throw new Error(
        `branches: ${JSON.stringify(branch)} cannot restrict the token's sub: use branch names of A-Z a-z 0-9 . _ / - with "*" wildcards inside a name (e.g. "release/*"), not a lone "*" or "?"`,
      );
    }
  }
}
