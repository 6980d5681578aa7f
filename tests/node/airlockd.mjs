// A real airlockd for one Node test file: the one copy that the MCP tests
// (tests/mcp), the E2B tests (tests/e2b) and the TypeScript SDK's own tests
// (sdk/typescript/test) start theirs from, as tests/e2e/e2e_support.py's
// Daemon does for the Python suites. Node built-ins only, so every one of
// those packages can import it whatever its node_modules hold.
// Env: AIRLOCK_DAEMON, AIRLOCK_AGENT, AIRLOCK_RUNNER, AIRLOCK_ZYGOTE, ASAN_OPTIONS.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, existsSync, readFileSync, openSync, closeSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";

export const ROOT = new URL("../..", import.meta.url).pathname;
export const DAEMON = process.env.AIRLOCK_DAEMON ?? join(ROOT, "build-asan/airlockd");
export const AGENT = process.env.AIRLOCK_AGENT ?? join(ROOT, "build/airlock-agent");
export const RUNNER = process.env.AIRLOCK_RUNNER ?? join(ROOT, "runner/airlock_runner.py");
export const ZYGOTE = process.env.AIRLOCK_ZYGOTE ?? join(ROOT, "build/airlock-zygote");

export const SANITIZER = /ERROR: (Address|Leak)Sanitizer|runtime error:/;
export const ASAN_OPTIONS = process.env.ASAN_OPTIONS ?? "detect_leaks=1:abort_on_error=0";

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

// Start one: `args` are extra daemon flags, `prefix` names its work
// directory. Resolves once /v1/healthz says ok. stop() fails the test file
// on a sanitizer report in the daemon's log.
export async function startDaemon({ args = [], prefix = "airlock-node-" } = {}) {
  assert.ok(existsSync(DAEMON), `no daemon binary at ${DAEMON} (make build-asan, or set AIRLOCK_DAEMON)`);
  const work = mkdtempSync(join(tmpdir(), prefix));
  const port = await freePort();
  const key = "ak_" + randomBytes(16).toString("hex");
  const url = `http://127.0.0.1:${port}`;
  const logPath = join(work, "airlockd.log");
  const log = openSync(logPath, "w");
  const proc = spawn(DAEMON, ["--listen", `127.0.0.1:${port}`, "--socket", join(work, "airlockd.sock"),
    "--state-dir", join(work, "state"), "--agent", AGENT, "--runner", RUNNER, "--zygote", ZYGOTE, ...args], {
    stdio: ["ignore", log, log],
    env: { ...process.env, AIRLOCK_API_KEY: key, ASAN_OPTIONS },
  });
  closeSync(log); /* the daemon holds its own copy */
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
  // Airlock's own REST API, for checking what a client under test did.
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
  return { url, key, api, stop, work, logPath, proc };
}
