// Pause and resume through E2B's own SDK: sbx.pause() (POST
// /sandboxes/{id}/pause: 204, 409 when already paused, which the SDK turns
// into false) and Sandbox.connect(id) (POST /v2/sandboxes/{id}/connect),
// which resumes a paused sandbox. Files and processes survive; calls on a
// paused sandbox are refused until it is resumed, and so is a pause while a
// command runs.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { Sandbox } from "e2b";
import { startDaemon } from "./support.mjs";

let d;
before(async () => { d = await startDaemon(); });
after(async () => { await d?.stop(); });

test("pause, connect resumes: files and a background process survive", async () => {
  const sbx = await Sandbox.create({ timeoutMs: 120_000 });
  try {
    await sbx.files.write("/home/user/kept.txt", "kept across the pause");
    // a command still running holds its deadline: the pause is refused,
    // with the reason (not E2B's 409, which the SDK would read as "already
    // paused")
    const bg = await sbx.commands.run("sleep 600", { background: true });
    await assert.rejects(sbx.pause(), /call .* is running in sandbox/);
    await bg.kill();
    // a process that outlives its command is kept across the pause
    await sbx.commands.run("sh -c 'sleep 600 >/dev/null 2>&1 &'");
    assert.equal(await sbx.pause(), true);
    assert.equal(await sbx.pause(), false); // already paused
    const info = await Sandbox.getInfo(sbx.sandboxId);
    assert.equal(info.state, "paused");
    const paused = await Sandbox.list({ query: { state: ["paused"] } }).nextItems();
    assert.deepEqual(paused.map((s) => s.sandboxId), [sbx.sandboxId]);
    const running = await Sandbox.list({ query: { state: ["running"] } }).nextItems();
    assert.ok(!running.map((s) => s.sandboxId).includes(sbx.sandboxId));
    assert.equal((await d.api("GET", `/v1/sandboxes/${sbx.sandboxId}`)).body.state, "paused");
    await assert.rejects(sbx.files.read("/home/user/kept.txt"), /paused/);

    const again = await Sandbox.connect(sbx.sandboxId, { timeoutMs: 300_000 });
    assert.equal((await Sandbox.getInfo(sbx.sandboxId)).state, "running");
    assert.equal(await again.files.read("/home/user/kept.txt"), "kept across the pause");
    assert.match((await again.commands.run("pgrep -x sleep")).stdout, /^[0-9]+\n$/);
    const r = await again.commands.run("echo resumed");
    assert.equal(r.stdout, "resumed\n");
    // connect to a running sandbox changes nothing
    await Sandbox.connect(sbx.sandboxId);
    assert.equal((await Sandbox.getInfo(sbx.sandboxId)).state, "running");
  } finally {
    await sbx.kill();
  }
});

test("kill of a paused sandbox", async () => {
  const sbx = await Sandbox.create();
  assert.equal(await sbx.pause(), true);
  assert.equal(await sbx.kill(), true);
  assert.equal((await d.api("GET", `/v1/sandboxes/${sbx.sandboxId}`)).body.state, "destroyed");
});
