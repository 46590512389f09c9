import { CfnElement, Stack, Token } from 'aws-cdk-lib';
import type { IConstruct } from 'constructs';

/**
 * The logical id of the resource behind an L2 construct: cdk-nag names tokens by it
 * (`<LogicalId.Arn>`) in the finding ids that acknowledgements must match.
 */
export function logicalIdOf(construct: IConstruct): string {
  const child = construct.node.defaultChild;
  if (!(child instanceof CfnElement)) {
    throw new Error(
      `construct ${construct.node.path} has no CloudFormation resource as its default child; pass the L2 construct that owns one`,
    );
  }
  return Stack.of(construct).getLogicalId(child);
}

/**
 * `arn:<AWS::Partition>:<service>:<region>:<account>:` as cdk-nag prints an ARN of `scope`'s stack
 * in a finding id: the region and account as `<AWS::Region>` / `<AWS::AccountId>` while they are
 * tokens, as themselves once the stack has an explicit env (the app sets the tooling account).
 */
export function findingArnPrefix(scope: IConstruct, service: string): string {
  const { region, account } = Stack.of(scope);
  const shown = (value: string, pseudo: string) => (Token.isUnresolved(value) ? `<AWS::${pseudo}>` : value);
  return `arn:<AWS::Partition>:${service}:${shown(region, 'Region')}:${shown(account, 'AccountId')}:`;
}
