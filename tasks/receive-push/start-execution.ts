import { ExecutionAlreadyExists, type SFNClient, StartExecutionCommand } from '@aws-sdk/client-sfn';
import type { StartRequest } from './receive-push';

/**
 * StartExecution for the receiver, on AWS and on the local runtime's Step Functions API alike; a
 * name taken already means this delivery started its execution before (a redelivery).
 */
export function sfnStarter(
  sfn: SFNClient,
  stateMachineArn: string,
): (request: StartRequest) => Promise<'started' | 'exists'> {
  return async ({ name, input }) => {
    try {
      await sfn.send(new StartExecutionCommand({ stateMachineArn, name, input: JSON.stringify(input) }));
      return 'started';
    } catch (err) {
      if (err instanceof ExecutionAlreadyExists) return 'exists';
      throw err;
    }
  };
}
