import type { Io } from '../../cli/io';

/** An Io that keeps what a command writes, for tests that run the CLI in process. */
export interface Captured extends Io {
  readonly stdout: () => string;
  readonly stderr: () => string;
}

export function capture(): Captured {
  let out = '';
  let err = '';
  return {
    out: (t) => {
      out += t;
    },
    err: (t) => {
      err += t;
    },
    isTTY: false,
    stdout: () => out,
    stderr: () => err,
  };
}
