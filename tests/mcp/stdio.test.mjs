// `airlock mcp` over stdio, driven by the official MCP TypeScript SDK's client
// (StdioClientTransport starts the CLI), against a real ASan airlockd.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { LATEST_PROTOCOL_VERSION } from "@modelcontextprotocol/sdk/types.js";
import { CLI, CLI_ENV, SANITIZER, startDaemon, stdioClient, text, sandboxOf, destroyed, waitFor } from "./support.mjs";
import { listTools, statefulPython, csvAnalysis, imageResult, errorResults, forkFamily } from "./scenarios.mjs";

let daemon;

before(async () => { daemon = await startDaemon(); });
after(async () => { await daemon?.stop(); });

// One session for a test: closed (and checked for sanitizer reports) at its end.
async function session(t, args = [], opts = {}) {
  const s = await stdioClient(daemon, args, opts);
  t.after(async () => {
    await s.client.close();
    assert.ok(!SANITIZER.test(s.stderr()), "sanitizer report from airlock mcp:\n" + s.stderr());
  });
  return s;
}

test("initialize and list tools", async (t) => {
  const { client } = await session(t);
  await listTools(client);
});

test("run_python keeps its state across calls", async (t) => {
  const { client } = await session(t);
  await statefulPython(client);
});

test("upload a CSV, analyse it with pandas, list and download it", async (t) => {
  const { client } = await session(t);
  await csvAnalysis(client);
});

test("fork, diff, merge_into; the session's end destroys its copies", async (t) => {
  const { client } = await session(t);
  const { kept } = await forkFamily(client);
  await client.close();
  await destroyed(daemon, kept);
});

test("a matplotlib figure comes back as an image", async (t) => {
  const { client } = await session(t);
  await imageResult(client);
});

test("errors are tool results with isError, and the session goes on", async (t) => {
  const { client } = await session(t);
  await errorResults(client);
});

test("the sandbox's shape comes from the server's flags, not from the model", async (t) => {
  const { client } = await session(t, ["--memory-mb", "512", "--sandbox-timeout", "900", "--env", "FROM_FLAG=yes"]);
  const r = await client.callTool({
    name: "run_python",
    // extra arguments a model might try are not the sandbox's shape
    arguments: { code: "import os\nos.environ['FROM_FLAG']", memory_mb: 16384, egress: true, template: "evil" },
  });
  assert.equal(text(r), "'yes'");
  const sb = (await daemon.api("GET", `/v1/sandboxes/${sandboxOf(r)}`)).body;
  assert.equal(sb.memory_mb, 512);
  assert.equal(sb.timeout_s, 900);
  assert.equal(sb.egress, false);
  assert.equal(sb.template, "host");
  assert.equal(sb.metadata.created_by, "airlock mcp");
  assert.equal(sb.metadata.mcp_client, "airlock-mcp-test");
});

test("the session's end destroys its sandbox", async () => {
  const { client, stderr } = await stdioClient(daemon);
  const r = await client.callTool({ name: "run_python", arguments: { code: "1" } });
  const id = sandboxOf(r);
  assert.equal((await daemon.api("GET", `/v1/sandboxes/${id}`)).body.state, "running");
  await client.close();
  const sb = await destroyed(daemon, id);
  assert.equal(sb.destroy_reason, "deleted");
  assert.ok(!SANITIZER.test(stderr()), stderr());
  assert.match(stderr(), new RegExp(`sandbox ${id} destroyed`));
});

test("a session that never calls a tool creates no sandbox", async () => {
  const before = (await daemon.api("GET", "/v1/sandboxes")).body.sandboxes.length;
  const { client } = await stdioClient(daemon);
  await client.listTools();
  await client.ping();
  assert.equal((await daemon.api("GET", "/v1/sandboxes")).body.sandboxes.length, before);
  await client.close();
});

