/** The Sandbox class: one sealed sandbox on an airlockd (docs/api.md). */
import { CommandHandle, Processes } from "./process.js";
import { Transport, ConnectionOptions, sha256Hex } from "./transport.js";
import { AirlockError, InvalidRequest, NotFound, SandboxTimeout, errorFromResponse } from "./errors.js";
import { Execution, EntryInfo, FilesDiff, SandboxInfo } from "./models.js";

const GRACE_S = 30;
const DEFAULT_RUN_WAIT_S = 600;

export interface EgressPolicy { allow: string[]; /** in answers: true for open egress */ open?: boolean }

export interface EgressLogEntry {
  time_ms: number; method: string; host: string; port: number; address: string | null;
  bytes_out: number; bytes_in: number; duration_ms: number;
  verdict: "allowed" | "denied" | "failed" | "revoked"; reason: string;
}

export interface CreateOptions extends ConnectionOptions {
  template?: string;
  /** false: sealed (default); an allow-list (docs/egress.md): `{ allow: ["host:port", ...] }`; true: open egress */
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

/** A code context: an independent REPL in the sandbox (createCodeContext). */
export interface CodeContext {
  id: string;
  language: string;
  cwd: string;
  /** the sandbox's first REPL, which cannot be removed */
  default?: boolean;
}

export interface RunCodeOptions {
  /** "python", "bash", "r" or "javascript" (the server checks; any string is sent) */
  language?: "python" | "bash" | "r" | "javascript" | string;
  /** run in this code context (its REPL, its language) */
  context?: CodeContext | string;
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
  /** Start it and return a CommandHandle at once (docs/api.md, "Background processes"). */
  background?: boolean;
  /** Run it on a terminal: true (24x80) or its size. */
  pty?: boolean | { rows?: number; cols?: number };
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

/** A directory's event (files.watchDir): create, write, remove, rename,
 * chmod, overflow; end (the directory went) or error (the sandbox did) last. */
export interface WatchEvent {
  type: "create" | "write" | "remove" | "rename" | "chmod" | "overflow" | "end" | "error" | string;
  path?: string;
  is_dir?: boolean;
  reason?: string;
  error?: { code: string; message: string };
  seq: number;
  ts: string;
  [key: string]: unknown;
}

/** A watch in place: iterate it (`for await`) for events; stop() ends it. */
export class WatchHandle implements AsyncIterable<WatchEvent> {
  private stopped = false;
  constructor(readonly path: string, readonly recursive: boolean,
              private readonly events: AsyncGenerator<WatchEvent>, private readonly abort: AbortController) {}
  async *[Symbol.asyncIterator](): AsyncGenerator<WatchEvent> {
    try {
      for (;;) {
        const r = await this.events.next();
        if (r.done) return;
        yield r.value;
        if (r.value.type === "end" || r.value.type === "error") return;
      }
    } catch (e) {
      if (!this.stopped) throw e; // a stop() aborts the read under way: not an error
    } finally {
      this.stop();
    }
  }
  /** End the watch (the daemon cancels it when the connection closes). */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.abort.abort();
    this.events.return(undefined).catch(() => {}); // runs the stream's cleanup once its read settles
  }
}

/** `sb.files`: file operations inside the sandbox. */
export class Files {
  constructor(private readonly sb: Sandbox) {}
  /** Entries of a directory, each with getInfo's fields. `depth` > 1 lists
   * subdirectories too, each followed by its own entries (`path` tells them
   * apart); symlinks are listed, never followed. */
  async list(path = "/home/user", opts: { depth?: number } = {}): Promise<EntryInfo[]> {
    const query: Record<string, string> = { path: checkPath(path) };
    if (opts.depth !== undefined && opts.depth !== 1) query.depth = String(Math.trunc(opts.depth));
    const d = await this.sb._call("GET", "/files/list", undefined, query);
    return d.entries ?? [];
  }
  /** What path is, without following a symlink (NotFound if nothing is there). */
  async getInfo(path: string): Promise<EntryInfo> {
    return (await this.sb._call("GET", "/files/info", undefined, { path: checkPath(path) })) as EntryInfo;
  }
  /** Watch a directory: resolves once the watch is in place (a change made
   * after that is reported), to a handle to iterate for events. */
  async watchDir(path: string, opts: { recursive?: boolean } = {}): Promise<WatchHandle> {
    const query: Record<string, string> = { path: checkPath(path) };
    if (opts.recursive) query.recursive = "true";
    const abort = new AbortController();
    const events = this.sb._stream("GET", "/files/watch", query, new Set(["end", "error"]), abort.signal);
    const first = await events.next();
    if (first.done) throw new InvalidRequest("the watch stream ended before it was ready", { code: "internal" });
    return new WatchHandle(first.value.path, first.value.recursive === true, events, abort);
  }
  /** Create a directory and its missing parents: true if this call created
   * it, false if it was there (a file in the way is a 409 `exists` error). */
  async makeDir(path: string): Promise<boolean> {
    const d = (await this.sb._call("POST", "/files/mkdir", undefined, { path: checkPath(path) })) as { created?: boolean };
    return d.created === true;
  }
  /** Move a file or directory within the writable trees (missing parents of
   * newPath are made). An existing newPath is a 409 `exists` error unless
   * `overwrite`. Returns newPath's info. */
  async rename(oldPath: string, newPath: string, opts: { overwrite?: boolean } = {}): Promise<EntryInfo> {
    const query: Record<string, string> = { path: checkPath(oldPath), to: checkPath(newPath) };
    if (opts.overwrite) query.overwrite = "true";
    return (await this.sb._call("POST", "/files/rename", undefined, query)) as EntryInfo;
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
  /** Whether path exists (relative paths are under /home/user; a symlink
   * exists even when its target does not). */
  async exists(path: string): Promise<boolean> {
    try {
      await this.getInfo(path);
      return true;
    } catch (e) {
      if (e instanceof NotFound) return false;
      if (e instanceof AirlockError && e.code === "not_directory") return false;
      throw e;
    }
  }
  /** The content as bytes (checked against Content-Length and X-Content-SHA256). */
  read(path: string, opts: { gzip?: boolean } = {}): Promise<Uint8Array> { return this.sb.download(path, opts); }
  /** The content as UTF-8 text. */
  async readText(path: string): Promise<string> { return new TextDecoder().decode(await this.sb.download(path)); }
  write(path: string, data: string | Uint8Array, opts: { gzip?: boolean } = {}): Promise<{ path: string; size: number }> {
    return this.sb.upload(data, path, opts);
  }
  /** Several files in one request (multipart/form-data, one part per file,
   * its filename the path): written in order, each whole or absent; the
   * first that fails throws, the ones before it written. No per-part
   * sha256 (unlike write). */
  async writeFiles(files: { path: string; data: string | Uint8Array }[]): Promise<{ path: string; size: number }[]> {
    const form = new FormData();
    for (const f of files) {
      const path = checkPath(f.path);
      if (/["\r\n]/.test(path))
        throw new InvalidRequest(`a path with a double quote or a line break cannot be a multipart filename: ${JSON.stringify(path)}`, { code: "invalid_request" });
      const bytes = typeof f.data === "string" ? new TextEncoder().encode(f.data) : f.data;
      form.append("file", new Blob([bytes as BlobPart], { type: "application/octet-stream" }), path);
    }
    // Response encodes the form (boundary and all) the way fetch would send it
    const req = new Response(form);
    const body = new Uint8Array(await req.arrayBuffer());
    const d = await this.sb._raw("POST", "/files", body, req.headers.get("content-type")!);
    return d.files ?? [];
  }
}

function ctxId(context: CodeContext | string): string {
  const id = typeof context === "string" ? context : context?.id;
  if (typeof id !== "string" || id === "") throw new TypeError("context must be a CodeContext or its id");
  return id;
}

export class Sandbox {
  readonly files: Files;
  readonly processes: Processes;
  private info_: SandboxInfo;
  private closed = false;

  private constructor(private readonly http: Transport, info: SandboxInfo) {
    this.info_ = info;
    this.files = new Files(this);
    this.processes = new Processes(this);
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

  /** Attach to an existing live sandbox, resuming it if it is paused (as E2B's connect does). */
  static async connect(id: string, opts: ConnectionOptions = {}): Promise<Sandbox> {
    const http = new Transport(opts);
    let info: SandboxInfo = await http.requestJson("GET", "/v1/sandboxes/" + q(id));
    if (info.state === "paused") info = await http.requestJson("POST", "/v1/sandboxes/" + q(id) + "/resume");
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
  /** @internal an NDJSON stream read with GET (files.watchDir) */
  _stream(method: string, suffix: string, query: Record<string, string>, terminal: Set<string>,
          signal: AbortSignal): AsyncGenerator<any> {
    return this.http.streamLines(method, "/v1/sandboxes/" + q(this.id) + suffix, undefined, terminal, { query, signal });
  }
  /** @internal a raw body (files.writeFiles' multipart form), answered with JSON */
  _raw(method: string, suffix: string, body: Uint8Array, contentType: string): Promise<any> {
    return this.http.requestJson(method, "/v1/sandboxes/" + q(this.id) + suffix, undefined, {
      body, headers: { "Content-Type": contentType }, timeoutMs: Math.max(60_000, body.length / 5e3),
    });
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

  /** Pause: the sandbox's processes stop where they stand (no CPU); memory, files and REPL state are kept and
   * its lifetime clock stops (the daemon's --max-paused bounds a pause). Calls that need the sandbox throw
   * SandboxPaused until resume(). Pausing a paused sandbox is a no-op; SandboxBusy while a call runs. */
  async pause(): Promise<SandboxInfo> {
    this.info_ = await this._call("POST", "/pause");
    return this.info_;
  }

  /** Let a paused sandbox run on where it stopped; a no-op when it runs. */
  async resume(): Promise<SandboxInfo> {
    this.info_ = await this._call("POST", "/resume");
    return this.info_;
  }

  /** Destroy the sandbox `seconds` from now (instead of at its old expiry). */
  async setTimeout(seconds: number): Promise<SandboxInfo> {
    this.info_ = await this._call("POST", "/timeout", { timeout_s: secs(seconds) });
    return this.info_;
  }

  /** Branch this sandbox into `n` (1..32) new ones (docs/api.md, `POST /v1/sandboxes/{id}/fork`). Each child has
   * this sandbox's template, limits, egress policy and owner, its own id and lifetime; `forkState`
   * says what it holds: "full" (vm: REPL, processes, files) or "files" (jail: a copy of /tmp, /data,
   * /home/user, fresh REPL). Kill each child yourself. */
  async fork(n = 1): Promise<Sandbox[]> {
    const d = await this._call("POST", "/fork", { n }, undefined, 300_000);
    return (d.sandboxes ?? []).map((info: SandboxInfo) => {
      const kid = new Sandbox(new Transport({ baseUrl: this.http.baseUrl, apiKey: this.http.apiKey }), info);
      kid.forkState = (info.fork_state as string) ?? d.state;
      return kid;
    });
  }

  /** "full" or "files" for a child returned by fork(), undefined otherwise. */
  forkState?: string;

  /** Files added, removed and changed in `other` relative to this sandbox (one fork family). */
  async diff(other: Sandbox | string): Promise<FilesDiff> {
    return this._call("GET", "/diff/" + q(typeof other === "string" ? other : other.id), undefined, undefined, 300_000);
  }

  /** Commit this sandbox's files into `parent` (one fork family); this sandbox is destroyed. */
  async mergeInto(parent: Sandbox | string): Promise<{ id: string; merged_from: string; state: string; files: number; bytes: number }> {
    const d = await this._call("POST", "/merge_into/" + q(typeof parent === "string" ? parent : parent.id),
      undefined, undefined, 300_000);
    this.closed = true;
    if (typeof parent !== "string" && d.sandbox) parent.info_ = d.sandbox;
    return d;
  }

  /** Write `data` (bytes, or a string as UTF-8) to `path`; its sha256 goes along (X-Content-SHA256). */
  /** Write data to path. `gzip: true` sends it compressed (Content-Encoding: gzip; the daemon inflates it and
   * the sha256 is still of the content). */
  async upload(data: string | Uint8Array, path: string, opts: { gzip?: boolean } = {}): Promise<{ path: string; size: number }> {
    const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
    const headers: Record<string, string> = { "Content-Type": "application/octet-stream", "X-Content-SHA256": await sha256Hex(bytes) };
    let body = bytes;
    if (opts.gzip) {
      const gz = new Blob([bytes as BlobPart]).stream().pipeThrough(new CompressionStream("gzip"));
      body = new Uint8Array(await new Response(gz).arrayBuffer());
      headers["Content-Encoding"] = "gzip";
    }
    return this.http.requestJson("PUT", "/v1/sandboxes/" + q(this.id) + "/files", undefined, {
      query: { path: checkPath(path) }, body, headers, timeoutMs: Math.max(60_000, bytes.length / 5e3),
    });
  }

  /** The content of `path`; a short download throws TransferError, a corrupted one IntegrityError.
   * `gzip: true` has it compressed on the way (fetch inflates it); by default it comes as it is, since
   * fetch would otherwise ask for gzip on every download and the daemon would spend CPU on it. */
  download(path: string, opts: { gzip?: boolean } = {}): Promise<Uint8Array> {
    return this.http.requestBytes("GET", "/v1/sandboxes/" + q(this.id) + "/files", {
      query: { path: checkPath(path) }, timeoutMs: 300_000,
      headers: { "Accept-Encoding": opts.gzip ? "gzip" : "identity" },
    });
  }

  private codeBody(code: string, o: RunCodeOptions) {
    const body: Record<string, unknown> = { code };
    if (o.context !== undefined) body.context = typeof o.context === "string" ? o.context : o.context.id;
    if (o.language !== undefined || o.context === undefined) body.language = o.language ?? "python";
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

  /**
   * A new REPL in this sandbox with its own globals (same files and user; the
   * sandbox's memory shared). `cwd` is relative to /home/user. At most 8 per
   * sandbox, the default one included (QuotaExceeded beyond).
   */
  async createCodeContext(opts: { language?: string; cwd?: string } = {}): Promise<CodeContext> {
    const body: Record<string, unknown> = { language: opts.language ?? "python" };
    if (opts.cwd !== undefined) body.cwd = opts.cwd;
    return (await this._call("POST", "/contexts", body)) as CodeContext;
  }

  /** Every code context, the default one first. */
  async listCodeContexts(): Promise<CodeContext[]> {
    return ((await this._call("GET", "/contexts")).contexts ?? []) as CodeContext[];
  }

  /** A fresh REPL for the context: its state is gone, its id stays. */
  async restartCodeContext(context: CodeContext | string): Promise<CodeContext> {
    return (await this._call("POST", "/contexts/" + q(ctxId(context)) + "/restart")) as CodeContext;
  }

  /** Remove the context and stop its REPL (not the default one). */
  async removeCodeContext(context: CodeContext | string): Promise<void> {
    await this._call("DELETE", "/contexts/" + q(ctxId(context)));
  }

  /**
   * Run a command: an argv array, or a string run by bash. With background:
   * true, a CommandHandle at once (the process outlives the call).
   */
  async exec(cmd: string | string[], opts: ExecOptions & { background: true }): Promise<CommandHandle>;
  async exec(cmd: string | string[], opts?: ExecOptions): Promise<Execution>;
  async exec(cmd: string | string[], opts: ExecOptions = {}): Promise<Execution | CommandHandle> {
    const body: Record<string, unknown> = { cmd: Array.isArray(cmd) ? cmd.map(String) : cmd };
    if (opts.env !== undefined) body.env = opts.env;
    if (opts.cwd !== undefined) body.cwd = opts.cwd;
    if (opts.stdin !== undefined) body.stdin = typeof opts.stdin === "string" ? opts.stdin : new TextDecoder().decode(opts.stdin);
    if (opts.timeout !== undefined) body.timeout_s = secs(opts.timeout);
    if (opts.pty) body.pty = opts.pty;
    if (opts.background) {
      body.background = true;
      return new CommandHandle(this, await this._call("POST", "/exec", body));
    }
    return new Execution(await this._call("POST", "/exec", body, undefined, waitMs(opts.timeout)));
  }

  /** The sandbox's audit trail. */
  async logs(): Promise<unknown[]> { return (await this._call("GET", "/logs")).events ?? []; }

  /** The egress policy: the allow-list, or `{open: true, allow: []}` (`{allow: []}` when sealed; 400 egress_unavailable for a vm sandbox). */
  async egress(): Promise<EgressPolicy> { return await this._call("GET", "/egress"); }

  /** Change the policy at once: an allow-list, true (open egress) or false (nothing); open connections it no
   *  longer allows are closed. */
  async setEgress(allow: string[] | EgressPolicy | boolean): Promise<EgressPolicy & { closed: number }> {
    const body = typeof allow === "boolean" ? { egress: allow } : Array.isArray(allow) ? { allow } : allow;
    return await this._call("PUT", "/egress", body);
  }

  /** Every connection through the egress proxy, allowed or denied, oldest first. */
  async egressLog(): Promise<EgressLogEntry[]> { return (await this._call("GET", "/egress/log")).entries ?? []; }
}
