/** The Sandbox class: one sealed sandbox on an airlockd (docs/api.md). */
import { Transport, ConnectionOptions, sha256Hex } from "./transport.js";
import { AirlockError, InvalidRequest, NotFound, SandboxTimeout, errorFromResponse } from "./errors.js";
import { Execution, EntryInfo, SandboxInfo } from "./models.js";

const GRACE_S = 30;
const DEFAULT_RUN_WAIT_S = 600;

export interface EgressPolicy { allow: string[] }

export interface EgressLogEntry {
  time_ms: number; method: string; host: string; port: number; address: string | null;
  bytes_out: number; bytes_in: number; duration_ms: number;
  verdict: "allowed" | "denied" | "failed" | "revoked"; reason: string;
}

export interface CreateOptions extends ConnectionOptions {
  template?: string;
  /** false: sealed (default); an allow-list (docs/egress.md): `{ allow: ["host:port", ...] }` */
  egress?: boolean | EgressPolicy;
  region?: string;
  /** sandbox lifetime, seconds (default 300) */
  timeout?: number;
  memoryMb?: number;
  cpus?: number;
  env?: Record<string, string>;
  metadata?: Record<string, string>;
  /** "jail" (namespaces) or "vm" (a QEMU microvm of its own); default: the daemon's */
  isolation?: "jail" | "vm";
}

/**
 * A streamed event (docs/api.md): stdout/stderr {data}; result (the Execution's
 * fields: exit_code, error {name,value,traceback} of the code, results, ...);
 * then the terminal exit {exit_code}, or error {error: {code, message}} when the
 * run itself failed (the iterator yields it; runCode throws its typed error).
 */
export interface StreamEvent {
  type: "stdout" | "stderr" | "result" | "exit" | "error" | string;
  data?: string;
  exit_code?: number;
  error?: any;
  results?: Record<string, unknown>[];
  [key: string]: unknown;
}

export interface RunCodeOptions {
  language?: "python" | "bash" | string;
  /** seconds; 0 = no per-call limit (default: the server's 60 s) */
  timeout?: number;
  onStdout?: (data: string) => void;
  onStderr?: (data: string) => void;
  onResult?: (result: Record<string, unknown>) => void;
  onError?: (error: { name: string; value: string; traceback: string }) => void;
}

export interface ExecOptions {
  env?: Record<string, string>;
  cwd?: string;
  stdin?: string | Uint8Array;
  timeout?: number;
}

const secs = (v: number) => Math.ceil(v);
const q = (id: string) => encodeURIComponent(id);
const waitMs = (timeout?: number) =>
  timeout === undefined ? DEFAULT_RUN_WAIT_S * 1000 : timeout === 0 ? undefined : (timeout + GRACE_S) * 1000;

function checkPath(path: string): string {
  if (typeof path !== "string") throw new TypeError("a sandbox path is a string");
  if (path.includes("\0")) throw new InvalidRequest(`path contains a NUL byte: ${JSON.stringify(path)}`, { code: "invalid_request" });
  if (!path.isWellFormed()) throw new InvalidRequest(`path is not valid UTF-8: ${JSON.stringify(path)}`, { code: "invalid_request" });
  return path;
}

/** `sb.files`: file operations inside the sandbox. */
export class Files {
  constructor(private readonly sb: Sandbox) {}
  /** Entries of a directory. */
  async list(path = "/home/user"): Promise<EntryInfo[]> {
    const d = await this.sb._call("GET", "/files/list", undefined, { path: checkPath(path) });
    return d.entries ?? [];
  }
  /** Remove a file, or a directory with everything in it (`recursive: false`:
   * only an empty one). A missing path is not an error: false then. */
  async remove(path: string, opts: { recursive?: boolean } = {}): Promise<boolean> {
    const query: Record<string, string> = {
      path: checkPath(path),
      recursive: opts.recursive === false ? "false" : "true",
    };
    const d = (await this.sb._call("DELETE", "/files", undefined, query)) as { deleted?: boolean };
    return d.deleted !== false;
  }
  /** Whether path exists (relative paths are under /home/user). */
  async exists(path: string): Promise<boolean> {
    checkPath(path);
    const abs = path.startsWith("/") ? path : "/home/user/" + path;
    const p = abs.replace(/\/+$/, "") || "/";
    const i = p.lastIndexOf("/");
    const name = p.slice(i + 1);
    if (!name) return true;
    const parent = p.slice(0, i) || "/";
    try {
      return (await this.list(parent)).some((e) => e.name === name);
    } catch (e) {
      if (e instanceof NotFound) return false;
      if (e instanceof AirlockError && e.code === "not_directory") return false;
      throw e;
    }
  }
  /** The content as bytes (checked against Content-Length and X-Content-SHA256). */
  read(path: string): Promise<Uint8Array> { return this.sb.download(path); }
  /** The content as UTF-8 text. */
  async readText(path: string): Promise<string> { return new TextDecoder().decode(await this.sb.download(path)); }
  write(path: string, data: string | Uint8Array): Promise<{ path: string; size: number }> { return this.sb.upload(data, path); }
}

