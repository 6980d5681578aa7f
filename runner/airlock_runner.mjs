// airlock_runner.mjs - the persistent JavaScript context behind run_code
// language="javascript".
//
// Started by airlock-agent (src/agent/lang.c, src/agent/repl.c) as
// `node --expose-internals airlock_runner.mjs`, uid 1000, no capabilities,
// the sandbox's seccomp filter, and speaking the Python runner's wire format
// (docs/protocol.md):
//
//   fd 3 (agent -> runner)  u32le length + JSON {"code", "env", "deadline_mono_ms"}
//                           or {"reap": [pid, ...]}
//   fd 4 (runner -> agent)  u32le length + JSON {"exit_code", "error":
//                           {"name","value","traceback"}, "results": [bundle],
//                           "execution_count", "engine": "node"}
//   fd 1, fd 2              console.log / console.error, flushed before the
//                           result is written (flushed() says why)
//
// A cell is a vm.Script run in the main context, as Node's REPL does: its
// completion value is the result, and top-level let/const/class/function
// persist in the context's script scope for later cells. A cell with
// top-level await goes through the REPL's own rewrite (processTopLevelAwait,
// Node's internal/repl/await: declarations hoisted out of an async wrapper,
// so they persist too); that module is why --expose-internals. Without it
// (a future Node that moved it) such a cell runs wrapped in an async
// function: it works, but its declarations stay local to it.
//
// Interrupts (the agent's timeout SIGINT, or SIGNAL): the synchronous part
// of a cell runs with breakOnSigint, which stops even `while (true) {}`; an
// await in progress is abandoned (the cell's result is an interrupt error,
// the promise is left to itself). A loop that spins inside an async
// continuation cannot be interrupted; the agent kills and restarts the
// runner after its grace period, as it does for Python. Between cells the
// event loop keeps running: timers and servers a cell started go on.
import fs from 'node:fs';
import vm from 'node:vm';
import util from 'node:util';
import { createRequire } from 'node:module';

// the runner's own references, taken before any cell can replace a global
const { stringify: jsonStringify, parse: jsonParse } = JSON;
const stderrWrite = (s) => { try { fs.writeSync(2, s); } catch { /* stderr gone: nothing to tell */ } };

const RESULTS_BUDGET = 900000; // the agent's RESULT frame is at most 1 MiB
const TEXT_MAX = 200000;
const TRACE_MAX = 64000;
const RUNNER_URL = import.meta.url;

// Reopen the agent's pipes (libuv opens close-on-exec) and close the
// inherited 3 and 4, so child processes do not get the control channel.
const cmdFd = fs.openSync('/proc/self/fd/3', 'r');
const resFd = fs.openSync('/proc/self/fd/4', 'a'); // never 'w': no truncation were 4 a file
fs.closeSync(3);
fs.closeSync(4);

let processTopLevelAwait = null;
try {
    processTopLevelAwait = createRequire(RUNNER_URL)('internal/repl/await').processTopLevelAwait;
} catch { /* not exposed: the async-wrapper fallback */ }

globalThis.require = createRequire('/home/user/');

let count = 0;
let interruptCell = null; // rejects the await in progress on SIGINT
let busy = false;
const queue = [];

// Always listening: Node's default SIGINT action would end the runner.
// While a cell's synchronous part runs, breakOnSigint takes precedence.
process.on('SIGINT', () => {
    if (interruptCell) interruptCell();
});
// A cell's callbacks that throw later must not end the session.
process.on('uncaughtException', (e) => stderrWrite(`Uncaught ${formatStack(e)}\n`));
process.on('unhandledRejection', (e) => stderrWrite(`Unhandled promise rejection: ${formatStack(e)}\n`));

function clip(s, max) {
    return s.length > max ? s.slice(0, max) + '\n[truncated]' : s;
}

function isError(e) {
    return e !== null && typeof e === 'object' && typeof e.message === 'string' && typeof e.name === 'string';
}

