// Shared by the MCP tests: a real airlockd started here (as sdk/typescript/test
// and tests/e2e/e2e_support.py start one), `airlock mcp` driven by the official
// MCP TypeScript SDK's client, and a few helpers.
// Env: AIRLOCK_DAEMON, AIRLOCK_AGENT, AIRLOCK_RUNNER, AIRLOCK_ZYGOTE, AIRLOCK_CLI (see the Makefile's test-mcp).
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, existsSync, readFileSync, openSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";

const ROOT = new URL("../..", import.meta.url).pathname;
export const DAEMON = process.env.AIRLOCK_DAEMON ?? join(ROOT, "build-asan/airlockd");
export const AGENT = process.env.AIRLOCK_AGENT ?? join(ROOT, "build/airlock-agent");
export const RUNNER = process.env.AIRLOCK_RUNNER ?? join(ROOT, "runner/airlock_runner.py");
export const ZYGOTE = process.env.AIRLOCK_ZYGOTE ?? join(ROOT, "build/airlock-zygote");
export const CLI = process.env.AIRLOCK_CLI ?? join(ROOT, "build-asan/airlock");

export const SANITIZER = /ERROR: (Address|Leak)Sanitizer|runtime error:/;
// What the CLI under ASan needs from our environment (the SDK's stdio
// transport passes only HOME, PATH and a few more by default).
export const CLI_ENV = {
  ASAN_OPTIONS: process.env.ASAN_OPTIONS ?? "detect_leaks=1:abort_on_error=0",
  UBSAN_OPTIONS: process.env.UBSAN_OPTIONS ?? "print_stacktrace=1:halt_on_error=1",
};

export function freePort() {
  return new Promise((res, rej) => {
    const s = createServer();
    s.listen(0, "127.0.0.1", () => { const p = s.address().port; s.close(() => res(p)); });
    s.on("error", rej);
  });
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Poll until fn() is truthy (a state change, never a duration being checked).
export async function waitFor(fn, what, limitMs = 60000) {
  const deadline = Date.now() + limitMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error("gave up waiting for " + what);
    await sleep(100);
  }
}

// A real airlockd for one test file. stop() fails the file on a sanitizer report.
export async function startDaemon() {
  assert.ok(existsSync(DAEMON), `no daemon binary at ${DAEMON} (make build-asan, or set AIRLOCK_DAEMON)`);
  assert.ok(existsSync(CLI), `no CLI binary at ${CLI} (make build-asan, or set AIRLOCK_CLI)`);
  const work = mkdtempSync(join(tmpdir(), "airlock-mcp-"));
  const port = await freePort();
  const key = "ak_" + randomBytes(16).toString("hex");
  const url = `http://127.0.0.1:${port}`;
  const logPath = join(work, "airlockd.log");
  const log = openSync(logPath, "w");
  const proc = spawn(DAEMON, ["--listen", `127.0.0.1:${port}`, "--socket", join(work, "airlockd.sock"),
    "--state-dir", join(work, "state"), "--agent", AGENT, "--runner", RUNNER, "--zygote", ZYGOTE], {
    stdio: ["ignore", log, log],
    env: { ...process.env, AIRLOCK_API_KEY: key, ASAN_OPTIONS: CLI_ENV.ASAN_OPTIONS },
  });
  const deadline = Date.now() + 20000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error("airlockd exited during start:\n" + readFileSync(logPath, "utf8"));
    try {
      const r = await fetch(url + "/v1/healthz");
      if ((await r.json()).status === "ok") break;
    } catch { /* not yet */ }
    if (Date.now() > deadline) throw new Error("airlockd did not answer /v1/healthz:\n" + readFileSync(logPath, "utf8"));
    await sleep(50);
  }
  // The daemon's REST API, for checking what the MCP server did.
  async function api(method, path, body) {
    const r = await fetch(url + path, {
      method,
      headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await r.text();
    return { status: r.status, body: text ? JSON.parse(text) : null };
  }
  async function stop() {
    if (proc.exitCode === null) {
      const done = new Promise((r) => proc.once("exit", r));
      proc.kill("SIGTERM");
      await done;
    }
    const text = existsSync(logPath) ? readFileSync(logPath, "utf8") : "";
    rmSync(work, { recursive: true, force: true });
    assert.ok(!SANITIZER.test(text), "sanitizer report in the daemon log:\n" + text);
  }
  return { url, key, api, stop, work };
}

// `airlock mcp` over stdio, started by the SDK's own transport.
export async function stdioClient(daemon, extraArgs = [], { name = "airlock-mcp-test" } = {}) {
  const transport = new StdioClientTransport({
    command: CLI,
    args: ["mcp", "--url", daemon.url, "--api-key", daemon.key, ...extraArgs],
    env: CLI_ENV,
    stderr: "pipe",
  });
  let stderr = "";
  transport.stderr.on("data", (d) => { stderr += d.toString(); });
  const client = new Client({ name, version: "1.0.0" });
  await client.connect(transport);
  return { client, transport, stderr: () => stderr };
}

// The text blocks of a tool result, joined.
export function text(result) {
  return result.content.filter((c) => c.type === "text").map((c) => c.text).join("\n");
}

export function sandboxOf(result) {
  const id = result._meta?.["airlock/sandbox_id"];
  assert.match(id ?? "", /^sb_[0-9a-f]{32}$/, "no sandbox id in the result's _meta: " + JSON.stringify(result));
  return id;
}

// Wait until airlockd says the sandbox is destroyed; its record.
export async function destroyed(daemon, id) {
  return waitFor(async () => {
    const r = await daemon.api("GET", `/v1/sandboxes/${id}`);
    return r.body?.state === "destroyed" ? r.body : null;
  }, `sandbox ${id} destroyed`);
}