export class Sandbox {
  readonly files: Files;
  private info_: SandboxInfo;
  private closed = false;

  private constructor(private readonly http: Transport, info: SandboxInfo) {
    this.info_ = info;
    this.files = new Files(this);
  }

  get id(): string { return this.info_.id; }
  /** The sandbox object as last read from the daemon. */
  get sandboxInfo(): SandboxInfo { return this.info_; }

  /** Create a sandbox (POST /v1/sandboxes). */
  static async create(opts: CreateOptions = {}): Promise<Sandbox> {
    const http = new Transport(opts);
    const body: Record<string, unknown> = { template: opts.template ?? "host", egress: typeof opts.egress === "object" && opts.egress !== null ? opts.egress : Boolean(opts.egress) };
    const fields: [string, unknown][] = [["region", opts.region], ["timeout_s", secs(opts.timeout ?? 300)],
      ["memory_mb", opts.memoryMb], ["cpus", opts.cpus], ["env", opts.env], ["metadata", opts.metadata],
      ["isolation", opts.isolation]];
    for (const [k, v] of fields) if (v !== undefined) body[k] = v;
    return new Sandbox(http, await http.requestJson("POST", "/v1/sandboxes", body));
  }

  /** Attach to an existing live sandbox. */
  static async connect(id: string, opts: ConnectionOptions = {}): Promise<Sandbox> {
    const http = new Transport(opts);
    const info: SandboxInfo = await http.requestJson("GET", "/v1/sandboxes/" + q(id));
    if (info.state !== "running") {
      const reason = (info.destroy_reason as string) ?? info.state;
      const msg = `sandbox ${id} is ${info.state} (${reason})`;
      if (reason === "expired") throw new SandboxTimeout(msg, { status: 410, code: "sandbox_expired" });
      throw new NotFound(msg, { status: 404, code: "not_found" });
    }
    return new Sandbox(http, info);
  }

  /** Live sandboxes. */
  static async list(opts: ConnectionOptions = {}): Promise<SandboxInfo[]> {
    const d = await new Transport(opts).requestJson("GET", "/v1/sandboxes");
    return d.sandboxes ?? [];
  }

  /** @internal */
  _call(method: string, suffix: string, payload?: unknown, query?: Record<string, string>, timeoutMs: number | undefined = 60_000): Promise<any> {
    return this.http.requestJson(method, "/v1/sandboxes/" + q(this.id) + suffix, payload, { query, timeoutMs });
  }

  /** The sandbox object, fresh from the daemon. */
  async getInfo(): Promise<SandboxInfo> {
    this.info_ = await this.http.requestJson("GET", "/v1/sandboxes/" + q(this.id));
    return this.info_;
  }

  /** Destroy the sandbox. Idempotent; a sandbox already gone is not an error. */
  async kill(): Promise<void> {
    if (this.closed) return;
    try {
      await this.http.requestJson("DELETE", "/v1/sandboxes/" + q(this.id));
    } catch (e) {
      if (!(e instanceof NotFound || e instanceof SandboxTimeout)) throw e;
    }
    this.closed = true;
  }
  close(): Promise<void> { return this.kill(); }

  /** Destroy the sandbox `seconds` from now (instead of at its old expiry). */
  async setTimeout(seconds: number): Promise<SandboxInfo> {
    this.info_ = await this._call("POST", "/timeout", { timeout_s: secs(seconds) });
    return this.info_;
  }

