// A rolling deploy seen from the client's side (issue 15, part 4): 3 instances of the real
// service on one PostgreSQL behind nginx (deploy/render of deploy/nginx/todo-api.conf), load
// through nginx from 16 keep-alive clients over 20 users (reads: list and get; writes: creates
// with a unique Idempotency-Key per logical create, toggles likewise), and meanwhile each
// instance in turn is restarted as a deploy does it: SIGTERM, wait for exit 0, start the new one
// on the same port, wait for /ready 200 and for nginx to send it traffic again, next.
//
// Checks: zero failed reads (a GET answered other than 2xx/304, or with a network error, is a
// failure: nginx must move reads to the live instances), every SIGTERM ends in exit 0, every
// acknowledged write is in the database afterwards (each create answered 201 exists exactly once,
// by its unique title, with the id it was answered with; every task's `completed` equals the
// parity of its acknowledged toggles), and zero writes that still failed after retrying with the
// same Idempotency-Key (network errors, 502/503/504, 409 while the key is in flight: retried as
// README "Idempotency-Key" tells clients to). The write errors the client saw before retrying
// are printed, not failed: nginx never resends a POST/PATCH it has sent, so a request on an
// upstream connection the instance was closing comes back 502, and the key makes its retry safe.
//
// Reads by id only ask for tasks whose create was answered at least 1 s earlier: across
// instances the caches follow each other through PostgreSQL's notifications, a few
// milliseconds behind, so an instance may not know a task created on another one a moment ago.
// How often that happens is measured on the side and printed ("fresh reads"), never failed.
//
//   TODO_API_BINARY=build/todo-api node tests/deploy/rolling_restart_test.mjs
//   (scripts/bench --rolling runs it with --bench --duration S --instances N --proxy P and prints
//   its one-line result)
//
// Environment:
//   TODO_API_BINARY       the todo-api binary (required)
//   TEST_DATABASE_URL     a PostgreSQL to create this test's own database in (dropped at the
//                         end); without it a throwaway PostgreSQL is started (scripts/lib.sh)
//   ROLLING_DRAIN_DELAY_MS  the instances' DRAIN_DELAY_MS (1500)
//   ROLLING_SIGNAL        the signal a restart sends (SIGTERM; SIGKILL shows what a crash does:
//                         then exit 0 is not required)
//   ROLLING_NO_RETRY=1    writes are not retried (what a client without the key's retries sees;
//                         any write error then fails the test)
//   ROLLING_KEEP=1        keep the work directory (the proxy's logs)
import { spawn } from "node:child_process";
import { randomBytes, randomUUID } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import http from "node:http";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

import { addCleanup, check, fail, log, ok, runTest, setStep, sleep, start } from "../contract/harness.mjs";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

// ---------------------------------------------------------------- options
const opts = { bench: false, duration: 0, instances: 3, proxy: "nginx", serverEnv: {} };
{
  const a = process.argv.slice(2);
  for (let i = 0; i < a.length; i++) {
    const v = () => {
      if (i + 1 >= a.length) fail(`${a[i]}: missing value`);
      return a[++i];
    };
    switch (a[i]) {
      case "--bench": opts.bench = true; break;
      case "--duration": opts.duration = Number(v()); break;
      case "--instances": opts.instances = Number(v()); break;
      case "--proxy": opts.proxy = v(); break;
      case "--server-env": {
        const kv = v();
        const m = /^([A-Z][A-Z0-9_]*)=(.*)$/s.exec(kv);
        if (!m) fail(`--server-env: expected NAME=value, got ${kv}`);
        opts.serverEnv[m[1]] = m[2];
        break;
      }
      default:
        console.log(`FAIL: unknown argument ${a[i]} (--bench, --duration S, --instances N, --proxy nginx|haproxy, --server-env K=V)`);
        process.exit(2);
    }
  }
}

