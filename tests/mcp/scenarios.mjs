// The scenarios both transports run (stdio.test.mjs, http.test.mjs): each takes
// a connected MCP SDK Client of a fresh session.
import assert from "node:assert/strict";
import { text, sandboxOf } from "./support.mjs";

// The server says who it is and lists its five tools with their schemas.
export async function listTools(client) {
  assert.equal(client.getServerVersion().name, "airlock");
  assert.ok(client.getServerCapabilities().tools);
  const { tools } = await client.listTools();
  const names = tools.map((x) => x.name).sort();
  assert.deepEqual(names, ["diff", "download_file", "fork", "list_files", "merge_into", "run_bash", "run_python",
    "upload_file"]);
  for (const tool of tools) {
    assert.equal(tool.inputSchema.type, "object", tool.name);
    assert.ok(tool.description.length > 20, tool.name);
  }
  const py = tools.find((x) => x.name === "run_python");
  assert.deepEqual(py.inputSchema.required, ["code"]);
  assert.equal(py.inputSchema.properties.code.type, "string");
}

// run_python keeps its state across calls.
export async function statefulPython(client) {
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
}

// Upload a CSV, analyse it with pandas, list and download it.
export async function csvAnalysis(client) {
  const csv = "region,sales\nnorth,10\nsouth,32\nnorth,5\n";
  // the unused one of content / content_base64 sent as null, as models do
  let r = await client.callTool({ name: "upload_file", arguments: { path: "data/sales.csv", content: csv, content_base64: null } });
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
}

// A matplotlib figure comes back as an image.
export async function imageResult(client) {
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
}

// Errors are tool results with isError, and the session goes on.
export async function errorResults(client) {
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
  // a NUL inside a string is valid JSON: answered (not a parse error that
  // leaves the request hanging), and refused rather than cutting a path short
  r = await client.callTool({ name: "run_python", arguments: { code: "print(1)\u0000import os" } });
  assert.equal(r.isError, true);
  assert.match(text(r), /NUL/);
  r = await client.callTool({ name: "download_file", arguments: { path: "/etc/passwd\u0000.txt" } });
  assert.equal(r.isError, true);
  assert.match(text(r), /NUL/);
  // an unknown tool is a protocol error (JSON-RPC -32602), not a crash
  await assert.rejects(client.callTool({ name: "rm_rf", arguments: {} }), /Unknown tool/);
  // the REPL survived all of it
  r = await client.callTool({ name: "run_python", arguments: { code: "y + 1" } });
  assert.equal(text(r), "2");
}

// fork: copies addressed by "sandbox"; diff and merge_into against the
// session's sandbox; an id the session did not make is refused.
export async function forkFamily(client) {
  let r = await client.callTool({ name: "upload_file", arguments: { path: "/data/a.txt", content: "one" } });
  assert.equal(r.isError ?? false, false, JSON.stringify(r));
  const mine = sandboxOf(r);
  r = await client.callTool({ name: "fork", arguments: { n: 2 } });
  assert.equal(r.isError ?? false, false, JSON.stringify(r));
  const kids = r._meta["airlock/children"];
  assert.equal(kids.length, 2);
  r = await client.callTool({ name: "run_bash", arguments: { command: "cat /data/a.txt; echo two > /data/b.txt", sandbox: kids[0] } });
  assert.equal(text(r).trim(), "one");
  assert.equal(sandboxOf(r), kids[0]);
  r = await client.callTool({ name: "diff", arguments: { sandbox: kids[0] } });
  assert.match(text(r), /^\+ \/data\/b\.txt \(4 bytes\)$/m);
  r = await client.callTool({ name: "merge_into", arguments: { sandbox: kids[0] } });
  assert.equal(r.isError ?? false, false, JSON.stringify(r));
  r = await client.callTool({ name: "run_bash", arguments: { command: "cat /data/b.txt" } });
  assert.equal(text(r).trim(), "two");
  assert.equal(sandboxOf(r), mine);
  // the merged copy is gone from the session; another id is not accepted
  r = await client.callTool({ name: "run_bash", arguments: { command: "true", sandbox: kids[0] } });
  assert.equal(r.isError, true);
  r = await client.callTool({ name: "run_bash", arguments: { command: "true", sandbox: mine.replace(/.$/, "0") } });
  assert.equal(r.isError, true);
  assert.match(text(r), /fork tool made in this session/);
  return { mine, kept: kids[1] };
}

