import {
  ExecutionAlreadyExists,
  ExecutionDoesNotExist,
  ExecutionNotRedrivable,
  InvalidArn,
  InvalidName,
  SFNServiceException,
  StateMachineDoesNotExist,
} from '@aws-sdk/client-sfn';
import { CliError, describeServiceError } from '../../cli/errors';
import { ExitCode } from '../../cli/exit-codes';

/** Every service error the CLI knows becomes one line with what to do, and the exit code that says whose fault it is. */

const service = (name: string, message: string) =>
  new SFNServiceException({ name, $fault: 'client', $metadata: {}, message });
const ARN = 'arn:aws:states:eu-west-1:111111111111:execution:shop:run-1';

describe('describeServiceError', () => {
  it.each<[string, unknown, ExitCode, string]>([
    [
      'ExecutionDoesNotExist',
      new ExecutionDoesNotExist({ $metadata: {}, message: `Execution Does Not Exist: '${ARN}'` }),
      ExitCode.ServiceError,
      `Execution Does Not Exist: '${ARN}': no such execution; list them with \`stepdeploy executions\``,
    ],
    [
      'ExecutionNotRedrivable',
      new ExecutionNotRedrivable({ $metadata: {}, message: 'Execution is SUCCEEDED' }),
      ExitCode.ServiceError,
      'Execution is SUCCEEDED; only a FAILED, TIMED_OUT or ABORTED execution can be redriven (see `stepdeploy executions`)',
    ],
    [
      'ExecutionAlreadyExists',
      new ExecutionAlreadyExists({ $metadata: {}, message: `Execution Already Exists: '${ARN}'` }),
      ExitCode.ServiceError,
      `Execution Already Exists: '${ARN}': execution names are unique for 90 days; pass another --name or leave it out for a generated one`,
    ],
    [
      'StateMachineDoesNotExist',
      new StateMachineDoesNotExist({ $metadata: {}, message: "State Machine Does Not Exist: 'x'" }),
      ExitCode.ServiceError,
      "State Machine Does Not Exist: 'x': check --state-machine-arn / STEPDEPLOY_STATE_MACHINE_ARN and the region (AWS_REGION, --region)",
    ],
    [
      'AccessDenied (S3)',
      service('AccessDenied', 'Access Denied'),
      ExitCode.ServiceError,
      "access denied: Access Denied; the caller needs the stack's operator policy (StartExecution, RedriveExecution, StopExecution, Describe*/List*/GetExecutionHistory on the state machine)",
    ],
    [
      'RequestExpired',
      service('RequestExpired', 'Request has expired'),
      ExitCode.ServiceError,
      'AWS credentials have expired (Request has expired); refresh them (e.g. `aws sso login`) and run the command again',
    ],
    [
      'CredentialsProviderError',
      Object.assign(new Error('Could not load credentials from any providers'), { name: 'CredentialsProviderError' }),
      ExitCode.ServiceError,
      'no valid AWS credentials (Could not load credentials from any providers); set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or use --local',
    ],
    [
      'InvalidArn',
      new InvalidArn({ $metadata: {}, message: "Invalid Arn: 'Invalid ARN prefix: run-1'" }),
      ExitCode.Usage,
      "Invalid Arn: 'Invalid ARN prefix: run-1': an execution is its full ARN (arn:aws:states:<region>:<account>:execution:<machine>:<name>) or a bare name; " +
        'the state machine (--state-machine-arn, STEPDEPLOY_STATE_MACHINE_ARN) is arn:aws:states:<region>:<account>:stateMachine:<name>',
    ],
    [
      'InvalidName',
      new InvalidName({ $metadata: {}, message: "Invalid Name: 'a b'" }),
      ExitCode.Usage,
      'Invalid Name: \'a b\'; use --name with letters, digits, "_" and "-" only (1-80 characters)',
    ],
    [
      'a missing region',
      new Error('Region is missing'),
      ExitCode.Usage,
      'no AWS region: set AWS_REGION (or a profile with a region), or pass --region',
    ],
    [
      'an unknown service error',
      service('ThrottlingException', 'Rate exceeded'),
      ExitCode.ServiceError,
      'ThrottlingException: Rate exceeded',
    ],
    ['a plain Error', new Error('  something broke \n'), ExitCode.ServiceError, 'something broke'],
    ['a thrown string', 'boom', ExitCode.ServiceError, 'boom'],
  ])('%s', (_case, err, exitCode, message) => {
    const described = describeServiceError(err);

    expect(described).toBeInstanceOf(CliError);
    expect({ message: described.message, exitCode: described.exitCode }).toEqual({ message, exitCode });
    if (err instanceof Error) expect(described.cause).toBe(err);
  });

  it.each([
    // What the SDK's HTTP handler throws when nothing listens, when the name does not resolve, when the peer drops the connection.
    ['ECONNREFUSED', Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:4599'), { code: 'ECONNREFUSED' })],
    ['ENOTFOUND', Object.assign(new Error('fetch failed'), { cause: { code: 'ENOTFOUND' } })],
    ['ECONNRESET', Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' })],
    ['TimeoutError', Object.assign(new Error('timed out'), { name: 'TimeoutError' })],
  ])('%s: cannot reach the endpoint it names, exit 3', (code, err) => {
    const described = describeServiceError(err, { endpoint: 'http://127.0.0.1:4599' });

    expect(described.message).toBe(
      `cannot reach http://127.0.0.1:4599 (${code}); is the endpoint right and is it running? (\`stepdeploy local serve\`)`,
    );
    expect(described.exitCode).toBe(ExitCode.ServiceError);
    expect(describeServiceError(err).message).toMatch(/^cannot reach the service \(/);
  });

  it('keeps a CliError as it is', () => {
    const err = new CliError('already described', ExitCode.Usage);

    expect(describeServiceError(err)).toBe(err);
  });
});