const USERS = 20;
const CLIENTS = 16;
const SEED_TASKS = 3; // per user, created before the load
const drainDelayMs = Number(process.env.ROLLING_DRAIN_DELAY_MS ?? 1500);
const restartSignal = process.env.ROLLING_SIGNAL || "SIGTERM";
const noRetry = process.env.ROLLING_NO_RETRY === "1";
const tag = `roll${Date.now().toString(36)}${randomBytes(2).toString("hex")}`;
const secret = randomBytes(32).toString("hex");
const bin = process.env.TODO_API_BINARY;

// ---------------------------------------------------------------- small helpers
/// Runs a short command to its end (at most ms): { code, out (stdout), text (all output) }.
/// Waits for 'close', not 'exit', so that its whole output has been read.
function run(name, cmd, args, options = {}, ms = 30000) {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { ...options, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let text = "";
    child.stdout.on("data", (b) => {
      out += b;
      text += b;
    });
    child.stderr.on("data", (b) => {
      text += b;
    });
    const t = setTimeout(() => {
      text += `\n(${name} killed after ${ms / 1000} s)\n`;
      child.kill("SIGKILL");
    }, ms);
    child.on("error", (e) => {
      text += `spawn error: ${e.message}\n`;
    });
    child.on("close", (code, sig) => {
      clearTimeout(t);
      resolve({ code: code ?? `signal ${sig}`, out, text });
    });
  });
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

function findProgram(name, dirs) {
  for (const d of [...(process.env.PATH || "").split(":"), ...dirs]) {
    if (d && existsSync(path.join(d, name))) return path.join(d, name);
  }
  return null;
}

/// One HTTP exchange; resolves { status, headers, text }, rejects on a network error or after
/// timeoutMs.
function send(port, method, urlPath, { token, body, key, agent, timeoutMs = 10000 } = {}) {
  return new Promise((resolve, reject) => {
    const headers = {};
    if (token) headers.authorization = `Bearer ${token}`;
    let payload;
    if (body !== undefined) {
      payload = JSON.stringify(body);
      headers["content-type"] = "application/json";
      headers["content-length"] = Buffer.byteLength(payload);
    }
    if (key) headers["idempotency-key"] = key;
    let done = false;
    const finish = (f, x) => {
      if (!done) {
        done = true;
        f(x);
      }
    };
    const req = http.request({ host: "127.0.0.1", port, method, path: urlPath, headers, agent: agent || false }, (res) => {
      const chunks = [];
      res.on("data", (c) => chunks.push(c));
      res.on("end", () => finish(resolve, { status: res.statusCode, headers: res.headers, text: Buffer.concat(chunks).toString() }));
      res.on("error", (e) => finish(reject, e));
      res.on("aborted", () => finish(reject, new Error("response aborted")));
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`no answer in ${timeoutMs} ms`)));
    req.on("error", (e) => finish(reject, e));
    req.end(payload);
  });
}

// ---------------------------------------------------------------- PostgreSQL
let psqlBin;
let dbUrl; // this test's own database

async function psql(url, sql) {
  const r = await run("psql", psqlBin, [url, "-qtAX", "-v", "ON_ERROR_STOP=1", "-c", sql], {}, 30000);
  if (r.code !== 0) fail(`psql failed (${r.code}) on: ${sql}\n${r.text}`);
  return r.out;
}

