/** Ready-made tool definitions for LLM tool calling, and one dispatcher.
 *
 * The same five tools as `airlock mcp` (docs/mcp.md, src/cli/mcp_tools.c) and the
 * Python SDK's airlock.tools, as plain data: no vendor SDK is needed. `dispatch`
 * never throws for a tool-level failure (unknown tool, bad argument, the code's
 * exception, an airlockd error): the result holds `{ error }` so the model reads
 * what went wrong and the loop goes on. */
import type { Sandbox } from "./sandbox.js";
import type { Execution } from "./models.js";
import { AirlockError } from "./errors.js";

export interface JsonSchemaProperty { type: "string" | "integer"; description: string; minimum?: number }
export interface ToolParameters {
  type: "object";
  properties: Record<string, JsonSchemaProperty>;
  required?: string[];
  additionalProperties: false;
}
export interface ToolDefinition { name: string; description: string; parameters: ToolParameters }
export interface OpenAITool { type: "function"; function: { name: string; description: string; parameters: ToolParameters } }
export interface AnthropicTool { name: string; description: string; input_schema: ToolParameters }
export interface ToolError { name: string; value: string; traceback: string }
/** A JSON-serializable result; `error` is set when the call failed. */
export type ToolResult = { error?: ToolError } & Record<string, unknown>;

/** download_file's cap, like `airlock mcp --max-file-mb`. */
export const MAX_DOWNLOAD_BYTES = 1024 * 1024;

export const TOOLS: readonly ToolDefinition[] = [
  {
    "name": "run_python",
    "description": "Run Python code in this session's sandbox: one persistent interpreter, so variables, imports and definitions stay between calls. Returns stdout, stderr, the value of the last expression and rich results (matplotlib figures as images). pandas, numpy, matplotlib and scipy are usually installed. The sandbox has no network access.",
    "parameters": {
      "type": "object",
      "properties": {
        "code": {
          "type": "string",
          "description": "Python code to run. The last expression's value is returned as the result."
        }
      },
      "required": [
        "code"
      ],
      "additionalProperties": false
    }
  },
  {
    "name": "run_bash",
    "description": "Run a bash command line in this session's sandbox (a fresh process each time; the files stay). Returns stdout, stderr and the exit code. The sandbox has no network access.",
    "parameters": {
      "type": "object",
      "properties": {
        "command": {
          "type": "string",
          "description": "A bash command line (run with bash -c)."
        },
        "cwd": {
          "type": "string",
          "description": "Working directory (default /home/user; relative to it)."
        }
      },
      "required": [
        "command"
      ],
      "additionalProperties": false
    }
  },
  {
    "name": "upload_file",
    "description": "Write a file into this session's sandbox, from text (content) or base64 (content_base64); then read it from run_python or run_bash.",
    "parameters": {
      "type": "object",
      "properties": {
        "path": {
          "type": "string",
          "description": "Where to write the file in the sandbox: absolute, or relative to /home/user. Writable: /home/user, /data, /tmp. Missing directories are created."
        },
        "content": {
          "type": "string",
          "description": "The file's content as UTF-8 text."
        },
        "content_base64": {
          "type": "string",
          "description": "The file's content as standard base64 (for binary files), instead of content."
        }
      },
      "required": [
        "path"
      ],
      "additionalProperties": false
    }
  },
  {
    "name": "download_file",
    "description": "Read a file from this session's sandbox: UTF-8 text files as text, other files (images included) as base64.",
    "parameters": {
      "type": "object",
      "properties": {
        "path": {
          "type": "string",
          "description": "The file to read: absolute, or relative to /home/user."
        }
      },
      "required": [
        "path"
      ],
      "additionalProperties": false
    }
  },
  {
    "name": "list_files",
    "description": "List a directory of this session's sandbox (default /home/user).",
    "parameters": {
      "type": "object",
      "properties": {
        "path": {
          "type": "string",
          "description": "The directory to list (default /home/user)."
        },
        "depth": {
          "type": "integer",
          "minimum": 1,
          "description": "How many levels to list (default 1: the directory's own entries)."
        }
      },
      "additionalProperties": false
    }
  }
];

