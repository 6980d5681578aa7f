/** Result objects of runCode / exec (docs/api.md, "Result object"). */
export interface ExecutionError {
  name: string;
  value: string;
  traceback: string;
}

const MIME: Record<string, string> = {
  text: "text/plain", html: "text/html", markdown: "text/markdown", svg: "image/svg+xml",
  png: "image/png", jpeg: "image/jpeg", json: "application/json", latex: "text/latex",
  javascript: "application/javascript",
};

/** One rich output (a MIME bundle), e.g. the value of the last expression. */
export class Result {
  readonly raw: Record<string, unknown>;
  readonly isMainResult: boolean;
  constructor(raw: Record<string, unknown>) {
    this.raw = { ...raw };
    this.isMainResult = Boolean(raw.is_main_result);
  }
  private get_(k: string): string | undefined {
    const v = this.raw[MIME[k]];
    return typeof v === "string" ? v : undefined;
  }
  get text() { return this.get_("text"); }
  get html() { return this.get_("html"); }
  get markdown() { return this.get_("markdown"); }
  get svg() { return this.get_("svg"); }
  get png() { return this.get_("png"); }
  get jpeg() { return this.get_("jpeg"); }
  get json() { return this.get_("json"); }
  get latex() { return this.get_("latex"); }
  formats(): string[] { return Object.keys(this.raw).filter((k) => k !== "is_main_result"); }
}

/** The outcome of runCode or exec. */
export class Execution {
  readonly raw: Record<string, any>;
  readonly stdout: string;
  readonly stderr: string;
  readonly exitCode: number | null;
  readonly error: ExecutionError | null;
  readonly results: Result[];
  readonly durationMs: number | null;
  readonly timedOut: boolean;
  readonly stdoutTruncated: boolean;
  readonly stderrTruncated: boolean;
  readonly replRestarted: boolean;
  /** Python code: the cell's number in the REPL (IPython's In [n]); null for exec and bash. */
  readonly executionCount: number | null;
  constructor(d: Record<string, any>) {
    this.raw = d;
    this.stdout = d.stdout ?? "";
    this.stderr = d.stderr ?? "";
    this.exitCode = d.exit_code ?? null;
    const e = d.error;
    this.error = e ? { name: e.name ?? "", value: e.value ?? "", traceback: e.traceback ?? "" } : null;
    this.results = (d.results ?? []).map((r: Record<string, unknown>) => new Result(r));
    this.durationMs = d.duration_ms ?? null;
    this.timedOut = Boolean(d.timed_out);
    this.stdoutTruncated = Boolean(d.stdout_truncated);
    this.stderrTruncated = Boolean(d.stderr_truncated);
    this.replRestarted = Boolean(d.repl_restarted);
    this.executionCount = d.execution_count ?? null;
  }
  /** Output logs, as in other sandbox SDKs. */
  get logs(): { stdout: string; stderr: string } { return { stdout: this.stdout, stderr: this.stderr }; }
  /** text/plain of the main result (the last expression's value). */
  get text(): string | undefined {
    return this.results.find((r) => r.isMainResult)?.text;
  }
  get ok(): boolean { return this.error === null && this.exitCode === 0; }
}

/** A sandbox object (docs/api.md, "Sandbox object"). */
/** GET /v1/sandboxes/{a}/diff/{b} (Sandbox.diff): what b has that a has not, and so on. */
export interface FilesDiff {
  a: string;
  b: string;
  roots: string[];
  added: { path: string; size: number; sha256: string }[];
  removed: { path: string; size: number; sha256: string }[];
  changed: { path: string; size_a: number; size_b: number; sha256_a: string; sha256_b: string }[];
}

export interface SandboxInfo {
  id: string;
  state?: string;
  template?: string;
  [key: string]: unknown;
}

/** What a path is (files.getInfo, each entry of files.list, files.rename's
 * answer): a symlink is described, not followed (docs/api.md, files/info). */
export interface EntryInfo {
  /** absolute path */
  path: string;
  name: string;
  type: "file" | "dir" | "symlink" | "other" | string;
  size: number;
  /** permission bits as an integer (0o644 is 420) */
  mode: number;
  /** the same as an octal string, "0644" */
  mode_octal: string;
  /** as ls -l prints them, "-rw-r--r--" */
  permissions: string;
  /** the sandbox's names for uid and gid, else the numbers */
  owner: string;
  group: string;
  uid: number;
  gid: number;
  /** Unix seconds */
  mtime: number;
  /** ISO-8601 UTC */
  modified_at: string;
  /** a symlink's text (not resolved), else null */
  symlink_target: string | null;
  [key: string]: unknown;
}