test("a server killed without ending its session leaves the sandbox to its lifetime", async () => {
  const { client, transport } = await stdioClient(daemon, ["--sandbox-timeout", "3", "--call-timeout", "2"]);
  const r = await client.callTool({ name: "run_python", arguments: { code: "1" } });
  const id = sandboxOf(r);
  process.kill(transport.pid, "SIGKILL");
  await client.close().catch(() => {});
  const sb = await destroyed(daemon, id);
  assert.equal(sb.destroy_reason, "expired");
});

test("a sandbox that expired while the session was idle is replaced, and the model is told", async (t) => {
  const { client } = await session(t, ["--sandbox-timeout", "3", "--call-timeout", "2"]);
  let r = await client.callTool({ name: "run_python", arguments: { code: "z = 5" } });
  const first = sandboxOf(r);
  await destroyed(daemon, first);
  r = await client.callTool({ name: "run_python", arguments: { code: "'z' in globals()" } });
  assert.notEqual(sandboxOf(r), first);
  assert.match(r.content[0].text, /previous sandbox is gone/);
  assert.match(text(r), /False/);
});

test("an unreachable airlockd is a tool error, not a broken session", async (t) => {
  const { client } = await session(t);
  // the same server, pointed at a port nothing listens on
  const s = await stdioClient({ url: "http://127.0.0.1:1", key: daemon.key });
  t.after(async () => { await s.client.close(); });
  const r = await s.client.callTool({ name: "run_python", arguments: { code: "1" } });
  assert.equal(r.isError, true);
  assert.match(text(r), /cannot reach airlockd/);
  assert.equal(r._meta, undefined, "no sandbox");
  await s.client.ping();
  assert.equal(text(await client.callTool({ name: "run_python", arguments: { code: "2" } })), "2");
});

