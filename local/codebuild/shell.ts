import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { StringDecoder } from 'node:string_decoder';

/**
 * One shell process per build, fed through its stdin, as CodeBuild v0.2 runs a build in one
 * shell session. Each command runs in a subshell of that session (so `exit 1` fails the
 * command, not the session); an EXIT trap saves the exported environment and working directory,
 * which the session then takes over, so `export` and `cd` persist from command to command and
 * from phase to phase. Commands read from /dev/null: they can never consume the driver's input.
 */

export type ShellName = 'bash' | '/bin/sh';

export interface ShellOptions {
  readonly shell: ShellName;
  readonly cwd: string;
  readonly env: Readonly<Record<string, string>>;
  /** Scratch directory for command files and saved state (not the source directory). */
  readonly driverDir: string;
  readonly onLine: (line: string, stream: 'stdout' | 'stderr') => void;
}

export interface SessionEnd {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export type CommandOutcome = { readonly exitCode: number } | { readonly ended: SessionEnd };

interface Pending {
  readonly seq: number;
  rc?: number;
  stdoutSeen: boolean;
  stderrSeen: boolean;
  readonly resolve: (outcome: CommandOutcome) => void;
}

export class ShellSession {
  private readonly child: ChildProcess;
  private readonly nonce = randomBytes(8).toString('hex');
  private seq = 0;
  private pending: Pending | undefined;
  private endInfo: SessionEnd | undefined;
  /** stdout and stderr until each has ended. */
  private openStreams = 0;
  private exited: SessionEnd | undefined;
  private readonly endWaiters: Array<(end: SessionEnd) => void> = [];
  private readonly restoreEnv: string;

