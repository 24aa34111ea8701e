// What the contract tests that drive a live todo-api share (typed_client_test.mjs, sse_clients_test.mjs,
// docs_browser_test.mjs): TAP-like output (`ok N - ...`, `FAIL: ...` and exit 1), child
// processes with their output kept for the failure report and killed on every exit path
// (normal end, failure, time limit, SIGINT/SIGTERM/SIGHUP and, through setpriv --pdeathsig,
// this process killed outright), a free port, todo-api started and waited for on /health, a
// token minted with `todo-api token --sub`, and the overall time limit.
//
// One test per process: the state (step, count of passed checks, children, clean-ups) is this
// module's. A test imports it, sets steps with setStep(), and ends with `await runTest(main)`.
// Environment:
//   TODO_API_BINARY      path of the todo-api binary (required)
//   TEST_DATABASE_URL    postgresql:// URL of the throwaway database (required)
//   DOCS_DIR             passed to todo-api when set
//   CT_NODE_DIR          where node_modules is (default: this module's directory)
//   CT_TEST_TIMEOUT_S    overall time limit, default 150
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const nodeDir = process.env.CT_NODE_DIR || path.dirname(fileURLToPath(import.meta.url));
const limitSeconds = Number(process.env.CT_TEST_TIMEOUT_S || 150);
const started = Date.now();
let step = "start";
let passed = 0;
let timedOut = false;
const never = () => new Promise(() => {});
const children = new Set();
const cleanups = [];
// Set by runTest: onExit (synchronous, in process.on("exit")), beforeCleanup (before the
// children are stopped), onFailure (before the outputs are dumped), onSuccess (before the summary).
let hooks = {};

/// What the test is doing now: named by `FAIL: while <step>` and on a timeout or signal.
export function setStep(s) {
  step = s;
}
/// Runs at clean-up, after the children are stopped, in reverse order of registration.
export function addCleanup(f) {
  cleanups.push(f);
}

function elapsed() {
  return ((Date.now() - started) / 1000).toFixed(1);
}
export function log(msg) {
  console.log(`[${elapsed()}s] ${msg}`);
}
export function ok(msg) {
  if (timedOut) return; // the timer owns the output now
  passed += 1;
  log(`ok ${passed} - ${msg}`);
}
class TestFailure extends Error {}
export function fail(msg) {
  throw new TestFailure(msg);
}
export function check(cond, msg, detail) {
  if (!cond) fail(detail === undefined ? msg : `${msg}\n    ${detail}`);
  ok(msg);
}

// ---------------------------------------------------------------- processes

function killAll(signal) {
  for (const c of children) {
    if (c.exitCode === null && c.signalCode === null) {
      try {
        c.kill(signal);
      } catch {}
    }
  }
}
process.on("exit", () => {
  killAll("SIGKILL");
  if (hooks.onExit) hooks.onExit();
});
for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"]) {
  process.on(sig, async () => {
    console.log(`FAIL: got ${sig} while ${step}`);
    await cleanup();
    process.exit(1);
  });
}

/// Starts a child; keeps its whole output (stdout and stderr interleaved) in child.text.
export function start(name, cmd, args, opts) {
  // Should we be killed outright (SIGKILL: no clean-up), the children must not outlive us.
  if (existsSync("/usr/bin/setpriv")) {
    args = ["--pdeathsig", "KILL", "--", cmd, ...args];
    cmd = "/usr/bin/setpriv";
  }
  const child = spawn(cmd, args, { ...opts, stdio: ["ignore", "pipe", "pipe"] });
  child.label = name;
  child.text = "";
  child.stdoutText = "";
  const keep = (buf) => {
    child.text += buf.toString();
    if (child.text.length > 200000) child.text = child.text.slice(-100000);
  };
  child.stdout.on("data", (buf) => {
    child.stdoutText += buf.toString();
    keep(buf);
  });
  child.stderr.on("data", keep);
  child.exited = new Promise((resolve) => child.on("exit", (code, sig) => resolve({ code, sig })));
  child.on("error", (err) => {
    child.text += `spawn error: ${err.message}\n`;
  });
  children.add(child);
  return child;
}

/// Runs a command to its end (at most `ms`); returns { code, out (stdout), text (all output) }.
export async function run(name, cmd, args, opts, ms) {
  const child = start(name, cmd, args, opts);
  const t = setTimeout(() => {
    child.text += `\n(killed after ${ms / 1000} s)\n`;
    child.kill("SIGKILL");
  }, ms);
  const { code, sig } = await child.exited;
  clearTimeout(t);
  children.delete(child);
  return { code: code ?? `signal ${sig}`, out: child.stdoutText, text: child.text };
}

export async function stop(child) {
  if (child.exitCode !== null || child.signalCode !== null) {
    children.delete(child);
    return;
  }
  child.kill("SIGTERM");
  const t = setTimeout(() => child.kill("SIGKILL"), 5000);
  await child.exited;
  clearTimeout(t);
  children.delete(child);
}

