import { ExitCode } from './exit-codes';

/**
 * An error the CLI reports as one line (what, the value, the fix) with its exit code.
 * `details` is shown only with --debug.
 */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: ExitCode,
    options?: ErrorOptions & { readonly details?: string },
  ) {
    super(message, options);
    this.name = 'CliError';
    this.details = options?.details;
  }

  readonly details?: string;
}

export function usageError(message: string): CliError {
  return new CliError(message, ExitCode.Usage);
}

interface AwsLikeError {
  readonly name?: string;
  readonly message?: string;
  readonly code?: string;
  readonly $metadata?: { readonly httpStatusCode?: number; readonly requestId?: string };
}

/**
 * AWS SDK errors (and the local runtime's, which carry the same codes) as one line a person can
 * act on. Anything unknown keeps its name and message: hiding it would help nobody.
 */
export function describeServiceError(err: unknown, context: { readonly endpoint?: string } = {}): CliError {
  if (err instanceof CliError) return err;
  const e = (err ?? {}) as AwsLikeError;
  const name = e.name ?? 'Error';
  const message = (e.message ?? String(err)).trim();
  const wrap = (text: string, code = ExitCode.ServiceError): CliError => new CliError(text, code, { cause: err });
  switch (name) {
    case 'ExecutionDoesNotExist':
      return wrap(`${message}: no such execution; list them with \`stepdeploy executions\``);
    case 'ExecutionNotRedrivable':
      return wrap(
        `${message}; only a FAILED, TIMED_OUT or ABORTED execution can be redriven (see \`stepdeploy executions\`)`,
      );
    case 'ExecutionAlreadyExists':
      return wrap(
        `${message}: execution names are unique for 90 days; pass another --name or leave it out for a generated one`,
      );
    case 'StateMachineDoesNotExist':
      return wrap(
        `${message}: check --state-machine-arn / STEPDEPLOY_STATE_MACHINE_ARN and the region (AWS_REGION, --region)`,
      );
    case 'AccessDeniedException':
    case 'AccessDenied':
    case 'UnauthorizedOperation':
      return wrap(
        `access denied: ${message}; the caller needs the stack's operator policy (StartExecution, RedriveExecution, StopExecution, Describe*/List*/GetExecutionHistory on the state machine)`,
      );
    case 'ExpiredToken':
    case 'ExpiredTokenException':
    case 'RequestExpired':
      return wrap(
        `AWS credentials have expired (${message}); refresh them (e.g. \`aws sso login\`) and run the command again`,
      );
    case 'CredentialsProviderError':
    case 'UnrecognizedClientException':
    case 'InvalidClientTokenId':
    case 'InvalidSignatureException':
      return wrap(
        `no valid AWS credentials (${message}); set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or use --local`,
      );
    case 'InvalidArn':
      return wrap(
        `${message}: an execution is its full ARN (arn:aws:states:<region>:<account>:execution:<machine>:<name>) or a bare name; ` +
          'the state machine (--state-machine-arn, STEPDEPLOY_STATE_MACHINE_ARN) is arn:aws:states:<region>:<account>:stateMachine:<name>',
        ExitCode.Usage,
      );
    case 'InvalidName':
      return wrap(`${message}; use --name with letters, digits, "_" and "-" only (1-80 characters)`, ExitCode.Usage);
    default:
      break;
  }
  if (/region is missing/i.test(message)) {
    return wrap('no AWS region: set AWS_REGION (or a profile with a region), or pass --region', ExitCode.Usage);
  }
  const code = e.code ?? (err as { cause?: { code?: string } })?.cause?.code;
  if (code === 'ECONNREFUSED' || code === 'ENOTFOUND' || code === 'ECONNRESET' || name === 'TimeoutError') {
    return wrap(
      `cannot reach ${context.endpoint ?? 'the service'} (${code ?? name}); is the endpoint right and is it running? (\`stepdeploy local serve\`)`,
    );
  }
  return wrap(`${name === 'Error' ? '' : `${name}: `}${message}`);
}
