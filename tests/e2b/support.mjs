// Shared by the E2B tests: a real airlockd with its E2B-compatible listener
// (--e2b-listen), started as tests/mcp and sdk/typescript/test start one,
// and E2B's own SDKs pointed at it through their documented environment
// variables (E2B_API_URL, E2B_SANDBOX_URL, E2B_API_KEY).
// Env: AIRLOCK_DAEMON, AIRLOCK_AGENT, AIRLOCK_RUNNER, AIRLOCK_ZYGOTE (see the Makefile's test-e2b).
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, existsSync, readFileSync, openSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";

const ROOT = new URL("../..", import.meta.url).pathname;
export const DAEMON = process.env.AIRLOCK_DAEMON ?? join(ROOT, "build-asan/airlockd");
export const AGENT = process.env.AIRLOCK_AGENT ?? join(ROOT, "build/airlock-agent");
export const RUNNER = process.env.AIRLOCK_RUNNER ?? join(ROOT, "runner/airlock_runner.py");
export const ZYGOTE = process.env.AIRLOCK_ZYGOTE ?? join(ROOT, "build/airlock-zygote");

export const SANITIZER = /ERROR: (Address|Leak)Sanitizer|runtime error:/;

function freePort() {
  return new Promise((res, rej) => {
    const s = createServer();
    s.listen(0, "127.0.0.1", () => { const p = s.address().port; s.close(() => res(p)); });
    s.on("error", rej);
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// A real airlockd for one test file; the E2B SDKs' environment points at
// its E2B listener. stop() fails the file on a sanitizer report.
export async function startDaemon() {
  assert.ok(existsSync(DAEMON), `no daemon binary at ${DAEMON} (make build-asan, or set AIRLOCK_DAEMON)`);
  const work = mkdtempSync(join(tmpdir(), "airlock-e2b-"));
  const port = await freePort();
  const e2bPort = await freePort();
  const key = "ak_" + randomBytes(16).toString("hex");
  const url = `http://127.0.0.1:${port}`;
  const e2bUrl = `http://127.0.0.1:${e2bPort}`;
  const logPath = join(work, "airlockd.log");
  const log = openSync(logPath, "w");
  const proc = spawn(DAEMON, ["--listen", `127.0.0.1:${port}`, "--e2b-listen", `127.0.0.1:${e2bPort}`,
    "--state-dir", join(work, "state"), "--agent", AGENT, "--runner", RUNNER, "--zygote", ZYGOTE], {
    stdio: ["ignore", log, log],
    env: { ...process.env, AIRLOCK_API_KEY: key, ASAN_OPTIONS: process.env.ASAN_OPTIONS ?? "detect_leaks=1:abort_on_error=0" },
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
  // E2B's SDKs read these at each call (ConnectionConfig)
  process.env.E2B_API_URL = e2bUrl;
  process.env.E2B_SANDBOX_URL = e2bUrl;
  process.env.E2B_API_KEY = key;
  // Airlock's own REST API, to check what the E2B calls did
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
  return { url, e2bUrl, key, api, stop, work, logPath };
}
