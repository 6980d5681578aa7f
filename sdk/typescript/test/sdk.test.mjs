// Against a real airlockd (tests/node/airlockd.mjs, as tests/e2e/e2e_support.py's Daemon for Python).
// Env: AIRLOCK_DAEMON, AIRLOCK_AGENT, AIRLOCK_RUNNER, AIRLOCK_ZYGOTE (see the Makefile's test-ts).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startDaemon } from "../../../tests/node/airlockd.mjs";
import { existsSync, readFileSync } from "node:fs";
import { randomBytes, createHash } from "node:crypto";
import { Sandbox, NotFound, AuthError, AirlockError, IntegrityError, TransferError, Execution, SandboxPaused, SandboxBusy } from "../dist/index.js";

let daemon, url, key;

before(async () => {
  daemon = await startDaemon({ args: ["--region", "eu"], prefix: "airlock-ts-" });
  ({ url, key } = daemon);
  process.env.AIRLOCK_URL = url;
  process.env.AIRLOCK_API_KEY = key;
});

after(async () => {
  if (daemon) await daemon.stop();
});

test("create, runCode keeps state across calls, list, setTimeout, kill", async () => {
  const sb = await Sandbox.create({ timeout: 120, metadata: { who: "ts" } });
  try {
    assert.match(sb.id, /.+/);
    let ex = await sb.runCode("x = 41\nprint('hi')");
    assert.ok(ex instanceof Execution);
    assert.equal(ex.stdout, "hi\n");
    assert.equal(ex.logs.stdout, "hi\n");
    assert.equal(ex.error, null);
    ex = await sb.runCode("x + 1");
    assert.equal(ex.text, "42");
    assert.ok(ex.results[0].isMainResult);
    const ids = (await Sandbox.list()).map((s) => s.id);
    assert.ok(ids.includes(sb.id));
    const info = await sb.setTimeout(600);
    assert.equal(info.id, sb.id);
    const again = await Sandbox.connect(sb.id);
    assert.equal((await again.runCode("x")).text, "41");
  } finally {
    await sb.kill();
  }
  await sb.kill(); // idempotent
  await assert.rejects(Sandbox.connect(sb.id), NotFound);
  assert.ok(!(await Sandbox.list()).map((s) => s.id).includes(sb.id));
});

test("pause and resume keep the REPL and files; connect resumes; calls while paused throw SandboxPaused", async () => {
  const sb = await Sandbox.create({ url, apiKey: key });
  try {
    await sb.runCode("kept = 'yes'");
    await sb.upload("file kept", "/data/k.txt");
    assert.equal((await sb.pause()).state, "paused");
    assert.equal((await sb.pause()).state, "paused"); // idempotent
    await assert.rejects(sb.runCode("kept"), SandboxPaused);
    assert.equal((await sb.resume()).state, "running");
    assert.equal((await sb.runCode("kept")).text, "'yes'");
    await sb.pause();
    const again = await Sandbox.connect(sb.id, { url, apiKey: key });
    assert.equal(again.sandboxInfo.state, "running");
    assert.equal(new TextDecoder().decode(await again.download("/data/k.txt")), "file kept");
    const running = sb.runCode("import time; time.sleep(2); 1");
    await new Promise((r) => setTimeout(r, 700));
    await assert.rejects(sb.pause(), SandboxBusy);
    assert.equal((await running).text, "1");
  } finally {
    await sb.kill();
  }
});

test("streaming: async iterator and callbacks", async () => {
  const sb = await Sandbox.create({ timeout: 120 });
  try {
    const code = "import sys\nprint('a')\nprint('b', file=sys.stderr)\n6*7";
    const events = [];
    for await (const ev of sb.runCodeStream(code)) events.push(ev);
    const types = events.map((e) => e.type);
    assert.equal(events.find((e) => e.type === "result").results[0]["text/plain"], "42");
    assert.ok(types.includes("stdout") && types.includes("stderr") && types.includes("result"), types.join(","));
    assert.equal(types.at(-1), "exit");
    assert.equal(events.filter((e) => e.type === "stdout").map((e) => e.data).join(""), "a\n");

    const out = [], err = [], res = [];
    const ex = await sb.runCode(code, { onStdout: (d) => out.push(d), onStderr: (d) => err.push(d), onResult: (r) => res.push(r) });
    assert.equal(out.join(""), "a\n");
    assert.equal(err.join(""), "b\n");
    assert.equal(res[0]["text/plain"], "42");
    assert.equal(ex.stdout, "a\n");
    assert.equal(ex.text, "42");

    const errs = [];
    const bad = await sb.runCode("1/0", { onError: (e) => errs.push(e) });
    assert.equal(bad.error?.name, "ZeroDivisionError");
    assert.equal(errs[0]?.name, "ZeroDivisionError");
  } finally {
    await sb.kill();
  }
});