async function setUpDatabase(work) {
  psqlBin = findProgram("psql", ["/usr/lib/postgresql/15/bin"]);
  if (!psqlBin) fail("psql not found (install postgresql-client-15)");
  let adminUrl = process.env.TEST_DATABASE_URL;
  if (!adminUrl) {
    // A throwaway cluster, started the way scripts/test and scripts/bench start theirs.
    const pgDir = path.join(work, "pg");
    const port = await freePort();
    const lib = path.join(root, "scripts/lib.sh");
    const r = await run("pg_start", "bash", ["-c", `source '${lib}' && trap - ERR && pg_start '${pgDir}' ${port} tcp`], {}, 120000);
    if (r.code !== 0) fail(`the throwaway PostgreSQL did not start:\n${r.text}`);
    addCleanup(async () => {
      await run("pg_stop", "bash", ["-c", `source '${lib}' && trap - ERR && pg_stop '${pgDir}'`], {}, 60000);
    });
    adminUrl = `postgresql://postgres@127.0.0.1:${port}/todo`;
  }
  const name = `rolling_${tag}`;
  await psql(adminUrl, `CREATE DATABASE ${name}`);
  addCleanup(async () => {
    await run("psql", psqlBin, [adminUrl, "-qtAX", "-c", `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`], {}, 30000);
  });
  const u = new URL(adminUrl);
  u.pathname = `/${name}`;
  dbUrl = u.toString();
}

// ---------------------------------------------------------------- instances and proxy
const instances = []; // { index, port, child, generation }

function instanceEnv(port) {
  return {
    PATH: process.env.PATH,
    DATABASE_URL: dbUrl,
    BETTER_AUTH_SECRET: secret,
    PORT: String(port),
    HOST: "127.0.0.1",
    DRAIN_DELAY_MS: String(drainDelayMs),
    LOG_LEVEL: "warn",
    ...opts.serverEnv,
  };
}

async function waitFor(what, ms, probe, child) {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (child && (child.exitCode !== null || child.signalCode !== null))
      fail(`${child.label} exited (code ${child.exitCode}, signal ${child.signalCode}) before ${what}:\n${child.text.slice(-2000)}`);
    try {
      if (await probe()) return;
    } catch {}
    await sleep(50);
  }
  fail(`no ${what} within ${ms / 1000} s${child ? `:\n${child.text.slice(-2000)}` : ""}`);
}

async function startInstance(inst) {
  inst.generation = (inst.generation ?? 0) + 1;
  inst.child = start(`todo-api #${inst.index + 1} (gen ${inst.generation})`, bin, [], { cwd: inst.dir, env: instanceEnv(inst.port) });
  await waitFor(`/ready 200 from instance #${inst.index + 1}`, 30000,
    async () => (await send(inst.port, "GET", "/ready", { timeoutMs: 2000 })).status === 200, inst.child);
}

/// Requests this process of the instance has answered on /api routes (its /metrics).
async function apiRequests(inst) {
  const r = await send(inst.port, "GET", "/metrics", { timeoutMs: 2000 });
  let n = 0;
  for (const line of r.text.split("\n")) {
    if (line.startsWith("http_requests_total{") && line.includes('route="/api')) n += Number(line.split(" ").pop());
  }
  return n;
}

let proxyPort;
let proxyChild;
let proxyDir;
async function startProxy(work) {
  proxyPort = await freePort();
  const dir = path.join(work, opts.proxy);
  proxyDir = dir;
  const r = await run("deploy/render", path.join(root, "deploy/render"),
    [opts.proxy, dir, String(proxyPort), ...instances.map((i) => String(i.port))], {}, 30000);
  if (r.code !== 0) fail(`deploy/render ${opts.proxy} failed:\n${r.text}`);
  if (opts.proxy === "nginx") {
    const nginx = findProgram("nginx", ["/usr/sbin"]);
    if (!nginx) fail("nginx is not installed (apt-get install nginx)");
    proxyChild = start("nginx", nginx, ["-p", dir, "-e", path.join(dir, "error.log"), "-c", path.join(dir, "nginx.conf"), "-g", "daemon off;"], {});
  } else if (opts.proxy === "haproxy") {
    const haproxy = findProgram("haproxy", ["/usr/sbin"]);
    if (!haproxy) fail("haproxy is not installed (apt-get install haproxy)");
    proxyChild = start("haproxy", haproxy, ["-f", path.join(dir, "haproxy.cfg"), "-db"], {});
  } else {
    fail(`--proxy: nginx or haproxy, not ${opts.proxy}`);
  }
  // HAProxy answers 503 until its health checks have seen the instances up.
  await waitFor(`200 on /health through ${opts.proxy}`, 20000,
    async () => (await send(proxyPort, "GET", "/health", { timeoutMs: 2000 })).status === 200, proxyChild);
}

