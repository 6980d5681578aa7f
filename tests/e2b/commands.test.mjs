// Commands through the unmodified `e2b` package: envd's process.Process
// Start (a Connect server stream in JSON) with streamed output, exit codes,
// envs and cwd, stdin (SendInput, CloseStdin), background commands listed
// (List), attached to (Connect) and killed by pid (SendSignal).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { Sandbox, CommandExitError, NotFoundError } from "e2b";
import { startDaemon } from "./support.mjs";

let d, sbx;
before(async () => { d = await startDaemon(); sbx = await Sandbox.create(); });
after(async () => { await sbx?.kill(); await d?.stop(); });

test("run returns stdout, stderr and the exit code", async () => {
  const r = await sbx.commands.run("echo hello; echo oops >&2");
  assert.equal(r.exitCode, 0);
  assert.equal(r.stdout, "hello\n");
  assert.equal(r.stderr, "oops\n");
});

test("output streams through onStdout and onStderr", async () => {
  const out = [], err = [];
  await sbx.commands.run("for i in 1 2 3; do echo line$i; done; echo e >&2",
    { onStdout: (s) => out.push(s), onStderr: (s) => err.push(s) });
  assert.equal(out.join(""), "line1\nline2\nline3\n");
  assert.equal(err.join(""), "e\n");
});

test("a failing command throws CommandExitError with its exit code", async () => {
  await assert.rejects(sbx.commands.run("echo no >&2; exit 3"), (e) => {
    assert.ok(e instanceof CommandExitError, String(e));
    assert.equal(e.exitCode, 3);
    assert.equal(e.stderr, "no\n");
    return true;
  });
});

test("envs and cwd reach the command", async () => {
  const r = await sbx.commands.run("echo $GREETING; pwd", { envs: { GREETING: "hi" }, cwd: "/tmp" });
  assert.equal(r.stdout, "hi\n/tmp\n");
});

test("stdin: sendStdin feeds a running command, closeStdin ends its input", async () => {
  const out = [];
  const h = await sbx.commands.run("cat; echo end", { background: true, stdin: true, onStdout: (s) => out.push(s) });
  await sbx.commands.sendStdin(h.pid, "first\n");
  await sbx.commands.sendStdin(h.pid, new TextEncoder().encode("second\n"));
  await sbx.commands.closeStdin(h.pid);
  const r = await h.wait();
  assert.equal(r.exitCode, 0);
  assert.equal(r.stdout, "first\nsecond\nend\n");
  assert.equal(out.join(""), "first\nsecond\nend\n");
});

test("connect attaches to a running command: its later output and exit", async () => {
  const h = await sbx.commands.run("read line; echo got $line; exit 4", { background: true, stdin: true });
  const attached = [];
  const again = await sbx.commands.connect(h.pid, { onStdout: (s) => attached.push(s) });
  assert.equal(again.pid, h.pid);
  await sbx.commands.sendStdin(h.pid, "x\n");
  await assert.rejects(again.wait(), (e) => {
    assert.ok(e instanceof CommandExitError, String(e));
    assert.equal(e.exitCode, 4);
    return true;
  });
  assert.equal(attached.join(""), "got x\n");
  await assert.rejects(h.wait(), (e) => e instanceof CommandExitError && e.exitCode === 4);
  await assert.rejects(sbx.commands.connect(h.pid), /not_found.*no running command/i);
});

test("list shows running commands until they end", async () => {
  const h = await sbx.commands.run("sleep 600", { background: true });
  const listed = await sbx.commands.list();
  const mine = listed.find((p) => p.pid === h.pid);
  assert.ok(mine, JSON.stringify(listed));
  assert.equal(mine.cmd, "/bin/bash");
  assert.deepEqual(mine.args, ["-l", "-c", "sleep 600"]);
  await sbx.commands.kill(h.pid);
  await assert.rejects(h.wait(), CommandExitError);
  assert.equal((await sbx.commands.list()).some((p) => p.pid === h.pid), false);
});

test("commands in a killed sandbox fail with the sandbox's error", async () => {
  const other = await Sandbox.create();
  await other.kill();
  await assert.rejects(other.commands.run("true"), (e) => e instanceof NotFoundError && /destroyed/.test(e.message));
});

test("a background command can be killed by its pid", async () => {
  const h = await sbx.commands.run("echo started; sleep 600", { background: true });
  assert.ok(h.pid > 0);
  assert.equal(await sbx.commands.kill(h.pid), true);
  await assert.rejects(h.wait(), (e) => {
    assert.ok(e instanceof CommandExitError, String(e));
    assert.match(e.error ?? e.message, /signal|killed/);
    return true;
  });
});

test("a background command outlives its Start stream: disconnect, list, connect, stdin, kill", async () => {
  const h = await sbx.commands.run("read x; echo after $x; sleep 600", { background: true, stdin: true });
  await h.disconnect(); // the SDK's Start stream is gone; envd keeps the command, so does Airlock
  // a daemon that ended commands with their stream noticed the gone client within 1 s: give it that
  await new Promise((r) => setTimeout(r, 1500));
  const listed = await sbx.commands.list();
  assert.ok(listed.some((p) => p.pid === h.pid), JSON.stringify(listed));
  const out = [];
  const again = await sbx.commands.connect(h.pid, { onStdout: (s) => out.push(s) });
  await sbx.commands.sendStdin(h.pid, "ok\n");
  for (let i = 0; i < 200 && !out.join("").includes("\n"); i++) await new Promise((r) => setTimeout(r, 50));
  assert.equal(out.join(""), "after ok\n");
  assert.equal(await sbx.commands.kill(h.pid), true);
  await assert.rejects(again.wait(), (e) => e instanceof CommandExitError && /signal|killed/.test(e.error ?? e.message));
  assert.equal((await sbx.commands.list()).some((p) => p.pid === h.pid), false);
});

test("a command started in the background serves a later command", async () => {
  const srv = await sbx.commands.run("exec python3 -m http.server 8124 --bind 127.0.0.1", { background: true, cwd: "/tmp" });
  await srv.disconnect();
  const r = await sbx.commands.run(
    "for i in $(seq 100); do python3 -c \"import urllib.request as u; print(u.urlopen('http://127.0.0.1:8124/').status)\" 2>/dev/null && break; sleep 0.1; done");
  assert.equal(r.stdout.trim(), "200");
  assert.equal(await sbx.commands.kill(srv.pid), true);
});

test("pty.create: a terminal (isatty, its size), input, resize, kill", async () => {
  const chunks = [];
  const dec = new TextDecoder();
  const text = () => chunks.map((c) => dec.decode(c)).join("");
  const h = await sbx.pty.create({ rows: 30, cols: 100, onData: (d) => chunks.push(d) });
  const until = async (re) => {
    for (let i = 0; i < 400 && !re.test(text()); i++) await new Promise((r) => setTimeout(r, 50));
    assert.match(text(), re);
  };
  await sbx.pty.sendInput(h.pid, new TextEncoder().encode("stty size; tty; python3 -c 'import sys; print(\"tty\", sys.stdin.isatty())'\n"));
  await until(/30 100/);
  await until(/\/dev\/pts\/\d+/);
  await until(/tty True/);
  await sbx.pty.resize(h.pid, { cols: 132, rows: 50 });
  await sbx.pty.sendInput(h.pid, new TextEncoder().encode("stty size\n"));
  await until(/50 132/);
  assert.equal(await sbx.pty.kill(h.pid), true);
  await assert.rejects(h.wait());
});
