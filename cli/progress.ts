import { describeCause } from '../shared/describe-cause';
import { durationOf, formatDuration, type ExecutionGraph, type StateStatus } from './graph';

export { describeCause };

/**
 * Prints an execution's progress as lines, one per change of a state or Map iteration: readable
 * in a terminal, in CI logs and when piped, and interleaves cleanly with streamed build log lines.
 */

const MARK: Record<StateStatus, string> = {
  PENDING: '·',
  RUNNING: '▶',
  SUCCEEDED: '✓',
  FAILED: '✗',
  TIMED_OUT: '✗',
  ABORTED: '■',
};

const WORD: Record<StateStatus, string> = {
  PENDING: 'pending',
  RUNNING: 'running',
  SUCCEEDED: 'succeeded',
  FAILED: 'failed',
  TIMED_OUT: 'timed out',
  ABORTED: 'aborted',
};

function oneLine(text: string | undefined, max = 300): string {
  if (!text) return '';
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > max ? `${flat.slice(0, max - 3)}...` : flat;
}

export function statusLine(indent: string, status: StateStatus, label: string, duration: string, detail = ''): string {
  return `${indent}${MARK[status]} ${label.padEnd(30 - indent.length)} ${WORD[status].padEnd(10)} ${duration.padStart(7)}${detail ? `  ${detail}` : ''}`;
}

export class ProgressPrinter {
  private readonly printed = new Map<string, StateStatus>();

  constructor(
    private readonly graph: ExecutionGraph,
    private readonly write: (line: string) => void,
  ) {}

  /** Call after applying events to the graph: prints what changed since the last call. */
  update(): void {
    for (const state of this.graph.states) {
      this.emit(
        state.name,
        state.status,
        '  ',
        state.name,
        state,
        state.status === 'FAILED' || state.status === 'TIMED_OUT'
          ? `${state.error ?? ''}: ${oneLine(describeCause(state.cause))}`
          : '',
      );
      for (const iteration of state.iterations) {
        // An iteration is named by its input (source or hook) once its first state starts.
        if (!iteration || (iteration.status === 'RUNNING' && iteration.current === undefined)) continue;
        this.emit(`${state.name}#${iteration.index}`, iteration.status, '    ', iteration.label, iteration, '');
      }
    }
  }

  private emit(
    key: string,
    status: StateStatus,
    indent: string,
    label: string,
    timing: { startedAt?: number; endedAt?: number },
    detail: string,
  ): void {
    if (status === 'PENDING' || this.printed.get(key) === status) return;
    // A redriven state runs again: print its new run.
    this.printed.set(key, status);
    const duration = status === 'RUNNING' ? '' : formatDuration(durationOf(timing));
    this.write(statusLine(indent, status, label, duration, detail));
  }

  /** Forget what was printed, so a redriven execution prints its states again. */
  reset(): void {
    this.printed.clear();
  }
}