// ---------------------------------------------------------------- the load
const agent = new http.Agent({ keepAlive: true, maxSockets: CLIENTS + 4 });
const users = []; // { sub, token, tasks: [{ id, ackedAt }], seq }
const stats = {
  reads: 0, readFailures: [], readFailCount: 0, freshReads: 0, freshMisses: 0,
  creates: 0, toggles: 0, attempts: 0, errorsSeen: 0, errorsSeenBy: {}, failedAfterRetry: 0, failedBy: {},
  replayed: 0,
};
const createdTitles = new Map(); // title -> { id (acked) | null (failed after retries) }
const toggleAcks = new Map(); // task id -> acknowledged toggles
const uncertainTasks = new Set(); // a toggle that failed after retries may or may not have run
let stopping = false;

const rand = (n) => Math.floor(Math.random() * n);

function seen(map, k) {
  map[k] = (map[k] || 0) + 1;
}

/// A write as README "Idempotency-Key" tells clients to make it: one key per logical write, the
/// same key for its retries; retried on a network error, 502/503/504 and 409 (key in flight),
/// after Retry-After when given. Returns the final answer, or null when it never succeeded.
async function keyedWrite(method, urlPath, token, body) {
  const key = randomUUID();
  const deadline = Date.now() + 20000;
  for (let attempt = 0; ; attempt++) {
    stats.attempts++;
    let reason;
    let retryAfterMs = Math.min(100 * 2 ** attempt, 1000);
    try {
      const r = await send(proxyPort, method, urlPath, { token, body, key, agent });
      if (r.status >= 200 && r.status < 300) {
        if (r.headers["idempotent-replayed"] === "true") stats.replayed++;
        return r;
      }
      reason = `${r.status}`;
      if (![409, 502, 503, 504].includes(r.status)) {
        stats.errorsSeen++;
        seen(stats.errorsSeenBy, reason);
        stats.failedAfterRetry++;
        seen(stats.failedBy, `${reason} ${r.text.slice(0, 80)}`);
        return null;
      }
      const ra = Number(r.headers["retry-after"]);
      if (Number.isFinite(ra) && ra >= 0) retryAfterMs = Math.max(ra * 1000, 50);
    } catch (e) {
      reason = e.code || e.message;
    }
    stats.errorsSeen++;
    seen(stats.errorsSeenBy, reason);
    if (noRetry || Date.now() + retryAfterMs > deadline) {
      stats.failedAfterRetry++;
      seen(stats.failedBy, reason);
      return null;
    }
    await sleep(retryAfterMs);
  }
}

async function create(u) {
  const title = `${tag}-u${u.index}-${++u.seq}`;
  createdTitles.set(title, null);
  stats.creates++;
  const r = await keyedWrite("POST", "/api/tasks", u.token, { title });
  if (!r) return null;
  let task;
  try {
    task = JSON.parse(r.text);
  } catch {}
  if (r.status !== 201 || !task || task.title !== title) {
    stats.failedAfterRetry++;
    seen(stats.failedBy, `create answered ${r.status} ${r.text.slice(0, 80)}`);
    return null;
  }
  createdTitles.set(title, task.id);
  u.tasks.push({ id: task.id, ackedAt: Date.now() });
  return task;
}

async function toggle(u) {
  const old = u.tasks.filter((t) => Date.now() - t.ackedAt >= 1000);
  if (old.length === 0) return create(u);
  const t = old[rand(old.length)];
  stats.toggles++;
  const r = await keyedWrite("PATCH", `/api/tasks/${t.id}/complete`, u.token);
  if (!r) {
    uncertainTasks.add(t.id);
    return;
  }
  toggleAcks.set(t.id, (toggleAcks.get(t.id) || 0) + 1);
}