function dumpOutputs() {
  for (const c of children) {
    console.log(`---- last output of ${c.label} (pid ${c.pid}) ----`);
    console.log(c.text.split("\n").slice(-40).join("\n") || "(nothing)");
  }
}

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export async function http(method, url, { headers = {}, body } = {}) {
  const init = { method, headers: { ...headers }, signal: AbortSignal.timeout(15000) };
  if (body !== undefined) {
    init.body = typeof body === "string" ? body : JSON.stringify(body);
    init.headers["content-type"] = "application/json";
  }
  const res = await fetch(url, init);
  const text = await res.text();
  let json;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {}
  return { status: res.status, headers: res.headers, text, json };
}

async function waitReady(child, url, ms) {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (child.exitCode !== null || child.signalCode !== null)
      fail(`${child.label} exited (code ${child.exitCode}, signal ${child.signalCode}) before ${url} answered:\n${child.text.slice(-2000)}`);
    try {
      const r = await http("GET", url);
      if (r.status === 200) return;
    } catch {}
    await sleep(150);
  }
  fail(`${child.label} did not answer 200 on ${url} within ${ms / 1000} s`);
}

// ---------------------------------------------------------------- todo-api

/// Node.js 20 or later, TEST_DATABASE_URL and TODO_API_BINARY set, the binary there.
export function checkEnvironment() {
  const major = Number(process.versions.node.split(".")[0]);
  if (major < 20) fail(`Node.js ${process.versions.node} is too old: 20 or later is needed`);
  for (const name of ["TEST_DATABASE_URL", "TODO_API_BINARY"]) {
    if (!process.env[name]) fail(`${name} is not set (run the tests through scripts/test)`);
  }
  if (!existsSync(process.env.TODO_API_BINARY)) fail(`TODO_API_BINARY ${process.env.TODO_API_BINARY} does not exist`);
}

const secret = randomBytes(32).toString("hex");

function serverEnv(extra = {}) {
  const env = {
    PATH: process.env.PATH,
    HOST: "127.0.0.1",
    DATABASE_URL: process.env.TEST_DATABASE_URL,
    BETTER_AUTH_SECRET: secret,
    LOG_LEVEL: "warn",
    ...extra,
  };
  if (process.env.DOCS_DIR) env.DOCS_DIR = process.env.DOCS_DIR;
  return env;
}

/// Starts todo-api on a free port of 127.0.0.1, run in `runDir` (an existing directory with no
/// .env; by default a temporary one removed at clean-up), and waits for 200 on /health.
export async function startTodoApi(runDir) {
  const port = await freePort();
  if (!runDir) {
    runDir = mkdtempSync(path.join(os.tmpdir(), "todo-ct-run-"));
    const dir = runDir;
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  }
  const child = start("todo-api", process.env.TODO_API_BINARY, [], { cwd: runDir, env: serverEnv({ PORT: String(port) }) });
  const base = `http://127.0.0.1:${port}`;
  await waitReady(child, `${base}/health`, 30000);
  return { child, base, port, runDir };
}

/// `todo-api token --sub <sub> --ttl 900` (the server's secret): { token, valid (exit 0 and a
/// JWT), code, text (all output) }. What an invalid one means is the test's to say.
export async function mintToken(sub, runDir) {
  const r = await run("todo-api token", process.env.TODO_API_BINARY, ["token", "--sub", sub, "--ttl", "900"],
    { cwd: runDir, env: serverEnv() }, 20000);
  const token = r.out.trim();
  return { token, valid: r.code === 0 && /^[\w-]+\.[\w-]+\.[\w-]+$/.test(token), code: r.code, text: r.text };
}

// ---------------------------------------------------------------- the run

async function cleanup() {
  if (hooks.beforeCleanup) {
    try {
      await hooks.beforeCleanup();
    } catch {}
  }
  killAll("SIGTERM");
  await Promise.race([Promise.all([...children].map((c) => c.exited)), sleep(5000)]);
  killAll("SIGKILL");
  for (const f of cleanups.reverse()) {
    try {
      await f();
    } catch {}
  }
}

/// Runs main() under the time limit (CT_TEST_TIMEOUT_S) and exits: 0 with `N passed, 0 failed`,
/// or 1 after `FAIL: ...`, the last output of the children still running and `N passed, 1 failed`.
/// Clean-up (children stopped, addCleanup functions) runs on every path.
/// hooks: { onExit, beforeCleanup, onFailure, onSuccess } (see `hooks` above).
export async function runTest(main, testHooks = {}) {
  hooks = testHooks;
  const timer = setTimeout(async () => {
    timedOut = true;
    console.log(`FAIL: timed out after ${limitSeconds} s while ${step}`);
    if (hooks.onFailure) await hooks.onFailure();
    dumpOutputs();
    await cleanup();
    console.log(`${passed} passed, 1 failed`);
    process.exit(1);
  }, limitSeconds * 1000);

  try {
    await main();
    clearTimeout(timer);
    await cleanup();
    if (hooks.onSuccess) hooks.onSuccess();
    console.log(`${passed} passed, 0 failed (${elapsed()} s)`);
    process.exit(0);
  } catch (err) {
    if (timedOut) await never();
    clearTimeout(timer);
    const msg = err instanceof TestFailure ? err.message : err?.stack || String(err);
    console.log(`FAIL: while ${step}: ${msg}`);
    if (hooks.onFailure) await hooks.onFailure();
    dumpOutputs();
    await cleanup();
    console.log(`${passed} passed, 1 failed`);
    process.exit(1);
  }
}
