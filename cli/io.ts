/**
 * Where a command writes. Commands never touch process.stdout directly, so tests capture output
 * and the live view can decide between redrawing (TTY) and plain lines.
 */
export interface Io {
  /** Writes text to standard output as it is (no newline added). */
  readonly out: (text: string) => void;
  /** Writes text to standard error as it is. */
  readonly err: (text: string) => void;
  /** Standard output is a terminal: the live view redraws in place. */
  readonly isTTY: boolean;
  /** Terminal width, for cutting long lines in the live view. */
  readonly columns?: number;
}

export function processIo(): Io {
  return {
    out: (text) => process.stdout.write(text),
    err: (text) => process.stderr.write(text),
    isTTY: process.stdout.isTTY === true,
    // Read at each redraw: the terminal may be resized while watching.
    get columns() {
      return process.stdout.columns;
    },
  };
}

export function println(io: Io, line = ''): void {
  io.out(`${line}\n`);
}

export function eprintln(io: Io, line = ''): void {
  io.err(`${line}\n`);
}