async function read(u, urlPath, fresh) {
  if (!fresh) stats.reads++;
  let status;
  let detail;
  try {
    const r = await send(proxyPort, "GET", urlPath, { token: u.token, agent });
    status = r.status;
    detail = r.text.slice(0, 120);
  } catch (e) {
    status = e.code || e.message;
  }
  const good = status === 200 || status === 304;
  if (fresh) {
    stats.freshReads++;
    if (!good) stats.freshMisses++;
    return;
  }
  if (!good) {
    stats.readFailCount++;
    if (stats.readFailures.length < 10) stats.readFailures.push(`GET ${urlPath}: ${status} ${detail ?? ""} (at ${phase})`);
  }
}

async function client() {
  while (!stopping) {
    const u = users[rand(users.length)];
    const r = rand(100);
    if (r < 35) {
      await read(u, "/api/tasks");
    } else if (r < 65) {
      const old = u.tasks.filter((t) => Date.now() - t.ackedAt >= 1000);
      if (old.length) await read(u, `/api/tasks/${old[rand(old.length)].id}`);
      else await read(u, "/api/tasks");
    } else if (r < 82) {
      const task = await create(u);
      // Now and then, read it back at once (through the proxy: maybe another instance).
      if (task && rand(5) === 0) await read(u, `/api/tasks/${task.id}`, true);
    } else {
      await toggle(u);
    }
  }
}

// ---------------------------------------------------------------- the deploy
let phase = "warm-up";
const restarts = []; // { instance, drainMs, startMs, rotationMs, code, signal }

async function restartEach() {
  const t0 = Date.now();
  for (const inst of instances) {
    phase = `restart of #${inst.index + 1}`;
    setStep(`restarting instance #${inst.index + 1} (${restartSignal})`);
    const a = Date.now();
    const old = inst.child;
    old.kill(restartSignal);
    const killer = setTimeout(() => old.kill("SIGKILL"), 30000);
    const { code, sig } = await old.exited;
    clearTimeout(killer);
    const b = Date.now();
    await startInstance(inst);
    const c = Date.now();
    // nginx has no active health checks: after refused connections it skips the instance for
    // fail_timeout; HAProxy's checks need `rise` answers. Next only once it has traffic again.
    await waitFor(`proxied traffic on the new instance #${inst.index + 1}`, 20000, async () => (await apiRequests(inst)) >= 5, inst.child);
    const d = Date.now();
    restarts.push({ instance: inst.index + 1, code, sig, drainMs: b - a, startMs: c - b, rotationMs: d - c });
    log(`instance #${inst.index + 1}: ${restartSignal} -> exit ${code ?? sig} after ${b - a} ms, ready after ${c - b} ms, proxied traffic after ${d - c} ms`);
  }
  phase = "after the restarts";
  return Date.now() - t0;
}

