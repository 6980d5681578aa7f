// Shared by the MCP tests: a real airlockd (tests/node/airlockd.mjs),
// `airlock mcp` driven by the official MCP TypeScript SDK's client, and a
// few helpers.
// Env: AIRLOCK_DAEMON, AIRLOCK_AGENT, AIRLOCK_RUNNER, AIRLOCK_ZYGOTE, AIRLOCK_CLI (see the Makefile's test-mcp).
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { ROOT, ASAN_OPTIONS, startDaemon as startAirlockd, waitFor } from "../node/airlockd.mjs";

export { DAEMON, AGENT, RUNNER, ZYGOTE, SANITIZER, freePort, sleep, waitFor } from "../node/airlockd.mjs";
export const CLI = process.env.AIRLOCK_CLI ?? join(ROOT, "build-asan/airlock");

// What the CLI under ASan needs from our environment (the SDK's stdio
// transport passes only HOME, PATH and a few more by default).
export const CLI_ENV = {
  ASAN_OPTIONS,
  UBSAN_OPTIONS: process.env.UBSAN_OPTIONS ?? "print_stacktrace=1:halt_on_error=1",
};

export async function startDaemon() {
  assert.ok(existsSync(CLI), `no CLI binary at ${CLI} (make build-asan, or set AIRLOCK_CLI)`);
  return startAirlockd({ prefix: "airlock-mcp-" });
}

// `airlock mcp` over stdio, started by the SDK's own transport.
export async function stdioClient(daemon, extraArgs = [], { name = "airlock-mcp-test" } = {}) {
  const transport = new StdioClientTransport({
    command: CLI,
    args: ["mcp", "--url", daemon.url, "--api-key", daemon.key, ...extraArgs],
    env: CLI_ENV,
    stderr: "pipe",
  });
  let stderr = "";
  transport.stderr.on("data", (d) => { stderr += d.toString(); });
  const client = new Client({ name, version: "1.0.0" });
  await client.connect(transport);
  return { client, transport, stderr: () => stderr };
}

// The text blocks of a tool result, joined.
export function text(result) {
  return result.content.filter((c) => c.type === "text").map((c) => c.text).join("\n");
}

export function sandboxOf(result) {
  const id = result._meta?.["airlock/sandbox_id"];
  assert.match(id ?? "", /^sb_[0-9a-f]{32}$/, "no sandbox id in the result's _meta: " + JSON.stringify(result));
  return id;
}

// Wait until airlockd says the sandbox is destroyed; its record.
export async function destroyed(daemon, id) {
  return waitFor(async () => {
    const r = await daemon.api("GET", `/v1/sandboxes/${id}`);
    return r.body?.state === "destroyed" ? r.body : null;
  }, `sandbox ${id} destroyed`);
}
