// files.watchDir through the unmodified `e2b` package: WatchDir (a Connect
// stream) reports files created, written and removed in the directory.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { Sandbox, FilesystemEventType } from "e2b";
import { startDaemon } from "./support.mjs";

let d, sbx;
before(async () => { d = await startDaemon(); sbx = await Sandbox.create(); });
after(async () => { await sbx?.kill(); await d?.stop(); });

// Wait (polling the events seen, not a duration) until pred holds.
async function until(pred, what) {
  for (let i = 0; i < 600 && !pred(); i++) await new Promise((r) => setTimeout(r, 50));
  assert.ok(pred(), "never saw " + what);
}

test("watchDir reports create, write and remove", async () => {
  await sbx.files.makeDir("/home/user/watched");
  const events = [];
  const h = await sbx.files.watchDir("/home/user/watched", (e) => events.push(e), { timeoutMs: 0 });
  try {
    await sbx.files.write("/home/user/watched/a.txt", "one");
    await until(() => events.some((e) => e.name === "a.txt" && e.type === FilesystemEventType.CREATE), "CREATE");
    await sbx.files.write("/home/user/watched/a.txt", "longer content");
    await until(() => events.some((e) => e.name === "a.txt" && e.type === FilesystemEventType.WRITE), "WRITE");
    await sbx.files.remove("/home/user/watched/a.txt");
    await until(() => events.some((e) => e.name === "a.txt" && e.type === FilesystemEventType.REMOVE), "REMOVE");
  } finally {
    await h.stop();
  }
});

test("watching a missing directory or recursively is refused", async () => {
  await assert.rejects(sbx.files.watchDir("/home/user/nope", () => {}), /not_found|not found|No such/i);
  await assert.rejects(sbx.files.watchDir("/home/user", () => {}, { recursive: true }), /recursive/);
});