test("an error result: name, value, traceback", async () => {
  const sb = await Sandbox.create({ timeout: 120 });
  try {
    const ex = await sb.runCode("raise ValueError('boom')");
    assert.equal(ex.error.name, "ValueError");
    assert.equal(ex.error.value, "boom");
    assert.match(ex.error.traceback, /ValueError/);
    assert.equal(ex.ok, false);
  } finally {
    await sb.kill();
  }
});

test("code contexts: independent globals, list, restart, remove", async () => {
  const sb = await Sandbox.create({ timeout: 120 });
  try {
    await sb.runCode("x = 1");
    const ctx = await sb.createCodeContext({ cwd: "/tmp" });
    assert.equal(ctx.language, "python");
    assert.equal(ctx.cwd, "/tmp");
    assert.equal((await sb.runCode("x", { context: ctx })).error.name, "NameError");
    await sb.runCode("x = 2", { context: ctx });
    assert.equal((await sb.runCode("x", { context: ctx.id })).text, "2");
    assert.equal((await sb.runCode("x")).text, "1");
    assert.deepEqual((await sb.listCodeContexts()).map((c) => c.id), ["default", ctx.id]);
    assert.equal((await sb.restartCodeContext(ctx)).id, ctx.id);
    assert.equal((await sb.runCode("x", { context: ctx })).error.name, "NameError");
    await sb.removeCodeContext(ctx);
    await assert.rejects(sb.runCode("1", { context: ctx }), NotFound);
    assert.equal((await sb.runCode("x")).text, "1");
  } finally {
    await sb.kill();
  }
});

test("exec with env, cwd, stdin; bash language", async () => {
  const sb = await Sandbox.create({ timeout: 120, env: { FROM_CREATE: "c" } });
  try {
    const ex = await sb.exec(["sh", "-c", "echo $FOO $FROM_CREATE; pwd; cat"], { env: { FOO: "bar" }, cwd: "/tmp", stdin: "in\n" });
    assert.equal(ex.exitCode, 0, ex.stderr);
    assert.equal(ex.stdout, "bar c\n/tmp\nin\n");
    const fail = await sb.exec("exit 3");
    assert.equal(fail.exitCode, 3);
    const b = await sb.runCode("echo $((2+3))", { language: "bash" });
    assert.equal(b.stdout, "5\n");
  } finally {
    await sb.kill();
  }
});

test("background exec: handle, stdin, list, connect replays, kill", async () => {
  const sb = await Sandbox.create({ timeout: 120 });
  try {
    const h = await sb.exec("cat; echo done", { background: true });
    assert.ok(h.pid > 1 && h.info.state === "running", JSON.stringify(h.info));
    await h.sendStdin("hello\n");
    await h.closeStdin();
    const r = await h.wait({ timeoutS: 30 });
    assert.equal(r.exitCode, 0);
    assert.equal(r.stdout, "hello\ndone\n");
    assert.equal(r.raw.output_complete, true);
    const again = await sb.processes.connect(h.pid);
    assert.equal((await again.wait()).stdout, "hello\ndone\n");
    const s = await sb.exec(["sleep", "300"], { background: true });
    assert.deepEqual((await sb.processes.list({ runningOnly: true })).map((p) => p.pid), [s.pid]);
    assert.equal(await s.kill(), true);
    assert.equal((await s.wait()).raw.killed_signal, 9);
    assert.equal(await s.kill(), false);
  } finally {
    await sb.kill();
  }
});

test("file round trip with digest; list, exists, remove", async () => {
  const sb = await Sandbox.create({ timeout: 120 });
  try {
    const data = randomBytes(300000);
    const w = await sb.files.write("/home/user/blob.bin", data);
    assert.equal(w.size, data.length);
    const back = await sb.files.read("/home/user/blob.bin");
    assert.equal(createHash("sha256").update(back).digest("hex"), createHash("sha256").update(data).digest("hex"));
    const py = await sb.runCode("import hashlib; hashlib.sha256(open('/home/user/blob.bin','rb').read()).hexdigest()");
    assert.equal(py.text, `'${createHash("sha256").update(data).digest("hex")}'`);
    await sb.files.write("/home/user/t.txt", "héllo");
    assert.equal(await sb.files.readText("/home/user/t.txt"), "héllo");
    assert.ok((await sb.files.list("/home/user")).some((e) => e.name === "t.txt"));
    assert.equal(await sb.files.exists("/home/user/t.txt"), true);
    assert.equal(await sb.files.exists("t.txt"), true); // relative: under /home/user
    assert.equal(await sb.files.remove("t.txt"), true);
    assert.equal(await sb.files.exists("/home/user/t.txt"), false);
    assert.equal(await sb.files.remove("t.txt"), false); // missing: not an error
    await assert.rejects(sb.files.read("/home/user/nope"), NotFound);
  } finally {
    await sb.kill();
  }
});

