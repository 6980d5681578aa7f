// E2B's control plane through the unmodified `e2b` package: create with
// template, timeout, metadata and env vars; getInfo; list with filters and
// pagination; setTimeout; connect; kill; and the refusals the seal makes.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { Sandbox, SandboxError, NotFoundError } from "e2b";
import { startDaemon } from "./support.mjs";

let d;
before(async () => { d = await startDaemon(); });
after(async () => { await d?.stop(); });

test("create with template, timeout, metadata, envs; getInfo; kill", async () => {
  const sbx = await Sandbox.create("base", { timeoutMs: 120_000, metadata: { owner: "e2b-test" }, envs: { FOO: "bar" } });
  assert.match(sbx.sandboxId, /.+/);
  const native = await d.api("GET", `/v1/sandboxes/${sbx.sandboxId}`);
  assert.equal(native.status, 200);
  assert.equal(native.body.template, "host");
  assert.equal(native.body.timeout_s, 120);
  assert.deepEqual(native.body.metadata, { owner: "e2b-test" });
  const info = await sbx.getInfo();
  assert.equal(info.sandboxId, sbx.sandboxId);
  assert.equal(info.state, "running");
  assert.deepEqual(info.metadata, { owner: "e2b-test" });
  assert.ok(info.endAt > info.startedAt);
  assert.equal(await sbx.isRunning(), true);
  await sbx.kill();
  assert.equal(await sbx.isRunning(), false);
  assert.equal((await d.api("GET", `/v1/sandboxes/${sbx.sandboxId}`)).body.state, "destroyed");
  await assert.rejects(Sandbox.getInfo(sbx.sandboxId), NotFoundError);
  assert.equal(await Sandbox.kill(sbx.sandboxId), false);
});

test("list filters by metadata and paginates with nextToken", async () => {
  const tag = "t" + Date.now();
  const made = [];
  for (let i = 0; i < 3; i++) made.push(await Sandbox.create({ metadata: { tag, i: String(i) } }));
  const other = await Sandbox.create({ metadata: { tag: "other" } });
  try {
    const pager = Sandbox.list({ query: { metadata: { tag } }, limit: 2 });
    const first = await pager.nextItems();
    assert.equal(first.length, 2);
    assert.equal(pager.hasNext, true);
    const second = await pager.nextItems();
    assert.equal(second.length, 1);
    assert.equal(pager.hasNext, false);
    const ids = [...first, ...second].map((s) => s.sandboxId).sort();
    assert.deepEqual(ids, made.map((s) => s.sandboxId).sort());
    for (const s of [...first, ...second]) assert.equal(s.state, "running");
    const one = await Sandbox.list({ query: { metadata: { tag, i: "1" } } }).nextItems();
    assert.deepEqual(one.map((s) => s.sandboxId), [made[1].sandboxId]);
    const paused = await Sandbox.list({ query: { state: ["paused"] } }).nextItems();
    assert.deepEqual(paused, []);
    const later = await Sandbox.list({ query: { metadata: { tag }, startedAfter: new Date(Date.now() + 3600_000) } }).nextItems();
    assert.deepEqual(later, []);
    const since = await Sandbox.list({ query: { metadata: { tag }, startedAfter: new Date(Date.now() - 3600_000) } }).nextItems();
    assert.equal(since.length, 3);
    await assert.rejects(Sandbox.list({ order: "desc" }).nextItems(), /order=desc is not available/);
  } finally {
    for (const s of [...made, other]) await s.kill();
  }
});

test("setTimeout and connect", async () => {
  const sbx = await Sandbox.create({ timeoutMs: 60_000 });
  try {
    await sbx.setTimeout(600_000);
    assert.equal((await d.api("GET", `/v1/sandboxes/${sbx.sandboxId}`)).body.timeout_s, 600);
    const again = await Sandbox.connect(sbx.sandboxId);
    assert.equal(again.sandboxId, sbx.sandboxId);
    assert.equal((await again.getInfo()).state, "running");
    await assert.rejects(Sandbox.connect("sb_nosuchsandbox"), NotFoundError);
  } finally {
    await sbx.kill();
  }
});

test("what would open the seal is refused in E2B's error shape, saying why", async () => {
  await assert.rejects(Sandbox.create({ allowInternetAccess: true }), (e) => {
    assert.ok(e instanceof SandboxError, String(e));
    assert.match(e.message, /sealed.*no network access/);
    return true;
  });
  await assert.rejects(Sandbox.create({ network: { allowPublicTraffic: true } }), /sealed.*public sandbox URLs/);
  await assert.rejects(Sandbox.create({ network: { allowOut: ["8.8.8.8"] } }), /sealed/);
  const r = await fetch(process.env.E2B_API_URL + "/v2/sandboxes", {
    method: "POST",
    headers: { "X-API-Key": d.key, "content-type": "application/json" },
    body: JSON.stringify({ templateID: "base", allow_internet_access: true }),
  });
  assert.equal(r.status, 400);
  const body = await r.json();
  assert.equal(body.code, 400);
  assert.match(body.message, /sealed/);
});

test("a wrong API key is refused with 401", async () => {
  await assert.rejects(Sandbox.create({ apiKey: "ak_wrong" }), /401|unknown|API key/i);
});
