// The code interpreter through the unmodified `@e2b/code-interpreter`
// package: runCode keeps state across calls (Airlock's REPL), streams its
// output through onStdout/onStderr/onResult, and reports errors.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { Sandbox } from "@e2b/code-interpreter";
import { startDaemon } from "./support.mjs";

let d, sbx;
before(async () => { d = await startDaemon(); sbx = await Sandbox.create(); });
after(async () => { await sbx?.kill(); await d?.stop(); });

test("runCode keeps state across calls and returns the last expression", async () => {
  const first = await sbx.runCode("x = 40\nx");
  assert.equal(first.error, undefined);
  assert.equal(first.text, "40");
  const second = await sbx.runCode("x + 2");
  assert.equal(second.text, "42");
  assert.equal(second.results[0].isMainResult, true);
});

test("output streams through the callbacks as it is printed", async () => {
  const out = [], err = [], results = [];
  const ex = await sbx.runCode(
    "import sys\nprint('hello')\nprint('oops', file=sys.stderr)\n'done'",
    { onStdout: (m) => out.push(m.line), onStderr: (m) => err.push(m.line), onResult: (r) => results.push(r.text) });
  assert.equal(out.join(""), "hello\n");
  assert.equal(err.join(""), "oops\n");
  assert.deepEqual(results, ["'done'"]);
  assert.deepEqual(ex.logs.stdout, ["hello\n"]);
  assert.deepEqual(ex.logs.stderr, ["oops\n"]);
});

test("an exception is the execution's error, with name, value and traceback", async () => {
  const errors = [];
  const ex = await sbx.runCode("1/0", { onError: (e) => errors.push(e) });
  assert.equal(ex.error.name, "ZeroDivisionError");
  assert.match(ex.error.value, /division by zero/);
  assert.match(ex.error.traceback, /ZeroDivisionError/);
  assert.equal(errors.length, 1);
});

test("envs reach the code; bash runs as a language", async () => {
  const ex = await sbx.runCode("import os\nos.environ['GREETING']", { envs: { GREETING: "hi" } });
  assert.equal(ex.text, "'hi'");
  const sh = await sbx.runCode("echo from-bash", { language: "bash" });
  assert.deepEqual(sh.logs.stdout, ["from-bash\n"]);
});

test("R and JavaScript run as languages, each with its own state", async () => {
  await sbx.runCode("y <- 20", { language: "r" });
  const r = await sbx.runCode("data.frame(v = y + 1)", { language: "r" });
  assert.equal(r.error, undefined);
  assert.match(r.results[0].html, /<table/);
  assert.match(r.text, /21/);
  const js = await sbx.runCode("const z = await Promise.resolve(2); z * 21", { language: "javascript" });
  assert.equal(js.text, "42");
  const err = await sbx.runCode("stop('nope')", { language: "r" });
  assert.equal(err.error.value, "nope");
});

// runCode leaves its request timer armed when the answer is an error (the
// SDK's own behaviour), which would hold this file open for the default 60 s:
// a short requestTimeoutMs on the refused calls.
test("an unknown language or context is refused", async () => {
  await assert.rejects(sbx.runCode("1", { language: "cobol", requestTimeoutMs: 3000 }), /400|not available/);
  await assert.rejects(sbx.runCode("1", { context: { id: "nope" }, requestTimeoutMs: 3000 }), /not found/);
});

test("contexts: createCodeContext is an independent REPL; restart and remove it", async () => {
  // default first; the R and JavaScript calls above made their languages' default contexts
  const first = await sbx.listCodeContexts();
  const before = first.map((c) => c.id);
  assert.equal(before[0], "default");
  assert.deepEqual(before.slice(1).sort(), ["default-javascript", "default-r"]);
  assert.equal((await sbx.runCode("x", { context: first[0] })).text, "40");

  const ctx = await sbx.createCodeContext({ language: "python", cwd: "/tmp" });
  assert.equal(ctx.language, "python");
  assert.equal(ctx.cwd, "/tmp");
  assert.notEqual(ctx.id, "default");
  assert.deepEqual((await sbx.listCodeContexts()).map((c) => c.id), [...before, ctx.id]);

  // its own globals: no x here, and its x is not the default context's
  const missing = await sbx.runCode("x", { context: ctx });
  assert.equal(missing.error.name, "NameError");
  await sbx.runCode("x = 'mine'", { context: ctx });
  assert.equal((await sbx.runCode("import os\n(x, os.getcwd())", { context: ctx })).text, "('mine', '/tmp')");
  assert.equal((await sbx.runCode("x")).text, "40");
  // the same files: what one context writes the other reads
  await sbx.runCode("open('/tmp/from-ctx.txt', 'w').write('shared')", { context: ctx });
  assert.equal((await sbx.runCode("open('/tmp/from-ctx.txt').read()")).text, "'shared'");

  await sbx.restartCodeContext(ctx);
  assert.equal((await sbx.runCode("x", { context: ctx })).error.name, "NameError");
  assert.equal((await sbx.runCode("x")).text, "40");

  await sbx.removeCodeContext(ctx.id);
  assert.deepEqual((await sbx.listCodeContexts()).map((c) => c.id), before);
  await assert.rejects(sbx.runCode("1", { context: ctx, requestTimeoutMs: 3000 }), /not found/);
  await assert.rejects(sbx.removeCodeContext("nope"), /not found/);
  await assert.rejects(sbx.removeCodeContext("default"), /400/);
  await assert.rejects(sbx.createCodeContext({ language: "cobol" }), /400/);
  assert.equal((await sbx.runCode("x")).text, "40"); // the default REPL kept its state

  // an R context: its own state, apart from the R default context's
  const rc = await sbx.createCodeContext({ language: "r" });
  assert.equal(rc.language, "r");
  await sbx.runCode("y <- 'ctx'", { context: rc });
  assert.equal((await sbx.runCode("y", { context: rc })).text, '[1] "ctx"');
  assert.equal((await sbx.runCode("y", { language: "r" })).text, "[1] 20");
  await sbx.removeCodeContext(rc.id);
});