  constructor(private readonly options: ShellOptions) {
    mkdirSync(options.driverDir, { recursive: true });
    const bash = options.shell === 'bash';
    const state = q(join(options.driverDir, 'state.env'));
    const cwd = q(join(options.driverDir, 'state.cwd'));
    const names = q(join(options.driverDir, 'state.names'));
    // Sourcing the saved state stays at top level, not in a function: bash's `declare -x` inside
    // a function would make locals. Unsetting (globals) and cd work from functions. In bash the
    // exported names are listed into a file and read back with the `read` builtin (bash 3.2 has
    // it; mapfile needs 4): `$(compgen -e)` forked a subshell per command, about a third of a
    // command's cost on a machine where fork is slow. `return 0`: a read-only variable's unset
    // fails, and the state must be sourced all the same.
    const unsetExported = bash
      ? `compgen -e > ${names}; while IFS= read -r __sd_v; do unset "$__sd_v" 2>/dev/null; done < ${names}; return 0`
      : `for __sd_v in $(awk 'BEGIN{for(k in ENVIRON)print k}'); do unset "$__sd_v" 2>/dev/null; done; return 0`;
    this.restoreEnv = `__sd_unset && . ${state} 2>/dev/null; __sd_cd\n`;

    this.child = spawn(bash ? 'bash' : '/bin/sh', bash ? ['--noprofile', '--norc', '-s'] : ['-s'], {
      cwd: options.cwd,
      env: { ...options.env },
      // Its own process group: a timeout or stop kills the session and everything it started.
      detached: true,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    this.child.stdin?.on('error', () => undefined);
    this.attach(this.child.stdout, 'stdout');
    this.attach(this.child.stderr, 'stderr');
    this.child.on('exit', (code, signal) => {
      // Let the pipes drain what the session wrote before it ended: as soon as both have closed,
      // or after 50 ms when a background process it started still holds them open.
      this.exited = { code, signal };
      if (this.openStreams === 0) this.onEnd(this.exited);
      else setTimeout(() => this.onEnd({ code, signal }), 50);
    });
    this.child.on('error', () => this.onEnd({ code: null, signal: null }));
    this.write(
      `__sd_save() { export -p > ${state}; pwd > ${cwd}; }\n` +
        `__sd_unset() { [ -f ${state} ] || return 1; ${unsetExported}; }\n` +
        `__sd_mark() { printf '\\036%s:%s:%s\\n' ${this.nonce} "$1" "$__sd_rc"; printf '\\036%s:%s:\\n' ${this.nonce} "$1" >&2; }\n` +
        `__sd_cd() { if [ -f ${cwd} ]; then read -r __sd_cwd < ${cwd}; cd -- "$__sd_cwd" 2>/dev/null; fi; }\n`,
    );
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** Runs one buildspec command; resolves with its exit code, or how the session ended. */
  run(command: string): Promise<CommandOutcome> {
    const seq = ++this.seq;
    const file = join(this.options.driverDir, `command-${seq}.sh`);
    writeFileSync(file, `${command}\n`);
    return this.send(seq, `( trap __sd_save EXIT; . ${q(file)} ) </dev/null\n__sd_rc=$?\n${this.restoreEnv}`);
  }

  /** Sets an exported variable in the session (e.g. CODEBUILD_BUILD_SUCCEEDING=0). */
  async setVariable(name: string, value: string): Promise<void> {
    await this.send(++this.seq, `export ${name}=${q(value)}\n__sd_rc=0\n`);
  }

  /** Reads exported or shell variables as the session holds them now; unset ones are absent. */
  async readVariables(names: ReadonlyArray<string>): Promise<Record<string, string>> {
    const seq = ++this.seq;
    const dir = join(this.options.driverDir, `vars-${seq}`);
    mkdirSync(dir, { recursive: true });
    const script = names
      .map((n, i) => `if [ -n "\${${n}+x}" ]; then printf '%s' "$${n}" > ${q(join(dir, String(i)))}; fi\n`)
      .join('');
    const outcome = await this.send(seq, `${script}__sd_rc=0\n`);
    if ('ended' in outcome) return {};
    const out: Record<string, string> = {};
    names.forEach((n, i) => {
      const file = join(dir, String(i));
      if (existsSync(file)) out[n] = readFileSync(file, 'utf8');
    });
    return out;
  }

  /** Ends the session: closes its input, then kills whatever it left running. */
  async close(): Promise<SessionEnd> {
    this.child.stdin?.end();
    const end = await Promise.race([this.ended(), delay(2000).then(() => undefined)]);
    this.kill('SIGKILL');
    return end ?? this.ended();
  }

  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    const pid = this.child.pid;
    if (pid === undefined) return;
    try {
      process.kill(-pid, signal);
    } catch {
      // The group is already gone.
    }
  }

  ended(): Promise<SessionEnd> {
    if (this.endInfo) return Promise.resolve(this.endInfo);
    return new Promise((resolve) => this.endWaiters.push(resolve));
  }

  private send(seq: number, script: string): Promise<CommandOutcome> {
    if (this.endInfo) return Promise.resolve({ ended: this.endInfo });
    const marker = `__sd_mark ${seq}\n`;
    return new Promise((resolve) => {
      this.pending = { seq, stdoutSeen: false, stderrSeen: false, resolve };
      this.write(script + marker);
    });
  }

  private write(text: string): void {
    if (!this.endInfo) this.child.stdin?.write(text);
  }

  private attach(stream: NodeJS.ReadableStream | null, name: 'stdout' | 'stderr'): void {
    if (!stream) return;
    const decoder = new StringDecoder('utf8');
    let buffer = '';
    const markerRe = new RegExp(`\\x1e${this.nonce}:(\\d+):(\\d*)$`);
    const flushLine = (line: string): void => {
      const m = markerRe.exec(line);
      if (!m) {
        this.options.onLine(line, name);
        return;
      }
      const prefix = line.slice(0, m.index);
      if (prefix !== '') this.options.onLine(prefix, name);
      this.onMarker(Number(m[1]), name, m[2] === '' ? undefined : Number(m[2]));
    };
    stream.on('data', (chunk: Buffer) => {
      buffer += decoder.write(chunk);
      let nl = buffer.indexOf('\n');
      while (nl >= 0) {
        flushLine(buffer.slice(0, nl));
        buffer = buffer.slice(nl + 1);
        nl = buffer.indexOf('\n');
      }
    });
    this.openStreams += 1;
    stream.on('end', () => {
      buffer += decoder.end();
      if (buffer !== '') flushLine(buffer);
      buffer = '';
      this.openStreams -= 1;
      if (this.openStreams === 0 && this.exited) this.onEnd(this.exited);
    });
  }

  private onMarker(seq: number, stream: 'stdout' | 'stderr', rc: number | undefined): void {
    const p = this.pending;
    if (!p || p.seq !== seq) return;
    if (stream === 'stdout') {
      p.stdoutSeen = true;
      p.rc = rc;
    } else p.stderrSeen = true;
    if (p.stdoutSeen && p.stderrSeen) {
      this.pending = undefined;
      p.resolve({ exitCode: p.rc ?? 1 });
    }
  }

  private onEnd(end: SessionEnd): void {
    if (this.endInfo) return;
    this.endInfo = end;
    const p = this.pending;
    this.pending = undefined;
    if (p) {
      if (p.stdoutSeen && p.rc !== undefined) p.resolve({ exitCode: p.rc });
      else p.resolve({ ended: end });
    }
    for (const w of this.endWaiters.splice(0)) w(end);
  }
}

/** Quotes a value for the shell: single quotes, with embedded ones closed and escaped. */
export function q(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
