// Malformed data-plane requests are answered (400 in Connect's or E2B's
// shape), never crash the daemon (ASan would report it at stop()).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { Sandbox } from "e2b";
import { startDaemon } from "./support.mjs";

let d, sbx, headers;
before(async () => {
  d = await startDaemon();
  sbx = await Sandbox.create();
  headers = { "X-Access-Token": d.key, "E2b-Sandbox-Id": sbx.sandboxId };
});
after(async () => { await sbx?.kill(); await d?.stop(); });

const post = (path, body, type) => fetch(process.env.E2B_SANDBOX_URL + path, {
  method: "POST", headers: { ...headers, "content-type": type }, body,
});

function envelope(flags, text, lenOverride) {
  const payload = Buffer.from(text);
  const head = Buffer.alloc(5);
  head[0] = flags;
  head.writeUInt32BE(lenOverride ?? payload.length, 1);
  return Buffer.concat([head, payload]);
}

test("Start: bad envelopes and messages", async () => {
  const cases = [
    Buffer.alloc(0),
    Buffer.from([0, 0, 0]),
    envelope(0, "{}", 1000),
    envelope(0, "{}", 0xffffffff),
    envelope(1, "{}"),
    envelope(0, "not json"),
    envelope(0, "[1,2]"),
    envelope(0, "{}"),
    envelope(0, JSON.stringify({ process: { cmd: 5 } })),
    envelope(0, JSON.stringify({ process: { cmd: "/bin/true", args: [1, 2] } })),
    envelope(0, JSON.stringify({ process: { cmd: "", args: [] } })),
    envelope(0, JSON.stringify({ process: { cmd: "/bin/true", envs: { "A=B": "x" } } })),
  ];
  // a streamed RPC's error is Connect's: HTTP 200, one end-of-stream envelope
  for (const body of cases) {
    const r = await post("/process.Process/Start", body, "application/connect+json");
    assert.equal(r.status, 200, `${body.toString("hex")}: ${r.status}`);
    const buf = Buffer.from(await r.arrayBuffer());
    assert.equal(buf[0], 2, buf.toString());
    assert.equal(buf.readUInt32BE(1), buf.length - 5);
    const e = JSON.parse(buf.subarray(5).toString()).error;
    assert.equal(e.code, "invalid_argument", `${body.toString("hex")}: ${e.message}`);
  }
});

test("unary RPCs: wrong field types", async () => {
  for (const [path, body] of [
    ["/filesystem.Filesystem/Stat", { path: 5 }],
    ["/filesystem.Filesystem/ListDir", {}],
    ["/filesystem.Filesystem/Move", { source: "/home/user/a" }],
    ["/filesystem.Filesystem/Remove", { path: "" }],
    ["/filesystem.Filesystem/MakeDir", { path: "/proc/x\u0000y" }],
    ["/process.Process/SendSignal", { process: { pid: "x" }, signal: "SIGNAL_SIGKILL" }],
    ["/process.Process/SendSignal", { process: { pid: 1 }, signal: "SIGNAL_SIGHUP" }],
  ]) {
    const r = await post(path, JSON.stringify(body), "application/json");
    assert.equal(r.status, 400, `${path} ${JSON.stringify(body)}: ${r.status}`);
    assert.equal((await r.json()).code, "invalid_argument");
  }
});

test("uploads: no path, no file part, garbage multipart", async () => {
  let r = await post("/files", "x", "application/octet-stream");
  assert.equal(r.status, 400);
  r = await fetch(process.env.E2B_SANDBOX_URL + "/files?path=/home/user/m.txt", {
    method: "POST", headers: { ...headers, "content-type": "multipart/form-data; boundary=XX" },
    body: "--XX\r\nContent-Disposition: form-data; name=\"other\"\r\n\r\nv\r\n--XX--\r\n",
  });
  assert.equal(r.status, 400);
  assert.match((await r.json()).message, /no "file" part/);
  r = await fetch(process.env.E2B_SANDBOX_URL + "/files?path=/home/user/m.txt", {
    method: "POST", headers: { ...headers, "content-type": "multipart/form-data" }, body: "junk",
  });
  assert.equal(r.status, 400);
  // the sandbox is still fine
  assert.equal((await sbx.commands.run("echo ok")).stdout, "ok\n");
});

test("execute: bad bodies", async () => {
  const h = { ...headers, "E2b-Sandbox-Port": "49999", "content-type": "application/json" };
  for (const body of ["[]", "{\"code\":1}", "nope", "{}"]) {
    const r = await fetch(process.env.E2B_SANDBOX_URL + "/execute", { method: "POST", headers: h, body });
    assert.equal(r.status, 400, body);
    assert.equal((await r.json()).code, 400);
  }
});
