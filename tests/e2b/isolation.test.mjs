// The E2B listener keeps Airlock's boundaries: a sandbox is its key's only
// (another key's E2B calls see no such sandbox), a data-plane call must name
// its sandbox, and no sandbox port other than envd's and the code
// interpreter's is served (the seal).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { Sandbox, NotFoundError } from "e2b";
import { startDaemon } from "./support.mjs";

let d, sbx, otherKey;
before(async () => {
  d = await startDaemon();
  sbx = await Sandbox.create();
  const k = await d.api("POST", "/v1/keys", { name: "other" });
  assert.equal(k.status, 201, JSON.stringify(k.body));
  otherKey = k.body.key;
});
after(async () => { await sbx?.kill(); await d?.stop(); });

test("another key's calls see no such sandbox", async () => {
  await assert.rejects(Sandbox.getInfo(sbx.sandboxId, { apiKey: otherKey }), NotFoundError);
  assert.equal(await Sandbox.kill(sbx.sandboxId, { apiKey: otherKey }), false);
  const mine = await Sandbox.list({ apiKey: otherKey }).nextItems();
  assert.deepEqual(mine, []);
  await assert.rejects(Sandbox.connect(sbx.sandboxId, { apiKey: otherKey }), NotFoundError);
  // the data plane with the other key as its token
  const r = await fetch(process.env.E2B_SANDBOX_URL + "/files?path=/etc/hostname", {
    headers: { "X-Access-Token": otherKey, "E2b-Sandbox-Id": sbx.sandboxId },
  });
  assert.equal(r.status, 404);
  assert.equal((await r.json()).code, 404);
  assert.equal(await sbx.isRunning(), true);
});

test("a data-plane call without E2b-Sandbox-Id is refused, saying what to set", async () => {
  const r = await fetch(process.env.E2B_SANDBOX_URL + "/files?path=/etc/hostname", {
    headers: { "X-Access-Token": d.key },
  });
  assert.equal(r.status, 400);
  assert.match((await r.json()).message, /E2b-Sandbox-Id.*E2B_SANDBOX_URL/);
});

test("another sandbox port is refused: the seal", async () => {
  const r = await fetch(process.env.E2B_SANDBOX_URL + "/files?path=/etc/hostname", {
    headers: { "X-Access-Token": d.key, "E2b-Sandbox-Id": sbx.sandboxId, "E2b-Sandbox-Port": "8080" },
  });
  assert.equal(r.status, 403);
  assert.match((await r.json()).message, /sealed.*cannot be reached from outside/);
});

test("another key cannot pause; network changes are refused in E2B's shape", async () => {
  await assert.rejects(Sandbox.pause(sbx.sandboxId, { apiKey: otherKey }), NotFoundError);
  assert.equal(await sbx.isRunning(), true);
  const r = await fetch(process.env.E2B_API_URL + `/sandboxes/${sbx.sandboxId}/network`, {
    method: "PUT",
    headers: { "X-API-Key": d.key, "content-type": "application/json" },
    body: JSON.stringify({ allowOut: ["0.0.0.0/0"] }),
  });
  assert.equal(r.status, 400);
  assert.match((await r.json()).message, /sealed.*no network access/);
});

test("an unknown E2B route is 404 in E2B's shape", async () => {
  const r = await fetch(process.env.E2B_API_URL + "/templates", { headers: { "X-API-Key": d.key } });
  assert.equal(r.status, 404);
  const b = await r.json();
  assert.equal(b.code, 404);
});