// ---------------------------------------------------------------- main
async function main() {
  setStep("checking the environment");
  const major = Number(process.versions.node.split(".")[0]);
  if (major < 20) fail(`Node.js ${process.versions.node} is too old: 20 or later is needed`);
  if (!bin || !existsSync(bin)) fail(`TODO_API_BINARY ${bin ?? "(unset)"} does not exist`);
  if (!(opts.instances >= 2)) fail("--instances: 2 or more");
  const work = mkdtempSync(path.join(os.tmpdir(), "todo-rolling-"));
  chmodSync(work, 0o755); // as root, the throwaway PostgreSQL's files below belong to postgres
  addCleanup(() => {
    if (process.env.ROLLING_KEEP) console.log(`work directory kept: ${work}`);
    else rmSync(work, { recursive: true, force: true });
  });

  setStep("setting up the database");
  await setUpDatabase(work);

  setStep("starting the instances");
  for (let i = 0; i < opts.instances; i++) {
    const inst = { index: i, port: await freePort(), dir: path.join(work, `instance-${i + 1}`) };
    mkdirSync(inst.dir);
    instances.push(inst);
    // One at a time: the first applies the migrations.
    await startInstance(inst);
  }
  ok(`${opts.instances} instances ready (DRAIN_DELAY_MS=${drainDelayMs})`);

  setStep(`starting ${opts.proxy}`);
  await startProxy(work);
  ok(`${opts.proxy} on port ${proxyPort} in front of ports ${instances.map((i) => i.port).join(", ")}`);

  setStep("minting tokens and seeding tasks");
  await Promise.all(Array.from({ length: USERS }, async (_, index) => {
    const sub = `${tag}-user${index}`;
    const r = await run("todo-api token", bin, ["token", "--sub", sub, "--ttl", "600"],
      { env: { PATH: process.env.PATH, BETTER_AUTH_SECRET: secret } }, 30000);
    const token = r.out.trim();
    if (r.code !== 0 || !/^[\w-]+\.[\w-]+\.[\w-]+$/.test(token)) fail(`todo-api token failed (${r.code}):\n${r.text}`);
    users[index] = { index, sub, token, tasks: [], seq: 0 };
  }));
  for (const u of users) {
    for (let k = 0; k < SEED_TASKS; k++) {
      if (!(await create(u))) fail(`seeding: a create for ${u.sub} failed: ${JSON.stringify(stats.failedBy)}`);
      u.tasks[u.tasks.length - 1].ackedAt = 0;
    }
  }
  ok(`${USERS} users with ${SEED_TASKS} tasks each`);

  setStep("running the load and restarting each instance in turn");
  const loadStart = Date.now();
  const clients = Array.from({ length: CLIENTS }, () => client());
  const warmMs = opts.bench ? Math.min(2000, (opts.duration * 1000) / 4) : 2000;
  await sleep(warmMs);
  const rollMs = await restartEach();
  const minEnd = opts.bench ? loadStart + opts.duration * 1000 : 0;
  await sleep(Math.max(1500, minEnd - Date.now()));
  stopping = true;
  setStep("waiting for the clients' last requests");
  await Promise.all(clients);
  const loadMs = Date.now() - loadStart;
  agent.destroy();

  setStep("checking the database");
  const rows = (await psql(dbUrl, `SELECT id, title, completed FROM tasks WHERE user_id LIKE '${tag}-%'`))
    .split("\n").filter(Boolean).map((l) => {
      const [id, title, completed] = l.split("|");
      return { id: Number(id), title, completed: completed === "t" };
    });
  const byTitle = new Map();
  for (const r of rows) {
    if (!byTitle.has(r.title)) byTitle.set(r.title, []);
    byTitle.get(r.title).push(r);
  }
  let acked = 0, lostAcked = 0, duplicates = 0, wrongId = 0, unackedPresent = 0, strangers = 0;
  for (const [title, id] of createdTitles) {
    const found = byTitle.get(title) || [];
    if (found.length > 1) duplicates++;
    if (id === null) {
      if (found.length === 1) unackedPresent++;
      continue;
    }
    acked++;
    if (found.length === 0) lostAcked++;
    else if (found.length === 1 && found[0].id !== id) wrongId++;
  }
  for (const title of byTitle.keys()) if (!createdTitles.has(title)) strangers++;
  let parityChecked = 0, parityBad = 0;
  const parityExamples = [];
  for (const r of rows) {
    if (uncertainTasks.has(r.id) || createdTitles.get(r.title) !== r.id) continue;
    parityChecked++;
    const want = (toggleAcks.get(r.id) || 0) % 2 === 1;
    if (r.completed !== want) {
      parityBad++;
      if (parityExamples.length < 5) parityExamples.push(`task ${r.id}: completed=${r.completed} after ${toggleAcks.get(r.id) || 0} acknowledged toggles`);
    }
  }

  const requests = stats.reads + stats.freshReads + stats.attempts;
  const exits = restarts.map((r) => r.code ?? r.sig).join("/");
  const byReason = (m) => Object.entries(m).map(([k, v]) => `${k}:${v}`).join(" ") || "none";
  console.log(
    `rolling: ${opts.instances} instances behind ${opts.proxy}, ${restartSignal} with DRAIN_DELAY_MS=${drainDelayMs}${noRetry ? ", NO write retries" : ""}: ` +
    `${requests} requests in ${(loadMs / 1000).toFixed(1)} s (${Math.round(requests / (loadMs / 1000))}/s); ` +
    `reads ${stats.reads}, failed ${stats.readFailCount}; ` +
    `writes ${stats.creates + stats.toggles} (${stats.creates} creates, ${stats.toggles} toggles), ` +
    `errors seen before retry ${stats.errorsSeen} (${byReason(stats.errorsSeenBy)}), after retry ${stats.failedAfterRetry}, ` +
    `${stats.replayed} answers replayed from the key; creates exactly once: ${duplicates === 0 && lostAcked === 0 && wrongId === 0 ? "yes" : "NO"} ` +
    `(${acked} acknowledged, ${lostAcked} lost, ${duplicates} duplicated, ${unackedPresent} of the unacknowledged present); toggles: ${parityBad} of ${parityChecked} tasks off parity; ` +
    `rolling restart ${(rollMs / 1000).toFixed(1)} s (per instance ${restarts.map((r) => ((r.drainMs + r.startMs + r.rotationMs) / 1000).toFixed(1)).join("/")} s, exits ${exits}); ` +
    `fresh reads (right after a create) ${stats.freshReads}, not found ${stats.freshMisses}`);

  check(restarts.length === opts.instances, `each of the ${opts.instances} instances was restarted`);
  if (restartSignal === "SIGTERM") {
    check(restarts.every((r) => r.code === 0), `every instance exited 0 on SIGTERM (${exits})`);
  }
  check(stats.reads > 100, `the clients made ${stats.reads} reads`);
  check(stats.readFailCount === 0, `no failed read among ${stats.reads}`,
    `${stats.readFailCount} failed, e.g.:\n    ${stats.readFailures.join("\n    ")}`);
  check(stats.failedAfterRetry === 0, `no write failed after retrying with its Idempotency-Key (${stats.errorsSeen} errors seen before retrying)`,
    `${stats.failedAfterRetry} failed: ${byReason(stats.failedBy)}`);
  check(lostAcked === 0 && wrongId === 0, `every acknowledged create (${acked}) is in the database with its id`,
    `${lostAcked} missing, ${wrongId} with another id`);
  check(duplicates === 0, "no create ran twice (one row per title)", `${duplicates} titles with more than one row`);
  check(strangers === 0, "no row the clients did not ask for", `${strangers} rows with titles never sent`);
  check(parityBad === 0, `every task's completed matches its acknowledged toggles (${parityChecked} tasks)`,
    parityExamples.join("\n    "));
}

await runTest(main, {
  onFailure: () => {
    for (const i of instances) {
      const c = i.child;
      if (c) console.log(`instance #${i.index + 1}: generation ${i.generation}, pid ${c.pid}, ${c.exitCode === null && c.signalCode === null ? "running" : `exited (code ${c.exitCode}, signal ${c.signalCode})`}`);
    }
    // What the proxy made of it: its error log's last lines (refused upstreams, 502s).
    if (!proxyDir) return;
    try {
      const lines = readFileSync(path.join(proxyDir, "error.log"), "utf8").trimEnd().split("\n");
      console.log(`---- last lines of ${opts.proxy}'s error.log ----\n${lines.slice(-15).join("\n")}`);
    } catch {}
  },
});
