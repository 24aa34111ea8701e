// Integration test against the REAL Better Auth (issue 4): tokens minted by the npm package
// better-auth (jwt() plugin) must be accepted by todo-api.
//
// Run by ctest from the build directory's copy (next to node_modules and server.mjs):
//   node <build>/better_auth/run_test.mjs
// Environment:
//   TEST_DATABASE_URL   postgresql:// URL of the throwaway cluster's `todo` database (scripts/test)
//   TODO_API_BINARY     path of the todo-api binary
//   BA_TEST_TIMEOUT_S   overall time limit, default 120
//
// Steps:
//   A. Better Auth with jwt() untouched (EdDSA, JWKS at /api/auth/jwks): sign up, get a token,
//      call todo-api (configured with BETTER_AUTH_JWKS_URL); a tampered token gets 401.
//      Rotate Better Auth's key; a token with the new kid is accepted without restarting todo-api,
//      and the old token (its key still in the JWKS) still is.
//   B. Better Auth with the jwt.sign hook making HS256 tokens with the shared BETTER_AUTH_SECRET:
//      sign in, get a token, call a todo-api that has only the secret (no JWKS).
// Every child process is killed on exit; the Better Auth database is dropped.
import { spawn } from "node:child_process";
import { createHmac, randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

// Where `npm ci` installed better-auth and pg, and server.mjs lives (the build directory's copy).
const nodeDir = process.env.BA_NODE_DIR || path.dirname(fileURLToPath(import.meta.url));
let pg; // loaded once the install is known to be there
const limitSeconds = Number(process.env.BA_TEST_TIMEOUT_S || 120);
const started = Date.now();
let step = "start";
let passed = 0;
let failed = 0;
let timedOut = false; // once set, the timer owns the exit: everything else just stops
const never = () => new Promise(() => {});
const children = new Set();
const cleanups = [];

function elapsed() {
  return ((Date.now() - started) / 1000).toFixed(1);
}
function log(msg) {
  console.log(`[${elapsed()}s] ${msg}`);
}
function ok(msg) {
  passed += 1;
  log(`ok ${passed} - ${msg}`);
}
class TestFailure extends Error {}
function fail(msg) {
  throw new TestFailure(msg);
}
function check(cond, msg, detail) {
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
process.on("exit", () => killAll("SIGKILL"));
for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"]) {
  process.on(sig, async () => {
    console.log(`FAIL: got ${sig} while ${step}`);
    await cleanup();
    process.exit(1);
  });
}

/// Starts a child; keeps the last 200 lines of its output for failure reports.
function start(name, cmd, args, opts) {
  // Should we be killed outright (SIGKILL: no clean-up), the children must not outlive us:
  // setpriv (util-linux) makes the kernel send them SIGKILL when we die, and server.mjs also
  // exits when its stdin, a pipe nobody writes to, closes.
  if (existsSync("/usr/bin/setpriv")) {
    args = ["--pdeathsig", "KILL", "--", cmd, ...args];
    cmd = "/usr/bin/setpriv";
  }
  const child = spawn(cmd, args, { ...opts, stdio: ["pipe", "pipe", "pipe"] });
  child.label = name;
  child.output = [];
  const keep = (buf) => {
    for (const line of buf.toString().split("\n")) {
      if (line) child.output.push(line);
    }
    if (child.output.length > 200) child.output.splice(0, child.output.length - 200);
  };
  child.stdout.on("data", keep);
  child.stderr.on("data", keep);
  child.exited = new Promise((resolve) => child.on("exit", (code, sig) => resolve({ code, sig })));
  child.on("error", (err) => child.output.push(`spawn error: ${err.message}`));
  children.add(child);
  return child;
}

async function stop(child) {
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
    console.log(c.output.slice(-40).join("\n") || "(nothing)");
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

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------- HTTP

async function http(method, url, { headers = {}, body } = {}) {
  const init = { method, headers: { ...headers }, signal: AbortSignal.timeout(10000) };
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

/// Polls `url` until it answers 200, the child exits, or `ms` pass.
async function waitReady(child, url, ms) {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (child.exitCode !== null || child.signalCode !== null)
      fail(`${child.label} exited (code ${child.exitCode}, signal ${child.signalCode}) before ${url} answered`);
    try {
      const r = await http("GET", url);
      if (r.status === 200) return;
    } catch {}
    await sleep(150);
  }
  fail(`${child.label} did not answer 200 on ${url} within ${ms / 1000} s`);
}

const bearer = (token) => ({ authorization: `Bearer ${token}` });

function decodeJwt(token) {
  const parts = token.split(".");
  if (parts.length !== 3) fail(`not a JWS compact token: ${token.slice(0, 40)}...`);
  const part = (s) => JSON.parse(Buffer.from(s, "base64url").toString("utf8"));
  return { header: part(parts[0]), payload: part(parts[1]) };
}

/// Flips one character in the middle of the signature (not the last one, whose low bits may
/// be padding that base64url decoders ignore).
function tamperSignature(token) {
  const [h, p, s] = token.split(".");
  const i = Math.floor(s.length / 2);
  const c = s[i] === "A" ? "B" : "A";
  return `${h}.${p}.${s.slice(0, i)}${c}${s.slice(i + 1)}`;
}

/// Same header and signature, but the payload claims another user.
function tamperPayload(token) {
  const [h, p, s] = token.split(".");
  const payload = JSON.parse(Buffer.from(p, "base64url").toString("utf8"));
  payload.sub = `${payload.sub}-other`;
  return `${h}.${Buffer.from(JSON.stringify(payload)).toString("base64url")}.${s}`;
}

function hs256(payload, key) {
  const h = Buffer.from(JSON.stringify({ alg: "HS256", typ: "JWT" })).toString("base64url");
  const p = Buffer.from(JSON.stringify(payload)).toString("base64url");
  const sig = createHmac("sha256", key).update(`${h}.${p}`).digest("base64url");
  return `${h}.${p}.${sig}`;
}

// ---------------------------------------------------------------- the two servers

const secret = randomBytes(32).toString("hex");

async function startBetterAuth(mode, databaseUrl) {
  const port = await freePort();
  const baseURL = `http://127.0.0.1:${port}`;
  const child = start(`better-auth (${mode})`, process.execPath, [path.join(nodeDir, "server.mjs")], {
    cwd: nodeDir,
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME || os.tmpdir(),
      BA_DATABASE_URL: databaseUrl,
      BETTER_AUTH_SECRET: secret,
      BA_PORT: String(port),
      BA_MODE: mode,
      BA_EXIT_ON_STDIN_EOF: "1",
    },
  });
  await waitReady(child, `${baseURL}/test/ready`, 30000);
  return { child, baseURL };
}

async function startTodoApi(label, extraEnv) {
  const port = await freePort();
  const workDir = mkdtempSync(path.join(os.tmpdir(), "todo-ba-test-")); // no .env in here
  cleanups.push(() => rmSync(workDir, { recursive: true, force: true }));
  // A clean environment: nothing the caller has set (JWT_ALGORITHMS, ...) leaks in.
  const env = {
    PATH: process.env.PATH,
    PORT: String(port),
    HOST: "127.0.0.1",
    DATABASE_URL: process.env.TEST_DATABASE_URL,
    BETTER_AUTH_SECRET: secret,
    LOG_LEVEL: "warn",
    ...extraEnv,
  };
  const child = start(`todo-api (${label})`, process.env.TODO_API_BINARY, [], { cwd: workDir, env });
  const base = `http://127.0.0.1:${port}`;
  await waitReady(child, `${base}/health`, 20000);
  return { child, base };
}

function sessionCookie(res) {
  const cookies = res.headers.getSetCookie ? res.headers.getSetCookie() : [];
  const c = cookies.map((x) => x.split(";")[0]).find((x) => x.includes("session_token="));
  if (!c) fail(`no session cookie in the answer (status ${res.status}): ${res.text.slice(0, 300)}`);
  return c;
}

async function getToken(ba, cookie) {
  const r = await http("GET", `${ba.baseURL}/api/auth/token`, { headers: { cookie } });
  if (r.status !== 200 || typeof r.json?.token !== "string")
    fail(`GET /api/auth/token answered ${r.status}: ${r.text.slice(0, 300)}`);
  return r.json.token;
}

// ---------------------------------------------------------------- the test

async function main() {
  step = "checking the environment";
  const major = Number(process.versions.node.split(".")[0]);
  if (major < 20) fail(`Node.js ${process.versions.node} is too old: better-auth 1.7 needs Node.js >= 20`);
  for (const name of ["TEST_DATABASE_URL", "TODO_API_BINARY"]) {
    if (!process.env[name]) fail(`${name} is not set (run the tests through scripts/test)`);
  }
  if (!existsSync(process.env.TODO_API_BINARY)) fail(`TODO_API_BINARY ${process.env.TODO_API_BINARY} does not exist`);
  for (const f of ["server.mjs", "node_modules/better-auth/package.json", "node_modules/pg/package.json"]) {
    if (!existsSync(path.join(nodeDir, f)))
      fail(`${path.join(nodeDir, f)} is missing: build the better_auth_node target (it runs npm ci there)`);
  }
  const require = createRequire(path.join(nodeDir, "package.json"));
  pg = require("pg");
  const version = (pkg) =>
    JSON.parse(readFileSync(path.join(nodeDir, "node_modules", pkg, "package.json"), "utf8")).version;
  log(`better-auth ${version("better-auth")}, pg ${version("pg")}, Node.js ${process.versions.node}`);
  let dbUrl;
  try {
    dbUrl = new URL(process.env.TEST_DATABASE_URL);
  } catch {
    fail("TEST_DATABASE_URL must be a postgresql:// URL");
  }

  step = "creating Better Auth's database";
  const dbName = `better_auth_test_${process.pid}`;
  const admin = new pg.Client({ connectionString: process.env.TEST_DATABASE_URL });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
  await admin.query(`CREATE DATABASE ${dbName}`);
  cleanups.push(async () => {
    await admin.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`).catch(() => {});
    await admin.end().catch(() => {});
  });
  dbUrl.pathname = `/${dbName}`;
  const baDatabaseUrl = dbUrl.toString();
  log(`Better Auth database: ${dbName}`);

  // Part A failing (e.g. a todo-api without JWKS support) must not hide what part B shows.
  const st = { email: `user-${randomBytes(6).toString("hex")}@example.com`, password: `pw-${randomBytes(12).toString("hex")}` };
  const failures = [];
  for (const [name, part] of [["A (EdDSA/JWKS)", partA], ["B (HS256 sign hook)", partB]]) {
    try {
      await part(baDatabaseUrl, st);
    } catch (err) {
      if (timedOut) await never();
      const msg = err instanceof TestFailure ? err.message : err?.stack || String(err);
      failed += 1;
      failures.push(`part ${name}, while ${step}: ${msg}`);
      log(`FAIL while ${step}: ${msg}`);
      dumpOutputs();
      await stopAll();
    }
  }
  if (failures.length) {
    failed -= 1; // counted again below
    fail(`${failures.length} part(s) failed:\n  - ${failures.join("\n  - ")}`);
  }
}

async function stopAll() {
  await Promise.all([...children].map((c) => stop(c)));
}

async function signUpOrIn(ba, st) {
  if (!st.userId) {
    const su = await http("POST", `${ba.baseURL}/api/auth/sign-up/email`, {
      headers: { origin: ba.baseURL },
      body: { email: st.email, password: st.password, name: "Test User" },
    });
    check(su.status === 200 && su.json?.user?.id, `sign-up ${st.email} answers 200 with a user`, `${su.status} ${su.text.slice(0, 300)}`);
    st.userId = su.json.user.id;
    return sessionCookie(su);
  }
  const si = await http("POST", `${ba.baseURL}/api/auth/sign-in/email`, {
    headers: { origin: ba.baseURL },
    body: { email: st.email, password: st.password },
  });
  check(si.status === 200 && si.json?.user?.id === st.userId, `sign-in ${st.email} answers 200, same user`, `${si.status} ${si.text.slice(0, 300)}`);
  return sessionCookie(si);
}

// ------------------------------------------------------------ A. EdDSA + JWKS
async function partA(baDatabaseUrl, st) {
  step = "A: starting Better Auth (jwt() defaults)";
  const ba = await startBetterAuth("eddsa", baDatabaseUrl);
  log(`Better Auth (EdDSA/JWKS) on ${ba.baseURL}`);

  step = "A: signing up";
  const cookieA = await signUpOrIn(ba, st);
  const userId = st.userId;

  step = "A: getting a token";
  const tokenA = await getToken(ba, cookieA);
  st.eddsaToken = tokenA;
  const a = decodeJwt(tokenA);
  check(a.header.alg === "EdDSA" && typeof a.header.kid === "string" && a.header.kid.length > 0,
    `token from /api/auth/token is EdDSA with a kid`, JSON.stringify(a.header));
  check(a.payload.sub === userId && a.payload.iss === ba.baseURL && a.payload.aud === ba.baseURL,
    `token claims: sub is the user id, iss and aud are the base URL`, JSON.stringify(a.payload));
  check(Number.isInteger(a.payload.exp) && a.payload.exp - a.payload.iat === 900,
    `token expires 15 min after iat`, JSON.stringify(a.payload));
  const jwks1 = await http("GET", `${ba.baseURL}/api/auth/jwks`);
  const key1 = jwks1.json?.keys?.find((k) => k.kid === a.header.kid);
  check(jwks1.status === 200 && key1 && key1.kty === "OKP" && key1.crv === "Ed25519" && key1.alg === "EdDSA",
    `JWKS lists the token's kid as an OKP/Ed25519 key`, jwks1.text.slice(0, 400));

  step = "A: starting todo-api with BETTER_AUTH_JWKS_URL";
  const apiA = await startTodoApi("jwks", {
    BETTER_AUTH_JWKS_URL: `${ba.baseURL}/api/auth/jwks`,
    BETTER_AUTH_ISSUER: ba.baseURL,
    BETTER_AUTH_AUDIENCE: ba.baseURL,
  });
  log(`todo-api on ${apiA.base} (pid ${apiA.child.pid})`);

  step = "A: using the EdDSA token";
  const created = await http("POST", `${apiA.base}/api/tasks`, {
    headers: bearer(tokenA),
    body: { title: "from Better Auth (EdDSA)" },
  });
  check(created.status === 201 && Number.isInteger(created.json?.id),
    `POST /api/tasks with Better Auth's EdDSA token: 201`, `${created.status} ${created.text.slice(0, 300)}`);
  const taskA = created.json.id;
  st.taskA = taskA;
  const listed = await http("GET", `${apiA.base}/api/tasks`, { headers: bearer(tokenA) });
  check(listed.status === 200 && Array.isArray(listed.json) && listed.json.some((t) => t.id === taskA),
    `GET /api/tasks lists task ${taskA}`, `${listed.status} ${listed.text.slice(0, 300)}`);
  const scoped = await http("GET", `${apiA.base}/api/${encodeURIComponent(userId)}/tasks/${taskA}`, { headers: bearer(tokenA) });
  check(scoped.status === 200, `GET /api/{user_id}/tasks/${taskA} with the Better Auth user id: 200`, `${scoped.status} ${scoped.text.slice(0, 300)}`);

  for (const [what, bad] of [["signature", tamperSignature(tokenA)], ["payload (sub)", tamperPayload(tokenA)]]) {
    const r = await http("GET", `${apiA.base}/api/tasks`, { headers: bearer(bad) });
    check(r.status === 401 && /invalid_token/.test(r.headers.get("www-authenticate") || ""),
      `token with a tampered ${what}: 401 with WWW-Authenticate invalid_token`,
      `${r.status} ${r.headers.get("www-authenticate")} ${r.text.slice(0, 200)}`);
  }

  step = "A: rotating Better Auth's key";
  const rot = await http("POST", `${ba.baseURL}/test/rotate`);
  check(rot.status === 200 && rot.json?.kid && rot.json.kid !== a.header.kid,
    `Better Auth key rotated: new kid ${rot.json?.kid}`, `${rot.status} ${rot.text.slice(0, 400)}`);
  const tokenA2 = await getToken(ba, cookieA);
  const a2 = decodeJwt(tokenA2);
  check(a2.header.alg === "EdDSA" && a2.header.kid === rot.json.kid && a2.payload.sub === userId,
    `the next token is signed with the new key`, JSON.stringify(a2.header));
  const jwks2 = await http("GET", `${ba.baseURL}/api/auth/jwks`);
  const kids2 = (jwks2.json?.keys || []).map((k) => k.kid);
  check(kids2.includes(a.header.kid) && kids2.includes(a2.header.kid),
    `JWKS now lists the old and the new kid`, jwks2.text.slice(0, 400));

  step = "A: using the token from the rotated key";
  // todo-api refetches the JWKS for an unknown kid at most once per 30 s, so allow for that.
  const t0 = Date.now();
  let r2;
  for (;;) {
    r2 = await http("GET", `${apiA.base}/api/tasks`, { headers: bearer(tokenA2) });
    if (r2.status === 200 || Date.now() - t0 > 45000) break;
    if (apiA.child.exitCode !== null) fail("todo-api exited");
    await sleep(1000);
  }
  check(r2.status === 200 && Array.isArray(r2.json) && r2.json.some((t) => t.id === taskA),
    `token with the new kid accepted without restarting todo-api (after ${((Date.now() - t0) / 1000).toFixed(1)} s), same user's tasks`,
    `${r2.status} ${r2.text.slice(0, 300)}`);
  const old = await http("GET", `${apiA.base}/api/tasks`, { headers: bearer(tokenA) });
  check(old.status === 200, `the token from the old key (still in the JWKS) is still accepted`, `${old.status} ${old.text.slice(0, 200)}`);
  check(apiA.child.exitCode === null && apiA.child.signalCode === null, `todo-api (pid ${apiA.child.pid}) ran throughout`);

  st.eddsaToken = tokenA2;
  await stop(apiA.child);
  await stop(ba.child);
}

// ------------------------------------------------------------ B. HS256 via jwt.sign
async function partB(baDatabaseUrl, st) {
  step = "B: starting Better Auth (jwt.sign hook, HS256)";
  const bh = await startBetterAuth("hs256", baDatabaseUrl);
  log(`Better Auth (HS256 sign hook) on ${bh.baseURL}`);

  step = "B: signing in";
  const cookieB = await signUpOrIn(bh, st);
  const userId = st.userId;
  const tokenB = await getToken(bh, cookieB);
  const b = decodeJwt(tokenB);
  check(b.header.alg === "HS256" && b.payload.sub === userId && b.payload.iss === bh.baseURL &&
      b.payload.aud === bh.baseURL && Number.isInteger(b.payload.exp) && Number.isInteger(b.payload.iat),
    `token is HS256 with sub, iss, aud, iat, exp`, `${JSON.stringify(b.header)} ${JSON.stringify(b.payload)}`);

  step = "B: starting todo-api with only BETTER_AUTH_SECRET";
  const apiB = await startTodoApi("hs256", {
    BETTER_AUTH_ISSUER: bh.baseURL,
    BETTER_AUTH_AUDIENCE: bh.baseURL,
  });
  log(`todo-api on ${apiB.base} (pid ${apiB.child.pid})`);

  step = "B: using the HS256 token";
  const createdB = await http("POST", `${apiB.base}/api/tasks`, {
    headers: bearer(tokenB),
    body: { title: "from Better Auth (HS256)" },
  });
  check(createdB.status === 201 && Number.isInteger(createdB.json?.id),
    `POST /api/tasks with the HS256 token: 201`, `${createdB.status} ${createdB.text.slice(0, 300)}`);
  const listB = await http("GET", `${apiB.base}/api/tasks`, { headers: bearer(tokenB) });
  const idsB = Array.isArray(listB.json) ? listB.json.map((t) => t.id) : [];
  check(listB.status === 200 && idsB.includes(createdB.json.id) && (st.taskA === undefined || idsB.includes(st.taskA)),
    st.taskA === undefined ? `GET /api/tasks lists the task`
      : `GET /api/tasks lists both tasks (one user, whichever token mode)`, `${listB.status} ${listB.text.slice(0, 300)}`);
  const forged = hs256({ ...b.payload }, "not-the-shared-secret");
  const rf = await http("GET", `${apiB.base}/api/tasks`, { headers: bearer(forged) });
  check(rf.status === 401, `HS256 token signed with another secret: 401`, `${rf.status} ${rf.text.slice(0, 200)}`);
  const rt = await http("GET", `${apiB.base}/api/tasks`, { headers: bearer(tamperPayload(tokenB)) });
  check(rt.status === 401, `HS256 token with a tampered payload: 401`, `${rt.status} ${rt.text.slice(0, 200)}`);
  if (st.eddsaToken) {
    const ra = await http("GET", `${apiB.base}/api/tasks`, { headers: bearer(st.eddsaToken) });
    check(ra.status === 401, `Better Auth's EdDSA token at a todo-api without a JWKS: 401`, `${ra.status} ${ra.text.slice(0, 200)}`);
  }

  await stop(apiB.child);
  await stop(bh.child);
}

async function cleanup() {
  killAll("SIGTERM");
  await Promise.race([Promise.all([...children].map((c) => c.exited)), sleep(5000)]);
  killAll("SIGKILL");
  for (const f of cleanups.reverse()) {
    try {
      await f();
    } catch {}
  }
}

const timer = setTimeout(async () => {
  timedOut = true;
  console.log(`FAIL: timed out after ${limitSeconds} s while ${step}`);
  dumpOutputs();
  await cleanup();
  console.log(`${passed} passed, ${failed + 1} failed`);
  process.exit(1);
}, limitSeconds * 1000);

try {
  await main();
  clearTimeout(timer);
  await cleanup();
  console.log(`${passed} passed, 0 failed`);
  process.exit(0);
} catch (err) {
  if (timedOut) await never();
  clearTimeout(timer);
  const msg = err instanceof TestFailure ? err.message : err?.stack || String(err);
  console.log(`FAIL: ${msg}`);
  dumpOutputs();
  await cleanup();
  console.log(`${passed} passed, ${failed + 1} failed`);
  process.exit(1);
}