// The stack without the runner's and Node's internal frames.
function formatStack(e) {
    if (!isError(e)) return util.inspect(e);
    const lines = String(e.stack || `${e.name}: ${e.message}`).split('\n');
    return lines.filter((l) => !(l.includes(RUNNER_URL) || /\(node:|at node:/.test(l))).join('\n');
}

function errorOf(e) {
    if (isError(e)) return { name: e.name, value: e.message, traceback: clip(formatStack(e), TRACE_MAX) };
    const text = util.inspect(e);
    return { name: 'Error', value: `uncaught ${text}`, traceback: `Uncaught ${text}` };
}

function bundleOf(v) {
    const b = { 'text/plain': clip(util.inspect(v, { depth: 4, maxArrayLength: 200, breakLength: 100 }), TEXT_MAX) };
    if (v !== null && (typeof v === 'object' || typeof v === 'number' || typeof v === 'string' || typeof v === 'boolean')
        && !(typeof v === 'object' && typeof v.then === 'function')) {
        try {
            const j = jsonStringify(v);
            if (j !== undefined && j.length < RESULTS_BUDGET / 3) b['application/json'] = jsonParse(j);
        } catch { /* cyclic, BigInt: text only */ }
    }
    b.is_main_result = true;
    return b;
}

function compile(code, filename) {
    try {
        return { script: new vm.Script(code, { filename }), awaited: false };
    } catch (e) {
        if (!(e instanceof SyntaxError) || !/await/.test(code)) throw e;
        // top-level await: the REPL's rewrite, else an async wrapper
        const wrapped = processTopLevelAwait ? processTopLevelAwait(code) : null;
        const src = wrapped ?? `(async () => {\n${code}\n})()`;
        try {
            return { script: new vm.Script(src, { filename }), awaited: true, valueBox: wrapped !== null };
        } catch {
            throw e; // the original error describes the user's code
        }
    }
}

function setEnv(env) {
    const old = {};
    if (env && typeof env === 'object') {
        for (const [k, v] of Object.entries(env)) {
            old[k] = Object.prototype.hasOwnProperty.call(process.env, k) ? process.env[k] : undefined;
            process.env[k] = String(v);
        }
    }
    return old;
}

function restoreEnv(old) {
    for (const [k, v] of Object.entries(old)) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
    }
}

class Interrupted extends Error {
    constructor() { super('interrupted'); this.name = 'KeyboardInterrupt'; }
}

async function runCell(code, env) {
    count += 1;
    const old = setEnv(env);
    try {
        const { script, awaited, valueBox } = compile(code, `cell-${count}`);
        let value = script.runInThisContext({ breakOnSigint: true, displayErrors: false });
        if (awaited) {
            const interrupted = new Promise((_, reject) => { interruptCell = () => reject(new Interrupted()); });
            try {
                value = await Promise.race([value, interrupted]);
            } finally {
                interruptCell = null;
            }
            if (valueBox) value = value === undefined ? undefined : value.value;
        }
        return { exit_code: 0, error: null, results: value === undefined ? [] : [bundleOf(value)] };
    } catch (e) {
        if (e instanceof Interrupted || (isError(e) && e.code === 'ERR_SCRIPT_EXECUTION_INTERRUPTED')) {
            return { exit_code: 1, error: { name: 'KeyboardInterrupt', value: 'interrupted', traceback: '' }, results: [] };
        }
        const err = errorOf(e);
        stderrWrite(`Uncaught ${err.traceback}\n`);
        return { exit_code: 1, error: err, results: [] };
    } finally {
        restoreEnv(old);
    }
}

// Node writes to a full pipe asynchronously (the rest queued in memory): the
// cell's output must be in the pipe before its result, as the agent drains
// the pipes when the result arrives. An empty write's callback runs once
// everything before it is written.
function flushed(stream) {
    return new Promise((resolve) => {
        try {
            stream.write('', () => resolve());
        } catch {
            resolve();
        }
    });
}

function writeReply(obj) {
    const body = Buffer.from(jsonStringify(obj), 'utf8');
    const hdr = Buffer.alloc(4);
    hdr.writeUInt32LE(body.length, 0);
    const all = Buffer.concat([hdr, body]);
    for (let off = 0; off < all.length;) off += fs.writeSync(resFd, all, off);
}

async function drain() {
    if (busy) return;
    busy = true;
    while (queue.length) {
        const cmd = queue.shift();
        // {"reap": pids}: children of ours the agent killed after a timeout;
        // libuv collects its children itself (child_process), nothing to do
        if (cmd.reap !== undefined) continue;
        const reply = await runCell(String(cmd.code ?? ''), cmd.env);
        await Promise.all([flushed(process.stdout), flushed(process.stderr)]);
        reply.execution_count = count;
        reply.engine = 'node';
        writeReply(reply);
    }
    busy = false;
}

// Warm-up before the first command: V8 compiles the runner's functions and
// util.inspect lazily; a dummy cell of each kind takes that off the first
// user cell. Their output is dropped (nothing is written: no console use).
for (const code of ['1', '({a: [1]})', 'await 1']) {
    const reply = await runCell(code, null);
    jsonStringify(reply);
}
count = 0;

// Commands are read asynchronously, so the event loop (a cell's timers,
// servers) keeps running between cells.
let pending = Buffer.alloc(0);
const stream = fs.createReadStream(null, { fd: cmdFd, highWaterMark: 1 << 20 });
stream.on('data', (chunk) => {
    pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
    while (pending.length >= 4) {
        const n = pending.readUInt32LE(0);
        if (pending.length < 4 + n) break;
        const text = pending.subarray(4, 4 + n).toString('utf8');
        pending = pending.subarray(4 + n);
        try {
            queue.push(jsonParse(text));
        } catch (e) {
            stderrWrite(`airlock runner: unreadable command: ${e.message}\n`);
            process.exit(3);
        }
    }
    drain();
});
// the agent closed the pipe: the sandbox is ending
stream.on('end', () => process.exit(0));
stream.on('error', () => process.exit(0));