  /** Write `data` (bytes, or a string as UTF-8) to `path`; its sha256 goes along (X-Content-SHA256). */
  async upload(data: string | Uint8Array, path: string): Promise<{ path: string; size: number }> {
    const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
    return this.http.requestJson("PUT", "/v1/sandboxes/" + q(this.id) + "/files", undefined, {
      query: { path: checkPath(path) }, body: bytes,
      headers: { "Content-Type": "application/octet-stream", "X-Content-SHA256": await sha256Hex(bytes) },
      timeoutMs: Math.max(60_000, bytes.length / 5e3),
    });
  }

  /** The content of `path`; a short download throws TransferError, a corrupted one IntegrityError. */
  download(path: string): Promise<Uint8Array> {
    return this.http.requestBytes("GET", "/v1/sandboxes/" + q(this.id) + "/files", {
      query: { path: checkPath(path) }, timeoutMs: 300_000,
    });
  }

  private codeBody(code: string, o: RunCodeOptions) {
    const body: Record<string, unknown> = { code, language: o.language ?? "python" };
    if (o.timeout !== undefined) body.timeout_s = secs(o.timeout);
    return body;
  }

  /** Events as they happen; `exit` or `error` ends the stream (a cut stream throws TransferError). */
  runCodeStream(code: string, opts: RunCodeOptions = {}): AsyncGenerator<StreamEvent> {
    return this.http.streamLines("POST", "/v1/sandboxes/" + q(this.id) + "/code", this.codeBody(code, opts),
      new Set(["exit", "error"]), { timeoutMs: waitMs(opts.timeout) });
  }

  /**
   * Run code in the sandbox's persistent Python REPL (or bash). With any of the
   * on* callbacks, the run is streamed and the callbacks fire as output arrives;
   * the Execution is the same either way.
   */
  async runCode(code: string, opts: RunCodeOptions = {}): Promise<Execution> {
    if (!(opts.onStdout || opts.onStderr || opts.onResult || opts.onError))
      return new Execution(await this._call("POST", "/code", this.codeBody(code, opts), undefined, waitMs(opts.timeout)));
    let stdout = "", stderr = "";
    let d: Record<string, any> = {};
    for await (const ev of this.runCodeStream(code, opts)) {
      if (ev.type === "stdout") { stdout += ev.data ?? ""; opts.onStdout?.(ev.data ?? ""); }
      else if (ev.type === "stderr") { stderr += ev.data ?? ""; opts.onStderr?.(ev.data ?? ""); }
      else if (ev.type === "result") {
        d = { ...ev };
        delete d.type;
        for (const r of d.results ?? []) opts.onResult?.(r);
        if (d.error) opts.onError?.(d.error);
      } else if (ev.type === "error") {
        // a failure of the run itself (not of the code): the daemon's error object
        const e = (ev.error ?? {}) as { code?: string; message?: string };
        throw errorFromResponse(500, JSON.stringify({ error: e }));
      }
    }
    const results = d.results ?? [];
    return new Execution({ ...d, stdout, stderr, results });
  }

  /** Run a command: an argv array, or a string run by the shell. */
  async exec(cmd: string | string[], opts: ExecOptions = {}): Promise<Execution> {
    const body: Record<string, unknown> = { cmd: Array.isArray(cmd) ? cmd.map(String) : cmd };
    if (opts.env !== undefined) body.env = opts.env;
    if (opts.cwd !== undefined) body.cwd = opts.cwd;
    if (opts.stdin !== undefined) body.stdin = typeof opts.stdin === "string" ? opts.stdin : new TextDecoder().decode(opts.stdin);
    if (opts.timeout !== undefined) body.timeout_s = secs(opts.timeout);
    return new Execution(await this._call("POST", "/exec", body, undefined, waitMs(opts.timeout)));
  }

  /** The sandbox's audit trail. */
  async logs(): Promise<unknown[]> { return (await this._call("GET", "/logs")).events ?? []; }

  /** The egress allow-list (409 egress_sealed for a sealed sandbox). */
  async egress(): Promise<EgressPolicy> { return await this._call("GET", "/egress"); }

  /** Replace the allow-list at once; open connections it no longer allows are closed. */
  async setEgress(allow: string[] | EgressPolicy): Promise<EgressPolicy & { closed: number }> {
    return await this._call("PUT", "/egress", Array.isArray(allow) ? { allow } : allow);
  }

  /** Every connection through the egress proxy, allowed or denied, oldest first. */
  async egressLog(): Promise<EgressLogEntry[]> { return (await this._call("GET", "/egress/log")).entries ?? []; }
}
