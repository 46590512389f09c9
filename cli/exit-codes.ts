/** Exit codes of every `stepdeploy` command (printed in --help). */
export enum ExitCode {
  /** The command did what it was asked; for --wait, the execution SUCCEEDED. */
  Ok = 0,
  /** The execution ended FAILED, TIMED_OUT or ABORTED. */
  ExecutionFailed = 1,
  /** Bad usage or bad input: nothing was started. */
  Usage = 2,
  /** AWS (or the local runtime) refused or could not be reached. */
  ServiceError = 3,
  /** Interrupted (Ctrl-C). */
  Interrupted = 130,
}

export const EXIT_CODES_HELP = `Exit codes:
  0    success (with --wait: the execution SUCCEEDED)
  1    the execution ended FAILED, TIMED_OUT or ABORTED
  2    bad usage or invalid input: nothing was started
  3    AWS or the local runtime refused the call or could not be reached
  130  interrupted`;
