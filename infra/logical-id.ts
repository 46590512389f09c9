import { CfnElement, Stack } from 'aws-cdk-lib';
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