test("a call past --call-timeout and a file past --max-file-mb are tool errors", async (t) => {
  const { client } = await session(t, ["--call-timeout", "1", "--max-file-mb", "1"]);
  let r = await client.callTool({ name: "run_python", arguments: { code: "kept = 1\nimport time\ntime.sleep(30)" } });
  assert.equal(r.isError, true);
  assert.match(text(r), /TimeoutError|timed out/);
  r = await client.callTool({ name: "run_bash", arguments: { command: "sleep 30" } });
  assert.equal(r.isError, true);
  r = await client.callTool({ name: "run_bash", arguments: { command: "head -c 3000000 /dev/zero > /tmp/big" } });
  assert.equal(r.isError ?? false, false, JSON.stringify(r));
  r = await client.callTool({ name: "download_file", arguments: { path: "/tmp/big" } });
  assert.equal(r.isError, true);
  assert.match(text(r), /larger than this server's limit of 1048576 bytes/);
  r = await client.callTool({ name: "run_python", arguments: { code: "kept + 1" } });
  assert.equal(text(r), "2");
});

test("SIGTERM during a call ends the session and destroys its sandbox", async () => {
  const { client, transport, stderr } = await stdioClient(daemon);
  const id = sandboxOf(await client.callTool({ name: "run_python", arguments: { code: "1" } }));
  const call = client.callTool({ name: "run_bash", arguments: { command: "echo started > /tmp/s; sleep 40" } });
  // the call is running once its file is there (asked through the REST API)
  await waitFor(async () => (await fetch(`${daemon.url}/v1/sandboxes/${id}/files?path=/tmp/s`,
    { headers: { authorization: `Bearer ${daemon.key}` } })).status === 200, "the call to start");
  process.kill(transport.pid, "SIGTERM");
  // the call in flight is cut, and answered as a tool error before the server goes
  const r = await call;
  assert.equal(r.isError, true);
  assert.match(text(r), /interrupted/);
  assert.equal((await destroyed(daemon, id)).destroy_reason, "deleted");
  await client.close();
  assert.ok(!SANITIZER.test(stderr()), stderr());
});

// ---- the wire itself: JSON-RPC by hand, one message a line

function rawServer() {
  const p = spawn(CLI, ["mcp", "--url", daemon.url, "--api-key", daemon.key], {
    env: { ...process.env, ...CLI_ENV }, stdio: ["pipe", "pipe", "pipe"],
  });
  let stderr = "";
  p.stderr.on("data", (d) => { stderr += d; });
  const lines = [];
  const waiters = [];
  createInterface({ input: p.stdout }).on("line", (l) => {
    const w = waiters.shift();
    if (w) w(l); else lines.push(l);
  });
  const next = () => lines.length ? Promise.resolve(lines.shift()) : new Promise((r) => waiters.push(r));
  return {
    send: (s) => p.stdin.write(s + "\n"),
    recv: async () => JSON.parse(await next()),
    end: async () => {
      const done = new Promise((r) => p.once("exit", (code) => r(code)));
      p.stdin.end();
      const code = await done;
      assert.ok(!SANITIZER.test(stderr), stderr);
      return code;
    },
  };
}

test("JSON-RPC on the wire: version negotiation, errors, notifications", async () => {
  const s = rawServer();
  const init = (id, v) => JSON.stringify({ jsonrpc: "2.0", id, method: "initialize",
    params: { protocolVersion: v, capabilities: {}, clientInfo: { name: "raw", version: "0" } } });
  s.send(init(1, "2025-03-26"));
  let m = await s.recv();
  assert.equal(m.id, 1);
  assert.equal(m.result.protocolVersion, "2025-03-26");
  assert.equal(m.result.serverInfo.name, "airlock");
  s.send(init("two", "2025-06-18"));
  assert.equal((await s.recv()).result.protocolVersion, "2025-06-18");
  s.send(init(3, LATEST_PROTOCOL_VERSION));
  assert.equal((await s.recv()).result.protocolVersion, LATEST_PROTOCOL_VERSION);
  s.send(init(4, "1999-01-01"));
  assert.equal((await s.recv()).result.protocolVersion, LATEST_PROTOCOL_VERSION);
  // a notification is not answered: the next answer is the ping's
  s.send(JSON.stringify({ jsonrpc: "2.0", method: "notifications/initialized" }));
  s.send(JSON.stringify({ jsonrpc: "2.0", id: 5, method: "ping" }));
  assert.deepEqual(await s.recv(), { jsonrpc: "2.0", id: 5, result: {} });
  s.send(JSON.stringify({ jsonrpc: "2.0", id: 6, method: "resources/list" }));
  m = await s.recv();
  assert.equal(m.id, 6);
  assert.equal(m.error.code, -32601);
  s.send("{not json");
  m = await s.recv();
  assert.equal(m.id, null);
  assert.equal(m.error.code, -32700);
  s.send(JSON.stringify({ jsonrpc: "1.0", id: 7, method: "ping" }));
  assert.equal((await s.recv()).error.code, -32600);
  s.send(JSON.stringify({ jsonrpc: "2.0", id: 8, method: "tools/call", params: { arguments: {} } }));
  assert.equal((await s.recv()).error.code, -32602);
  s.send(JSON.stringify([{ jsonrpc: "2.0", id: 9, method: "ping" }, { jsonrpc: "2.0", method: "notifications/x" },
    { jsonrpc: "2.0", id: 10, method: "ping" }]));
  assert.deepEqual((await s.recv()).map((a) => a.id), [9, 10]);
  // a tool call that fails reaching airlockd's sandbox is still a result
  s.send(JSON.stringify({ jsonrpc: "2.0", id: 11, method: "tools/call", params: { name: "list_files", arguments: { path: "/nope" } } }));
  m = await s.recv();
  assert.equal(m.id, 11);
  assert.equal(m.result.isError, true);
  assert.equal(await s.end(), 0);
});

test("airlock help mcp", async () => {
  const out = await new Promise((res) => {
    const p = spawn(CLI, ["help", "mcp"], { env: { ...process.env, ...CLI_ENV } });
    let o = "";
    p.stdout.on("data", (d) => { o += d; });
    p.on("exit", (code) => res({ code, o }));
  });
  assert.equal(out.code, 0);
  assert.match(out.o, /^usage: airlock mcp/);
  for (const opt of ["--transport", "--listen", "--template", "--memory-mb", "--sandbox-timeout", "--call-timeout"])
    assert.ok(out.o.includes(opt), opt);
});
