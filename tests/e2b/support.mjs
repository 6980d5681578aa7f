// Shared by the E2B tests: a real airlockd (tests/node/airlockd.mjs) with
// its E2B-compatible listener (--e2b-listen), and E2B's own SDKs pointed at
// it through their documented environment variables (E2B_API_URL,
// E2B_SANDBOX_URL, E2B_API_KEY).
// Env: AIRLOCK_DAEMON, AIRLOCK_AGENT, AIRLOCK_RUNNER, AIRLOCK_ZYGOTE (see the Makefile's test-e2b).
import { startDaemon as startAirlockd, freePort } from "../node/airlockd.mjs";

export { DAEMON, AGENT, RUNNER, ZYGOTE, SANITIZER } from "../node/airlockd.mjs";

export async function startDaemon() {
  const e2bPort = await freePort();
  const e2bUrl = `http://127.0.0.1:${e2bPort}`;
  const d = await startAirlockd({ args: ["--e2b-listen", `127.0.0.1:${e2bPort}`], prefix: "airlock-e2b-" });
  // E2B's SDKs read these at each call (ConnectionConfig)
  process.env.E2B_API_URL = e2bUrl;
  process.env.E2B_SANDBOX_URL = e2bUrl;
  process.env.E2B_API_KEY = d.key;
  return { ...d, e2bUrl };
}
