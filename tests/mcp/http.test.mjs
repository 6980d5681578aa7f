// `airlock mcp --transport http` (Streamable HTTP), driven by the official MCP
// TypeScript SDK's StreamableHTTPClientTransport, against a real ASan airlockd.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { LATEST_PROTOCOL_VERSION } from "@modelcontextprotocol/sdk/types.js";
import { CLI, CLI_ENV, SANITIZER, startDaemon, text, sandboxOf, destroyed, waitFor } from "./support.mjs";
import { listTools, statefulPython, csvAnalysis, imageResult, errorResults } from "./scenarios.mjs";

let daemon, server;

// An `airlock mcp --transport http` on a free port; its URL from its log line.
async function startServer(extra = []) {
  const p = spawn(CLI, ["mcp", "--transport", "http", "--listen", "127.0.0.1:0", "--url", daemon.url,
    "--api-key", daemon.key, ...extra], { env: { ...process.env, ...CLI_ENV }, stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  p.stderr.on("data", (d) => { stderr += d; });
  const url = await waitFor(() => {
    if (p.exitCode !== null) throw new Error("airlock mcp exited:\n" + stderr);
    return stderr.match(/serving MCP \(Streamable HTTP\) on (http:\S+)/)?.[1];
  }, "airlock mcp to listen", 20000);
  return {
    url, proc: p, stderr: () => stderr,
    async stop() {
      if (p.exitCode === null) {
        const done = new Promise((r) => p.once("exit", r));
        p.kill("SIGTERM");
        await done;
      }
      assert.equal(p.exitCode, 130, stderr); // the CLI's exit code for every command stopped by a signal
      assert.ok(!SANITIZER.test(stderr), "sanitizer report from airlock mcp:\n" + stderr);
    },
  };
}

before(async () => {
  daemon = await startDaemon();
  server = await startServer();
});
after(async () => {
  await server?.stop();
  await daemon?.stop();
});

async function connect(url = server.url, opts = {}) {
  const transport = new StreamableHTTPClientTransport(new URL(url), opts);
  const client = new Client({ name: "airlock-mcp-http-test", version: "1.0.0" });
  await client.connect(transport);
  return { client, transport };
}

// One session for a test, ended (DELETE) at its end.
async function session(t) {
  const s = await connect();
  t.after(async () => {
    await s.transport.terminateSession();
    await s.client.close();
  });
  return s;
}

test("initialize and list tools", async (t) => {
  const { client, transport } = await session(t);
  assert.match(transport.sessionId, /^[0-9a-f]{32}$/);
  await listTools(client);
});

test("run_python keeps its state across calls", async (t) => {
  await statefulPython((await session(t)).client);
});

test("upload a CSV, analyse it with pandas, list and download it", async (t) => {
  await csvAnalysis((await session(t)).client);
});

test("a matplotlib figure comes back as an image", async (t) => {
  await imageResult((await session(t)).client);
});

test("errors are tool results with isError, and the session goes on", async (t) => {
  await errorResults((await session(t)).client);
});

test("two sessions, two sandboxes, run at the same time", async (t) => {
  const a = await session(t), b = await session(t);
  assert.notEqual(a.transport.sessionId, b.transport.sessionId);
  await a.client.callTool({ name: "run_python", arguments: { code: "who = 'a'" } });
  await b.client.callTool({ name: "run_python", arguments: { code: "who = 'b'" } });
  const [ra, rb] = await Promise.all([
    a.client.callTool({ name: "run_python", arguments: { code: "import time\ntime.sleep(0.5)\nwho" } }),
    b.client.callTool({ name: "run_python", arguments: { code: "import time\ntime.sleep(0.5)\nwho" } }),
  ]);
  assert.equal(text(ra), "'a'");
  assert.equal(text(rb), "'b'");
  assert.notEqual(sandboxOf(ra), sandboxOf(rb));
});

test("DELETE ends the session and destroys its sandbox", async () => {
  const { client, transport } = await connect();
  const r = await client.callTool({ name: "run_python", arguments: { code: "1" } });
  const id = sandboxOf(r);
  const sid = transport.sessionId;
  await transport.terminateSession();
  const sb = await destroyed(daemon, id);
  assert.equal(sb.destroy_reason, "deleted");
  await client.close();
  // the session is gone for good
  const res = await post({ jsonrpc: "2.0", id: 1, method: "ping" }, { "mcp-session-id": sid });
  assert.equal(res.status, 404);
});

// ---- the HTTP layer by hand

async function post(body, headers = {}, url = server.url) {
  const r = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", accept: "application/json, text/event-stream", ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
  const t = await r.text();
  return { status: r.status, headers: r.headers, body: t ? JSON.parse(t) : null };
}

const initialize = (v = LATEST_PROTOCOL_VERSION) => ({ jsonrpc: "2.0", id: 1, method: "initialize",
  params: { protocolVersion: v, capabilities: {}, clientInfo: { name: "raw", version: "0" } } });

test("Streamable HTTP by hand: sessions, statuses, errors", async () => {
  let r = await post(initialize("2025-03-26"));
  assert.equal(r.status, 200);
  assert.equal(r.headers.get("content-type"), "application/json");
  assert.equal(r.body.result.protocolVersion, "2025-03-26");
  const sid = r.headers.get("mcp-session-id");
  assert.match(sid, /^[0-9a-f]{32}$/);
  const h = { "mcp-session-id": sid, "mcp-protocol-version": "2025-03-26" };
  // a notification: 202, no body
  r = await post({ jsonrpc: "2.0", method: "notifications/initialized" }, h);
  assert.equal(r.status, 202);
  assert.equal(r.body, null);
  r = await post({ jsonrpc: "2.0", id: 2, method: "ping" }, h);
  assert.deepEqual(r.body, { jsonrpc: "2.0", id: 2, result: {} });
  r = await post({ jsonrpc: "2.0", id: 3, method: "nope/nope" }, h);
  assert.equal(r.status, 200);
  assert.equal(r.body.error.code, -32601);
  r = await post("{broken", h);
  assert.equal(r.status, 400);
  assert.equal(r.body.error.code, -32700);
  r = await post([{ jsonrpc: "2.0", id: 4, method: "ping" }, { jsonrpc: "2.0", id: 5, method: "tools/list" }], h);
  assert.deepEqual(r.body.map((m) => m.id), [4, 5]);
  // no session, an unknown one, an unsupported revision
  assert.equal((await post({ jsonrpc: "2.0", id: 6, method: "ping" })).status, 400);
  assert.equal((await post({ jsonrpc: "2.0", id: 7, method: "ping" }, { "mcp-session-id": "f".repeat(32) })).status, 404);
  assert.equal((await post({ jsonrpc: "2.0", id: 8, method: "ping" }, { ...h, "mcp-protocol-version": "1999-01-01" })).status, 400);
  // a browser page on another site (DNS rebinding), a wrong content type, GET, another path
  assert.equal((await post({ jsonrpc: "2.0", id: 9, method: "ping" }, { ...h, origin: "http://evil.example" })).status, 403);
  assert.equal((await post({ jsonrpc: "2.0", id: 10, method: "ping" }, { ...h, origin: "http://localhost:3000" })).status, 200);
  let f = await fetch(server.url, { method: "POST", headers: { ...h, "content-type": "text/plain" }, body: "{}" });
  assert.equal(f.status, 415);
  f = await fetch(server.url, { headers: h });
  assert.equal(f.status, 405);
  assert.match(f.headers.get("allow"), /POST/);
  f = await fetch(new URL("/other", server.url), { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
  assert.equal(f.status, 404);
  // DELETE ends it; a second DELETE finds nothing
  f = await fetch(server.url, { method: "DELETE", headers: h });
  assert.equal(f.status, 204);
  f = await fetch(server.url, { method: "DELETE", headers: h });
  assert.equal(f.status, 404);
});

test("--token: requests without the bearer token are refused", async () => {
  const s = await startServer(["--token", "s3cret"]);
  try {
    assert.equal((await post(initialize(), {}, s.url)).status, 401);
    assert.equal((await post(initialize(), { authorization: "Bearer wrong" }, s.url)).status, 401);
    const { client, transport } = await connect(s.url, { requestInit: { headers: { authorization: "Bearer s3cret" } } });
    const r = await client.callTool({ name: "run_python", arguments: { code: "6*7" } });
    assert.equal(text(r), "42");
    await transport.terminateSession();
    await client.close();
  } finally {
    await s.stop();
  }
});

test("stopping the server ends every session and destroys their sandboxes", async () => {
  const s = await startServer();
  const ids = [];
  for (let i = 0; i < 2; i++) {
    const { client } = await connect(s.url);
    ids.push(sandboxOf(await client.callTool({ name: "run_python", arguments: { code: "1" } })));
    await client.close(); // no DELETE: the client just goes
  }
  await s.stop();
  for (const id of ids) assert.equal((await destroyed(daemon, id)).destroy_reason, "deleted");
});

test("a session whose client vanished ends with its sandbox's lifetime", async () => {
  const s = await startServer(["--sandbox-timeout", "2", "--call-timeout", "1"]);
  try {
    const { client, transport } = await connect(s.url);
    const id = sandboxOf(await client.callTool({ name: "run_python", arguments: { code: "1" } }));
    const sid = transport.sessionId;
    await client.close(); // and never comes back
    await destroyed(daemon, id);
    // (asking would keep it alive: its log says when it ended)
    await waitFor(() => s.stderr().includes(`session ${sid} idle`), "the idle session to end");
    assert.equal((await post({ jsonrpc: "2.0", id: 1, method: "ping" }, { "mcp-session-id": sid }, s.url)).status, 404);
  } finally {
    await s.stop();
  }
});