const clone = <T>(v: T): T => JSON.parse(JSON.stringify(v));

/** TOOLS in OpenAI's Chat Completions "function" format. */
export function openaiTools(): OpenAITool[] {
  return TOOLS.map((t) => ({ type: "function", function: { name: t.name, description: t.description, parameters: clone(t.parameters) } }));
}

/** TOOLS in Anthropic's Messages API format. */
export function anthropicTools(): AnthropicTool[] {
  return TOOLS.map((t) => ({ name: t.name, description: t.description, input_schema: clone(t.parameters) }));
}

class BadArgs extends Error {}

function str(args: Record<string, unknown>, name: string, required = false): string | undefined {
  const v = args[name];
  if (v === undefined || v === null) {
    if (required) throw new BadArgs(`needs '${name}': a string`);
    return undefined;
  }
  if (typeof v !== "string" || v.includes("\0")) throw new BadArgs(`'${name}' must be a string (without NUL characters)`);
  return v;
}

const IMAGE_MIMES = ["image/png", "image/jpeg", "image/gif", "image/webp"];
const TEXT_MIMES = ["text/plain", "text/markdown", "text/latex", "image/svg+xml", "text/html", "application/json"];

function runResult(ex: Execution, isExec: boolean): ToolResult {
  const out: ToolResult = { stdout: ex.stdout, stderr: ex.stderr };
  if (ex.text !== undefined) out.result = ex.text;
  const images: { mime_type: string; data_base64: string }[] = [];
  const others: string[] = [];
  for (const r of ex.results) {
    const mime = IMAGE_MIMES.find((m) => r.raw[m]);
    if (mime) images.push({ mime_type: mime, data_base64: String(r.raw[mime]) });
    else if (!r.isMainResult) {
      const k = TEXT_MIMES.find((m) => r.raw[m] !== undefined && r.raw[m] !== null);
      if (k) others.push(typeof r.raw[k] === "string" ? (r.raw[k] as string) : JSON.stringify(r.raw[k]));
    }
  }
  if (others.length) out.results = others;
  if (images.length) {
    out.images = images;
    out.note = `${images.length} image(s) as base64 in images[]: show them to a user, or save them with run_python to inspect them`;
  }
  if (isExec) out.exit_code = ex.exitCode;
  if (ex.error) out.error = { name: ex.error.name, value: ex.error.value, traceback: ex.error.traceback };
  else if (isExec && ex.exitCode !== 0 && ex.exitCode !== null) out.error = { name: "ExitCode", value: `exit code: ${ex.exitCode}`, traceback: "" };
  if (ex.timedOut) out.timed_out = true;
  if (ex.replRestarted) out.note_restart = "the Python REPL was restarted: variables and imports of earlier calls are gone";
  return out;
}

const err = (name: string, value: string): ToolResult => ({ error: { name, value, traceback: "" } });
// btoa/atob, not Buffer: the SDK has no Node-only types; chunks keep String.fromCharCode's argument list short
function b64(data: Uint8Array): string {
  let s = "";
  for (let i = 0; i < data.length; i += 0x8000) s += String.fromCharCode(...data.subarray(i, i + 0x8000));
  return btoa(s);
}
const unb64 = (s: string) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));

type Impl = (sb: Sandbox, a: Record<string, unknown>) => Promise<ToolResult>;

