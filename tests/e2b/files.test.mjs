// Files through the unmodified `e2b` package: write (multipart, and
// octet-stream), read (text, bytes), list, exists/getInfo (Stat), makeDir,
// rename (Move), remove.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { Sandbox, NotFoundError } from "e2b";
import { startDaemon } from "./support.mjs";

let d, sbx;
before(async () => { d = await startDaemon(); sbx = await Sandbox.create(); });
after(async () => { await sbx?.kill(); await d?.stop(); });

test("write then read a text file", async () => {
  const info = await sbx.files.write("/home/user/hello.txt", "hello from e2b\n");
  assert.equal(info.path, "/home/user/hello.txt");
  assert.equal(info.name, "hello.txt");
  assert.equal(await sbx.files.read("/home/user/hello.txt"), "hello from e2b\n");
  // and the sandbox sees it
  assert.equal((await sbx.commands.run("cat /home/user/hello.txt")).stdout, "hello from e2b\n");
});

test("binary content round-trips, also as octet-stream", async () => {
  const bytes = new Uint8Array(70000).map((_, i) => (i * 7) & 0xff);
  await sbx.files.write("/home/user/blob.bin", bytes.buffer);
  assert.deepEqual(await sbx.files.read("/home/user/blob.bin", { format: "bytes" }), bytes);
  await sbx.files.write("relative.txt", "rel", { useOctetStream: true });
  assert.equal(await sbx.files.read("/home/user/relative.txt"), "rel");
});

test("reading a missing file is NotFoundError", async () => {
  await assert.rejects(sbx.files.read("/home/user/nope.txt"), NotFoundError);
});

test("makeDir, list, exists, getInfo", async () => {
  assert.equal(await sbx.files.makeDir("/home/user/dir1"), true);
  assert.equal(await sbx.files.makeDir("/home/user/dir1"), false);
  await sbx.files.write("/home/user/dir1/a.txt", "aaa");
  const entries = await sbx.files.list("/home/user/dir1");
  assert.deepEqual(entries.map((e) => [e.name, e.type, e.path, e.size]), [["a.txt", "file", "/home/user/dir1/a.txt", 3]]);
  assert.equal(await sbx.files.exists("/home/user/dir1/a.txt"), true);
  assert.equal(await sbx.files.exists("/home/user/dir1/b.txt"), false);
  const info = await sbx.files.getInfo("/home/user/dir1");
  assert.equal(info.type, "dir");
  assert.equal(info.name, "dir1");
  assert.ok(info.modifiedTime instanceof Date);
});

test("rename and remove", async () => {
  await sbx.files.write("/home/user/old.txt", "x");
  const moved = await sbx.files.rename("/home/user/old.txt", "/home/user/new.txt");
  assert.equal(moved.path, "/home/user/new.txt");
  assert.equal(await sbx.files.exists("/home/user/old.txt"), false);
  assert.equal(await sbx.files.read("/home/user/new.txt"), "x");
  await sbx.files.remove("/home/user/new.txt");
  assert.equal(await sbx.files.exists("/home/user/new.txt"), false);
  await sbx.files.makeDir("/home/user/tree/sub");
  await sbx.files.write("/home/user/tree/sub/f", "f");
  await sbx.files.remove("/home/user/tree");
  assert.equal(await sbx.files.exists("/home/user/tree"), false);
});
