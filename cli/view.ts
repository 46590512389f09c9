import { durationOf, formatDuration, type ExecutionGraph, type StateView } from './graph';
import { describeCause, ProgressPrinter, statusLine } from './progress';
import type { FollowUpdate, RunningBuild } from './follow';
import { routeConsole } from './console-above';
import { println, type Io } from './io';

/**
 * How `watch` and `start --wait` show an execution: in a terminal, the whole graph redrawn in
 * place; piped or in CI, one line per change (ProgressPrinter); with --json, one event per line.
 */

export interface ViewContext {
  readonly executionName: string;
  readonly consoleUrl?: string;
}

function oneLine(text: string, max = 240): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > max ? `${flat.slice(0, max - 3)}...` : flat;
}

export function failureLine(state: Pick<StateView, 'error' | 'cause'>): string {
  return oneLine(`${state.error ?? 'failed'}${state.cause ? `: ${describeCause(state.cause)}` : ''}`);
}

export function buildLine(build: RunningBuild): string {
  const number = build.buildNumber !== undefined ? ` #${build.buildNumber}` : '';
  return `build ${build.projectName}${number} ${build.phase.toLowerCase()}${build.logLink ? `  log: ${build.logLink}` : ''}`;
}

/** The whole graph as lines: each state, Map iterations per source, running builds, the failure. */
export function renderGraph(
  graph: ExecutionGraph,
  context: ViewContext,
  builds: ReadonlyArray<RunningBuild> = [],
  now = Date.now(),
): string[] {
  const lines = [`execution ${context.executionName}  ${graph.status}  ${formatDuration(durationOf(graph, now))}`];
  for (const state of graph.states) {
    const running = state.status === 'RUNNING';
    lines.push(
      statusLine(
        '  ',
        state.status,
        state.name,
        formatDuration(durationOf(state, now)),
        running && state.attempts > 1 ? `attempt ${state.attempts}` : '',
      ),
    );
    for (const iteration of state.iterations) {
      if (!iteration) continue;
      const detail = iteration.status === 'RUNNING' && iteration.current ? iteration.current : '';
      lines.push(
        statusLine('    ', iteration.status, iteration.label, formatDuration(durationOf(iteration, now)), detail),
      );
    }
    for (const build of builds.filter((b) => b.state === state.name)) lines.push(`      ${buildLine(build)}`);
    if (state.status === 'FAILED' || state.status === 'TIMED_OUT') lines.push(`      ${failureLine(state)}`);
  }
  if (
    graph.status !== 'RUNNING' &&
    graph.status !== 'SUCCEEDED' &&
    !graph.states.some((s) => s.status === 'FAILED' || s.status === 'TIMED_OUT')
  ) {
    lines.push(`  ${failureLine(graph)}`);
  }
  if (context.consoleUrl) lines.push(`console: ${context.consoleUrl}`);
  return lines;
}

export interface ExecutionView {
  update(update: FollowUpdate): void;
  /** A line the in-process local runtime printed (a labelled build log line). */
  log(line: string): void;
  /** The execution is over (or the view stops): last output. */
  finish(): void;
}

/**
 * TTY: redraws the graph in place with plain ANSI (cursor up, clear to end); no dependency needed
 * for two escape codes. From the first draw to finish(), console output in this process (the
 * local runtime's tasks, when it runs in the CLI) is printed above the graph, which is then drawn
 * again below it.
 */
export class LiveView implements ExecutionView {
  private drawn = 0;
  private builds: ReadonlyArray<RunningBuild> = [];
  private restoreConsole: (() => void) | undefined;

  constructor(
    private readonly graph: ExecutionGraph,
    private readonly context: ViewContext,
    private readonly io: Io,
  ) {}

  update(update: FollowUpdate): void {
    this.builds = update.builds;
    this.restoreConsole ??= routeConsole((text, stream) => this.above(text, stream));
    this.draw();
  }

  log(line: string): void {
    this.above(`${line}\n`, 'stdout');
  }

  finish(): void {
    this.restoreConsole?.();
    this.restoreConsole = undefined;
    this.builds = [];
    this.draw();
  }

  /** Prints text where the graph is, then the graph again under it. */
  private above(text: string, stream: 'stdout' | 'stderr'): void {
    this.erase();
    if (stream === 'stdout') this.io.out(text);
    else this.io.err(text);
    this.draw();
  }

  private erase(): void {
    if (this.drawn > 0) this.io.out(`\x1b[${this.drawn}A\r\x1b[J`);
    this.drawn = 0;
  }

  private draw(): void {
    // A pseudo-terminal may report 0 columns: then assume a common width.
    const width = Math.max(20, (this.io.columns || 120) - 1);
    // Lines longer than the terminal wrap and would break the cursor-up count: cut them.
    const lines = renderGraph(this.graph, this.context, this.builds).map((l) =>
      l.length > width ? `${l.slice(0, width - 1)}…` : l,
    );
    const up = this.drawn > 0 ? `\x1b[${this.drawn}A\r\x1b[J` : '';
    this.io.out(`${up}${lines.join('\n')}\n`);
    this.drawn = lines.length;
  }
}

/** Not a TTY: a line per state change and per build phase, then the whole graph once at the end. */
export class LineView implements ExecutionView {
  private readonly printer: ProgressPrinter;
  private readonly phases = new Map<string, string>();

  constructor(
    private readonly graph: ExecutionGraph,
    private readonly context: ViewContext,
    private readonly io: Io,
  ) {
    this.printer = new ProgressPrinter(graph, (line) => println(io, line));
    if (context.consoleUrl) println(io, `console: ${context.consoleUrl}`);
  }

  update(update: FollowUpdate): void {
    if (update.events.some((e) => e.type === 'ExecutionRedriven')) {
      println(this.io, `execution ${this.context.executionName} redriven`);
      this.printer.reset();
    }
    this.printer.update();
    for (const build of update.builds) {
      if (this.phases.get(build.id) === build.phase) continue;
      this.phases.set(build.id, build.phase);
      println(this.io, `      ${buildLine(build)}`);
    }
  }

  log(line: string): void {
    println(this.io, line);
  }

  finish(): void {
    println(this.io);
    for (const line of renderGraph(this.graph, this.context)) println(this.io, line);
  }
}

/** --json: every history event as one JSON line, and a `BuildProgress` line when a running build changes phase. */
export class JsonView implements ExecutionView {
  private readonly phases = new Map<string, string>();

  constructor(private readonly io: Io) {}

  update(update: FollowUpdate): void {
    for (const event of update.events) println(this.io, JSON.stringify(event));
    for (const build of update.builds) {
      if (this.phases.get(build.id) === build.phase) continue;
      this.phases.set(build.id, build.phase);
      println(this.io, JSON.stringify({ type: 'BuildProgress', timestamp: new Date().toISOString(), ...build }));
    }
  }

  /** Standard output holds only JSON lines. */
  log(): void {}

  finish(): void {}
}

export function makeView(graph: ExecutionGraph, context: ViewContext, io: Io, json: boolean): ExecutionView {
  if (json) return new JsonView(io);
  return io.isTTY ? new LiveView(graph, context, io) : new LineView(graph, context, io);
}