const IMPLS: Record<string, Impl> = {
  run_python: async (sb, a) => runResult(await sb.runCode(str(a, "code", true)!), false),
  run_bash: async (sb, a) => {
    const cwd = str(a, "cwd");
    return runResult(await sb.exec(str(a, "command", true)!, cwd === undefined ? {} : { cwd }), true);
  },
  upload_file: async (sb, a) => {
    const path = str(a, "path", true)!;
    if (!path) throw new BadArgs("needs 'path': where to write the file in the sandbox");
    const text = str(a, "content"), enc = str(a, "content_base64");
    if ((text === undefined) === (enc === undefined))
      throw new BadArgs("needs exactly one of 'content' (text) or 'content_base64' (base64), as a string");
    let data: Uint8Array;
    if (text !== undefined) data = new TextEncoder().encode(text);
    else {
      if (!/^[A-Za-z0-9+/]*={0,2}$/.test(enc!) || enc!.length % 4 !== 0) throw new BadArgs("'content_base64' is not valid standard base64");
      data = unb64(enc!);
    }
    const r = await sb.upload(data, path);
    const where = r?.path ?? path;
    return { path: where, size: data.length, text: `wrote ${data.length} bytes to ${where}` };
  },
  download_file: async (sb, a) => {
    const path = str(a, "path", true)!;
    if (!path) throw new BadArgs("needs 'path': the file to read in the sandbox");
    const info = await sb.files.getInfo(path);
    if (info.type !== "file") return err("NotAFile", `${path} is a ${info.type}, not a file`);
    if ((info.size ?? 0) > MAX_DOWNLOAD_BYTES)
      return err("FileTooLarge", `${path} is larger than the limit of ${MAX_DOWNLOAD_BYTES} bytes; read a part of it with run_bash or run_python instead`);
    let data = await sb.download(path);
    if (data.length > MAX_DOWNLOAD_BYTES) data = data.subarray(0, MAX_DOWNLOAD_BYTES);
    const out: ToolResult = { path: info.path ?? path, size: data.length };
    try {
      out.text = new TextDecoder("utf-8", { fatal: true }).decode(data);
    } catch {
      out.content_base64 = b64(data);
      if (data[0] === 0x89 && data[1] === 0x50 && data[2] === 0x4e && data[3] === 0x47) out.mime_type = "image/png";
    }
    return out;
  },
  list_files: async (sb, a) => {
    const path = str(a, "path") || "/home/user";
    const depth = a.depth ?? 1;
    if (typeof depth !== "number" || !Number.isInteger(depth) || depth < 1) throw new BadArgs("'depth' must be an integer >= 1");
    const entries = await sb.files.list(path, { depth });
    const lines = [`${path} (${entries.length} entries)`];
    for (const e of entries) {
      const t = e.type ?? "?";
      lines.push(`${t.padEnd(7)} ${String(e.size ?? 0).padStart(12)}  ${depth > 1 ? e.path : e.name}${t === "dir" ? "/" : ""}`);
    }
    return { path, entries: entries.map((e) => ({ name: e.name, path: e.path, type: e.type, size: e.size })), text: lines.join("\n") };
  },
};

/** Run one tool call against `sandbox`. `args` is an object, or a JSON string (as
 * OpenAI sends it). A failure of the call is `{ error: { name, value, traceback } }`. */
export async function dispatch(sandbox: Sandbox, name: string, args: unknown): Promise<ToolResult> {
  const impl = Object.prototype.hasOwnProperty.call(IMPLS, name) ? IMPLS[name] : undefined;
  if (!impl) return err("UnknownTool", `no tool named '${name}'; the tools are: ${Object.keys(IMPLS).join(", ")}`);
  if (args === undefined || args === null || args === "") args = {};
  if (typeof args === "string") {
    try { args = JSON.parse(args); } catch (e) { return err("InvalidArguments", `${name}: the arguments are not valid JSON: ${(e as Error).message}`); }
  }
  if (typeof args !== "object" || args === null || Array.isArray(args)) return err("InvalidArguments", `${name}: the arguments must be a JSON object`);
  const allowed = Object.keys(TOOLS.find((t) => t.name === name)!.parameters.properties);
  const extra = Object.keys(args).filter((k) => !allowed.includes(k)).sort();
  if (extra.length) return err("InvalidArguments", `${name}: unknown argument(s) ${extra.join(", ")}; it takes ${allowed.join(", ")}`);
  try {
    return await impl(sandbox, args as Record<string, unknown>);
  } catch (e) {
    if (e instanceof BadArgs) return err("InvalidArguments", `${name} ${e.message}`);
    const ex = e as Error;
    return err(e instanceof AirlockError ? ex.constructor.name : ex?.name ?? "Error", `${name} failed: ${ex?.message ?? String(e)}`);
  }
}
