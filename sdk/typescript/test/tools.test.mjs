// airlock tools (src/tools.ts) against a real airlockd started here (as sdk.test.mjs does).
// Env: AIRLOCK_DAEMON, AIRLOCK_AGENT, AIRLOCK_RUNNER, AIRLOCK_ZYGOTE (see the Makefile's test-ts).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startDaemon, ROOT } from "../../../tests/node/airlockd.mjs";
import { spawnSync } from "node:child_process";
import { Sandbox, TOOLS, openaiTools, anthropicTools, dispatch, MAX_DOWNLOAD_BYTES } from "../dist/index.js";

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

const NAMES = ["run_python", "run_bash", "upload_file", "download_file", "list_files"];

function checkSchema(s) {
  assert.equal(s.type, "object");
  assert.ok(Object.keys(s.properties).length > 0);
  for (const p of Object.values(s.properties)) {
    assert.ok(["string", "integer"].includes(p.type));
    assert.ok(p.description);
  }
  for (const r of s.required ?? []) assert.ok(r in s.properties);
  assert.equal(s.additionalProperties, false);
}

test("schemas: neutral, OpenAI and Anthropic shapes, the same as the Python SDK's", () => {
  assert.deepEqual(TOOLS.map((t) => t.name), NAMES);
  for (const t of TOOLS) checkSchema(t.parameters);
  const o = openaiTools(), a = anthropicTools();
  for (const t of o) {
    assert.deepEqual(Object.keys(t).sort(), ["function", "type"]);
    assert.equal(t.type, "function");
    assert.deepEqual(Object.keys(t.function).sort(), ["description", "name", "parameters"]);
    checkSchema(t.function.parameters);
  }
  for (const t of a) {
    assert.deepEqual(Object.keys(t).sort(), ["description", "input_schema", "name"]);
    checkSchema(t.input_schema);
  }
  o[0].function.parameters.properties = {};
  assert.ok(Object.keys(TOOLS[0].parameters.properties).length > 0);
  const py = spawnSync("/usr/bin/python3", ["-c", "import json, sys; sys.path.insert(0, 'sdk/python'); " +
    "from airlock.tools import TOOLS; print(json.dumps(TOOLS))"], { cwd: ROOT, encoding: "utf8" });
  assert.equal(py.status, 0, py.stderr);
  assert.deepEqual(JSON.parse(py.stdout), JSON.parse(JSON.stringify(TOOLS)));
});

test("dispatch: each tool, state across run_python, JSON-string arguments, error results", async () => {
  const sb = await Sandbox.create({ timeout: 120 });
  try {
    let r = await dispatch(sb, "run_python", { code: "t = 21\nprint('hi')" });
    assert.equal(r.stdout, "hi\n");
    assert.equal(r.error, undefined);
    r = await dispatch(sb, "run_python", JSON.stringify({ code: "t * 2" }));
    assert.equal(r.result, "42");
    r = await dispatch(sb, "run_python", { code: "1/0" });
    assert.equal(r.error.name, "ZeroDivisionError");
    r = await dispatch(sb, "run_bash", { command: "echo out; echo err >&2; pwd", cwd: "/tmp" });
    assert.equal(r.stdout, "out\n/tmp\n");
    assert.equal(r.stderr, "err\n");
    assert.equal(r.exit_code, 0);
    r = await dispatch(sb, "run_bash", { command: "exit 3" });
    assert.equal(r.exit_code, 3);
    assert.equal(r.error.value, "exit code: 3");
    r = await dispatch(sb, "upload_file", { path: "/data/tt/a.txt", content: "héllo\n" });
    assert.equal(r.path, "/data/tt/a.txt");
    const blob = Uint8Array.from({ length: 256 }, (_, i) => i);
    r = await dispatch(sb, "upload_file", { path: "/data/tt/b.bin", content_base64: Buffer.from(blob).toString("base64"), content: null });
    assert.equal(r.size, 256);
    assert.equal((await dispatch(sb, "download_file", { path: "/data/tt/a.txt" })).text, "héllo\n");
    r = await dispatch(sb, "download_file", { path: "/data/tt/b.bin" });
    assert.deepEqual(new Uint8Array(Buffer.from(r.content_base64, "base64")), blob);
    r = await dispatch(sb, "list_files", { path: "/data/tt" });
    assert.deepEqual(r.entries.map((e) => e.name).sort(), ["a.txt", "b.bin"]);
    await dispatch(sb, "run_bash", { command: `head -c ${MAX_DOWNLOAD_BYTES + 1} /dev/zero > /tmp/big` });
    assert.equal((await dispatch(sb, "download_file", { path: "/tmp/big" })).error.name, "FileTooLarge");
    assert.equal((await dispatch(sb, "download_file", { path: "/tmp/nope" })).error.name, "NotFound");
    for (const [name, args, what] of [
      ["no_such_tool", {}, "UnknownTool"],
      ["run_python", {}, "InvalidArguments"],
      ["run_python", { code: 5 }, "InvalidArguments"],
      ["run_python", "{not json", "InvalidArguments"],
      ["run_python", { code: "1", bogus: 1 }, "InvalidArguments"],
      ["upload_file", { path: "x" }, "InvalidArguments"],
      ["upload_file", { path: "x", content_base64: "!!" }, "InvalidArguments"],
      ["list_files", { depth: 0 }, "InvalidArguments"],
    ]) {
      r = await dispatch(sb, name, args);
      assert.deepEqual(Object.keys(r), ["error"], JSON.stringify(r));
      assert.equal(r.error.name, what, JSON.stringify(r));
    }
    assert.equal((await dispatch(sb, "run_python", { code: "t" })).result, "21");
  } finally {
    await sb.kill();
  }
});
