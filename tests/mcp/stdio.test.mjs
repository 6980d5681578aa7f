// `airlock mcp` over stdio, driven by the official MCP TypeScript SDK's client
// (StdioClientTransport starts the CLI), against a real ASan airlockd.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { LATEST_PROTOCOL_VERSION } from "@modelcontextprotocol/sdk/types.js";
import { CLI, CLI_ENV, SANITIZER, startDaemon, stdioClient, text, sandboxOf, destroyed, waitFor } from "./support.mjs";

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
  assert.equal(client.getServerVersion().name, "airlock");
  assert.ok(client.getServerCapabilities().tools);
  const { tools } = await client.listTools();
  const names = tools.map((x) => x.name).sort();
  assert.deepEqual(names, ["download_file", "list_files", "run_bash", "run_python", "upload_file"]);
  for (const tool of tools) {
    assert.equal(tool.inputSchema.type, "object", tool.name);
    assert.ok(tool.description.length > 20, tool.name);
  }
  const py = tools.find((x) => x.name === "run_python");
  assert.deepEqual(py.inputSchema.required, ["code"]);
  assert.equal(py.inputSchema.properties.code.type, "string");
});

test("run_python keeps its state across calls", async (t) => {
  const { client } = await session(t);
  let r = await client.callTool({ name: "run_python", arguments: { code: "x = 41\nprint('hello')" } });
  assert.equal(r.isError ?? false, false, JSON.stringify(r));
  assert.equal(text(r), "hello\n");
  const id = sandboxOf(r);
  r = await client.callTool({ name: "run_python", arguments: { code: "import math\nx + 1" } });
  assert.equal(text(r), "42");
  r = await client.callTool({ name: "run_python", arguments: { code: "math.sqrt(x + 8)" } });
  assert.equal(text(r), "7.0");
  assert.equal(sandboxOf(r), id, "one sandbox for the whole session");
  r = await client.callTool({ name: "run_bash", arguments: { command: "echo $((6*7)); pwd; echo oops >&2", cwd: "/tmp" } });
  assert.equal(r.isError ?? false, false);
  assert.match(text(r), /^42\n\/tmp\n/);
  assert.match(text(r), /\[stderr\]\noops/);
});

test("upload a CSV, analyse it with pandas, list and download it", async (t) => {
  const { client } = await session(t);
  const csv = "region,sales\nnorth,10\nsouth,32\nnorth,5\n";
  let r = await client.callTool({ name: "upload_file", arguments: { path: "data/sales.csv", content: csv } });
  assert.equal(r.isError ?? false, false, JSON.stringify(r));
  assert.match(text(r), /wrote 39 bytes to \/home\/user\/data\/sales\.csv/);
  r = await client.callTool({
    name: "run_python",
    arguments: { code: "import pandas as pd\ndf = pd.read_csv('data/sales.csv')\nprint(df.groupby('region').sales.sum().to_dict())" },
  });
  assert.equal(r.isError ?? false, false, JSON.stringify(r));
  assert.equal(text(r), "{'north': 15, 'south': 32}\n");
  r = await client.callTool({ name: "list_files", arguments: { path: "data" } });
  assert.match(text(r), /^\/home\/user\/data \(1 entries\)\nfile +39 +sales\.csv\n$/);
  r = await client.callTool({ name: "run_python", arguments: { code: "df.to_csv('/tmp/out.csv', index=False)" } });
  r = await client.callTool({ name: "download_file", arguments: { path: "/tmp/out.csv" } });
  assert.equal(r.isError ?? false, false, JSON.stringify(r));
  const res = r.content.find((c) => c.type === "resource");
  assert.equal(res.resource.mimeType, "text/csv");
  assert.equal(res.resource.uri, "airlock://sandbox/tmp/out.csv");
  assert.equal(res.resource.text, csv);

  // binary both ways: base64 in, a blob out
  const bytes = Buffer.from([0, 1, 2, 255, 254, 10, 0]);
  r = await client.callTool({ name: "upload_file", arguments: { path: "/tmp/b.bin", content_base64: bytes.toString("base64") } });
  assert.equal(r.isError ?? false, false, JSON.stringify(r));
  r = await client.callTool({ name: "run_python", arguments: { code: "list(open('/tmp/b.bin','rb').read())" } });
  assert.equal(text(r), "[0, 1, 2, 255, 254, 10, 0]");
  r = await client.callTool({ name: "download_file", arguments: { path: "/tmp/b.bin" } });
  const blob = r.content.find((c) => c.type === "resource").resource;
  assert.equal(blob.mimeType, "application/octet-stream");
  assert.deepEqual(Buffer.from(blob.blob, "base64"), bytes);
});

test("a matplotlib figure comes back as an image", async (t) => {
  const { client } = await session(t);
  const r = await client.callTool({
    name: "run_python",
    arguments: {
      code: "import matplotlib\nmatplotlib.use('Agg')\nimport matplotlib.pyplot as plt\n" +
        "fig, ax = plt.subplots()\nax.plot([1, 2, 3], [1, 4, 9])\nprint('plotted')",
    },
  });
  assert.equal(r.isError ?? false, false, JSON.stringify(r).slice(0, 2000));
  assert.equal(text(r), "plotted\n");
  const img = r.content.find((c) => c.type === "image");
  assert.ok(img, "no image block: " + JSON.stringify(r.content.map((c) => c.type)));
  assert.equal(img.mimeType, "image/png");
  assert.deepEqual([...Buffer.from(img.data, "base64").subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  // a PNG written to a file reads back as an image too
  await client.callTool({ name: "run_python", arguments: { code: "fig.savefig('plot.png')" } });
  const d = await client.callTool({ name: "download_file", arguments: { path: "plot.png" } });
  assert.equal(d.content[0].type, "image");
  assert.equal(d.content[0].mimeType, "image/png");
});

test("errors are tool results with isError, and the session goes on", async (t) => {
  const { client } = await session(t);
  let r = await client.callTool({ name: "run_python", arguments: { code: "y = 1\n1/0" } });
  assert.equal(r.isError, true);
  assert.match(text(r), /ZeroDivisionError/);
  assert.match(text(r), /Error: ZeroDivisionError: division by zero/);
  r = await client.callTool({ name: "run_bash", arguments: { command: "echo partial; exit 3" } });
  assert.equal(r.isError, true);
  assert.match(text(r), /partial\n[\s\S]*exit code: 3/);
  r = await client.callTool({ name: "run_python", arguments: {} });
  assert.equal(r.isError, true);
  assert.match(text(r), /needs "code"/);
  r = await client.callTool({ name: "download_file", arguments: { path: "/tmp/nope.txt" } });
  assert.equal(r.isError, true);
  assert.match(text(r), /not_found|no such/i);
  r = await client.callTool({ name: "upload_file", arguments: { path: "/etc/x", content: "x" } });
  assert.equal(r.isError, true);
  r = await client.callTool({ name: "upload_file", arguments: { path: "/tmp/x", content_base64: "not base64!" } });
  assert.equal(r.isError, true);
  assert.match(text(r), /base64/);
  // an unknown tool is a protocol error (JSON-RPC -32602), not a crash
  await assert.rejects(client.callTool({ name: "rm_rf", arguments: {} }), /Unknown tool/);
  // the REPL survived all of it
  r = await client.callTool({ name: "run_python", arguments: { code: "y + 1" } });
  assert.equal(text(r), "2");
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