test("files: makeDir, rename (409 exists unless overwrite), getInfo, list with a depth, writeFiles", async () => {
  const sb = await Sandbox.create({ timeout: 120 });
  try {
    assert.equal(await sb.files.makeDir("ts/x/y"), true);
    assert.equal(await sb.files.makeDir("/home/user/ts/x/y"), false);
    await sb.files.write("ts/x/y/f.txt", "abc");
    const info = await sb.files.getInfo("ts/x/y/f.txt");
    assert.equal(info.path, "/home/user/ts/x/y/f.txt");
    assert.equal(info.type, "file");
    assert.equal(info.size, 3);
    assert.equal(info.mode_octal, "0644");
    assert.equal(info.permissions, "-rw-r--r--");
    assert.equal(info.symlink_target, null);
    assert.match(info.modified_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    const moved = await sb.files.rename("ts/x/y/f.txt", "ts/g.txt");
    assert.equal(moved.path, "/home/user/ts/g.txt");
    await sb.files.write("ts/h.txt", "h");
    await assert.rejects(sb.files.rename("ts/g.txt", "ts/h.txt"),
      (e) => e instanceof AirlockError && e.status === 409 && e.code === "exists");
    await sb.files.rename("ts/g.txt", "ts/h.txt", { overwrite: true });
    assert.equal(await sb.files.readText("ts/h.txt"), "abc");
    assert.deepEqual((await sb.files.list("ts", { depth: 3 })).map((e) => e.path),
      ["/home/user/ts/h.txt", "/home/user/ts/x", "/home/user/ts/x/y"]);
    assert.deepEqual((await sb.files.list("ts")).map((e) => e.name), ["h.txt", "x"]);
    await assert.rejects(sb.files.getInfo("ts/nope"), NotFound);
    const many = await sb.files.writeFiles([{ path: "ts/m/one.txt", data: "1" }, { path: "/data/ts/two.bin", data: new Uint8Array([0, 255, 13, 10]) }]);
    assert.deepEqual(many, [{ path: "/home/user/ts/m/one.txt", size: 1 }, { path: "/data/ts/two.bin", size: 4 }]);
    assert.deepEqual(Array.from(await sb.files.read("/data/ts/two.bin")), [0, 255, 13, 10]);
    const big = new Uint8Array(2_000_000).fill(122);
    assert.equal((await sb.files.write("/data/ts/big.txt", big, { gzip: true })).size, big.length);
    const viaGzip = await sb.files.read("/data/ts/big.txt", { gzip: true });
    assert.equal(viaGzip.length, big.length);
    assert.ok(viaGzip.every((b) => b === 122));
    assert.equal(await sb.files.exists("ts/x/y"), true);
  } finally {
    await sb.kill();
  }
});

test("files.watchDir: events as they happen, end when the directory goes, stop()", async () => {
  const sb = await Sandbox.create({ timeout: 120 });
  try {
    await sb.files.makeDir("/data/tw/sub");
    const w = await sb.files.watchDir("/data/tw", { recursive: true });
    assert.equal(w.path, "/data/tw");
    assert.equal(w.recursive, true);
    await sb.files.write("/data/tw/sub/x.txt", "x");
    await sb.files.remove("/data/tw");
    const seen = [];
    for await (const ev of w) seen.push(`${ev.type} ${ev.path ?? ""}`);
    assert.ok(seen.includes("create /data/tw/sub/x.txt"), seen.join("; "));
    assert.ok(seen[seen.length - 1].startsWith("end"), seen.join("; "));
    await sb.files.makeDir("/data/tw2");
    const w2 = await sb.files.watchDir("/data/tw2");
    const it = w2[Symbol.asyncIterator]();
    const pending = it.next();
    w2.stop(); // ends a read under way without an error
    assert.equal((await pending).done, true);
    await assert.rejects(sb.files.watchDir("/data/never"), NotFound);
  } finally {
    await sb.kill();
  }
});

test("fork, diff, mergeInto (jail: files)", async () => {
  const sb = await Sandbox.create();
  try {
    await sb.upload("a,b\n1,2\n", "/data/x.csv");
    const [kid] = await sb.fork(1);
    assert.equal(kid.forkState, "files");
    assert.equal((await kid.getInfo()).parent_id, sb.id);
    assert.equal(new TextDecoder().decode(await kid.download("/data/x.csv")), "a,b\n1,2\n");
    await kid.upload("new", "/data/new.txt");
    const d = await sb.diff(kid);
    assert.deepEqual(d.added.map((e) => e.path), ["/data/new.txt"]);
    const m = await kid.mergeInto(sb);
    assert.equal(m.merged_from, kid.id);
    assert.equal(new TextDecoder().decode(await sb.download("/data/new.txt")), "new");
  } finally {
    await sb.kill();
  }
});

test("typed API errors: 404 NotFound on an unknown id, digest mismatch is IntegrityError", async () => {
  await assert.rejects(Sandbox.connect("sb_doesnotexist"), (e) => e instanceof NotFound && e.status === 404 && e instanceof AirlockError);
  await assert.rejects(Sandbox.list({ apiKey: "ak_" + "0".repeat(32) }), (e) => e instanceof AuthError && e.status === 401);
  // a raw PUT with a wrong X-Content-SHA256: the agent refuses it (400 digest_mismatch)
  const sb = await Sandbox.create({ timeout: 120 });
  try {
    const { Transport } = await import("../dist/index.js");
    const t = new Transport();
    await assert.rejects(t.requestJson("PUT", `/v1/sandboxes/${sb.id}/files`, undefined, {
      query: { path: "/home/user/x" }, body: new TextEncoder().encode("abc"),
      headers: { "Content-Type": "application/octet-stream", "X-Content-SHA256": "0".repeat(64) },
    }), (e) => e instanceof IntegrityError && e instanceof TransferError && e.code === "digest_mismatch");
    assert.equal(await sb.files.exists("/home/user/x"), false);
  } finally {
    await sb.kill();
  }
});

test("against a fake daemon: bad digest / short download / cut stream throw, upload sends its sha256", async () => {
  const { createServer: httpServer } = await import("node:http");
  let uploaded = null;
  const srv = httpServer((req, res) => {
    if (req.method === "PUT") {
      const chunks = [];
      req.on("data", (c) => chunks.push(c));
      req.on("end", () => {
        uploaded = { sha: req.headers["x-content-sha256"], body: Buffer.concat(chunks) };
        res.writeHead(200, { "Content-Type": "application/json" });
        res.end(JSON.stringify({ path: "/p", size: uploaded.body.length }));
      });
    } else if (req.method === "POST") {
      // a stream cut before its terminal event
      res.writeHead(200, { "Content-Type": "application/x-ndjson" });
      res.end('{"type":"stdout","data":"x"}\n');
    } else if (req.url.startsWith("/v1/sandboxes/sb_x/files?") && req.url.includes("short")) {
      res.writeHead(200, { "Content-Length": "10" });
      res.flushHeaders();
      res.write("abc");
      setTimeout(() => res.socket.destroy(), 100);
    } else if (req.url.startsWith("/v1/sandboxes/sb_x/files?")) {
      res.writeHead(200, { "Content-Length": "3", "X-Content-SHA256": "0".repeat(64) });
      res.end("abc");
    } else {
      res.writeHead(200, { "Content-Type": "application/json" });
      res.end(JSON.stringify({ id: "sb_x", state: "running" }));
    }
  });
  await new Promise((r) => srv.listen(0, "127.0.0.1", r));
  try {
    const sb = await Sandbox.connect("sb_x", { baseUrl: `http://127.0.0.1:${srv.address().port}`, apiKey: "k" });
    await assert.rejects(sb.download("/bad"), IntegrityError);
    await assert.rejects(sb.download("/short"), TransferError);
    await sb.upload("payload", "/p");
    assert.equal(uploaded.body.toString(), "payload");
    assert.equal(uploaded.sha, createHash("sha256").update("payload").digest("hex"));
    const seen = [];
    await assert.rejects((async () => { for await (const ev of sb.runCodeStream("1")) seen.push(ev); })(), TransferError);
    assert.equal(seen.length, 1);
    await assert.rejects(sb.runCode("1", { onStdout: () => {} }), TransferError);
  } finally {
    srv.close();
    srv.closeAllConnections();
  }
});

test("the package has no runtime dependencies and exports its types", () => {
  const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8"));
  assert.equal(pkg.dependencies, undefined);
  assert.equal(pkg.type, "module");
  assert.equal(pkg.exports["."].types, "./dist/index.d.ts");
  assert.ok(existsSync(new URL("../dist/index.d.ts", import.meta.url)));
});
