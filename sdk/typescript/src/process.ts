/** Background processes (docs/api.md, "Background processes"): exec(cmd, { background: true }). */
import { Execution } from "./models.js";
import type { StreamEvent } from "./sandbox.js";

/** The part of Sandbox a handle needs (internal calls). */
export interface ProcessHost {
  _call(method: string, suffix: string, payload?: unknown, query?: Record<string, string>, timeoutMs?: number): Promise<any>;
  _stream(method: string, suffix: string, query: Record<string, string>, terminal: Set<string>,
          signal: AbortSignal): AsyncGenerator<any>;
}

/** A process's state as the daemon reports it. */
export interface ProcessInfo {
  pid: number;
  id: number;
  state: "running" | "exited";
  stdin_open: boolean;
  pty: boolean;
  cmd: string | string[];
  cwd: string | null;
  started_at: string;
  ended_at?: string;
  exit_code?: number | null;
  killed_signal?: number | null;
  output: { bytes: number; held: number; evicted: number; buffer_limit: number; complete: boolean };
  [k: string]: unknown;
}

/**
 * A process that runs until it exits, is killed, or the sandbox ends, whoever
 * holds this handle. Iterate `output()` for its output (replayed from what the
 * daemon still holds, the last 1 MiB: a `dropped` event says what is gone).
 */
export class CommandHandle {
  readonly pid: number;
  info: ProcessInfo;
  constructor(private readonly sb: ProcessHost, info: ProcessInfo) {
    this.pid = info.pid;
    this.info = info;
  }

  private path(suffix = ""): string { return `/processes/${this.pid}${suffix}`; }

  /** Fresh state; with waitS, after waiting up to that long for its exit. */
  async refresh(waitS = 0): Promise<ProcessInfo> {
    this.info = await this.sb._call("GET", this.path(), undefined, waitS ? { wait_s: String(waitS) } : undefined,
      (waitS + 60) * 1000);
    return this.info;
  }

  /** Its output events from byte `from`, then live, then result and exit. */
  output(from = 0, signal: AbortSignal = new AbortController().signal): AsyncGenerator<StreamEvent> {
    return this.sb._stream("GET", this.path("/output"), from ? { from: String(from) } : {}, new Set(["exit"]), signal);
  }

  /**
   * Wait for it to end: its Execution (stdout/stderr as far as the daemon still
   * holds them; raw.output_complete says whether that is all). With timeoutS,
   * throws an Error if it still runs then (it keeps running).
   */
  async wait(opts: { timeoutS?: number; onStdout?: (s: string) => void; onStderr?: (s: string) => void } = {}): Promise<Execution> {
    if (opts.timeoutS !== undefined) {
      const info = await this.refresh(Math.max(1, Math.ceil(opts.timeoutS)));
      if (info.state === "running") throw new Error(`process ${this.pid} still runs after ${opts.timeoutS} s`);
    }
    let stdout = "", stderr = "";
    let d: Record<string, any> = {};
    for await (const ev of this.output()) {
      if (ev.type === "stdout") { stdout += ev.data ?? ""; opts.onStdout?.(ev.data ?? ""); }
      else if (ev.type === "stderr") { stderr += ev.data ?? ""; opts.onStderr?.(ev.data ?? ""); }
      else if (ev.type === "result") { d = { ...ev }; delete d.type; }
    }
    return new Execution({ ...d, stdout, stderr, results: [] });
  }

  /** Signal its process group (default SIGKILL); false if it had already exited. */
  async kill(signal: string | number = "SIGKILL"): Promise<boolean> {
    try {
      await this.sb._call("POST", this.path("/signal"), { signal });
      return true;
    } catch (e: any) {
      if (e?.status === 409) return false;
      throw e;
    }
  }

  async sendStdin(data: string | Uint8Array): Promise<void> {
    await this.sb._call("POST", this.path("/stdin"), { data: typeof data === "string" ? data : new TextDecoder().decode(data) });
  }

  /** Close its stdin (a pty gets ^D). */
  async closeStdin(): Promise<void> { await this.sb._call("POST", this.path("/stdin"), { eof: true }); }

  /** A pty process's window (SIGWINCH). */
  async resize(rows: number, cols: number): Promise<void> {
    await this.sb._call("POST", this.path("/resize"), { rows, cols });
  }
}

/** sb.processes: the sandbox's background processes. */
export class Processes {
  constructor(private readonly sb: ProcessHost) {}
  /** Oldest first; the last 16 exited ones are kept. */
  async list(opts: { runningOnly?: boolean } = {}): Promise<ProcessInfo[]> {
    return (await this.sb._call("GET", "/processes", undefined, opts.runningOnly ? { state: "running" } : undefined)).processes;
  }
  /** A handle to a process started earlier, by this client or another. */
  async connect(pid: number): Promise<CommandHandle> {
    return new CommandHandle(this.sb, await this.sb._call("GET", `/processes/${pid}`));
  }
}
