// Live updates with the clients their users run: GET /api/tasks/events (Server-Sent Events)
// followed by the npm `eventsource` package (the WHATWG EventSource for Node) and by the
// EventSource of a real headless Chromium, while another client changes the tasks.
//
//   1. start todo-api; mint a token (`todo-api token --sub <user>`) for a fresh user;
//   2. Node, npm `eventsource`: new EventSource(base + "/api/tasks/events?access_token=<jwt>")
//      opens; a task created by a plain fetch (POST /api/tasks, Bearer header) arrives as
//      `task.created` whose data equals the POST's answer and whose lastEventId is a decimal
//      string; PATCH /api/tasks/{id}/complete arrives as `task.updated` (completed true, a
//      larger id); DELETE arrives as `task.deleted` with {"id": N} (a larger id still); no
//      `reset`/`reauth`, no error meanwhile; an EventSource with ?access_token=garbage never
//      opens: error event, readyState CLOSED, HTTP 401;
//   3. headless Chromium (Debian's /usr/bin/chromium, driven by playwright-core): a page of the
//      todo-api origin (/health) opens a same-origin EventSource with ?access_token=; once it is
//      OPEN, a task created from Node reaches the page as `task.created` (within 5 s) with the
//      same data as the POST's answer; every request of the page stayed on 127.0.0.1:PORT, no
//      page errors; Chromium closes leaving no process.
//
// Run by ctest from the build directory's copy, next to node_modules:
//   node <build>/contract/sse_clients_test.mjs           (cwd: <build>/contract)
// What it shares with the other live-server tests (output, child processes, time limit,
// todo-api and its tokens) is harness.mjs; what it shares with docs_browser_test.mjs (launching
// Chromium, killing it on every exit path) is chromium.mjs; both copied next to it.
// Environment:
//   TODO_API_BINARY      path of the todo-api binary (required)
//   TEST_DATABASE_URL    postgresql:// URL of the throwaway database (required)
//   DOCS_DIR             passed to todo-api when set (not needed by this test)
//   CHROMIUM_PATH        the browser, default /usr/bin/chromium (Debian: apt-get install chromium)
//   CT_NODE_DIR          where node_modules is (default: this script's directory)
//   CT_TEST_TIMEOUT_S    overall time limit, default 150
// Chromium and todo-api are killed on every exit path (and, through setpriv --pdeathsig, if
// this process is killed outright); the browser profile is a temporary directory.
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import os from "node:os";
import path from "node:path";
import { isDeepStrictEqual } from "node:util";
import { checkChromium, chromiumLeft, closeBrowser, killChromium, launchChromium } from "./chromium.mjs";
import { addCleanup, check, checkEnvironment, fail, http, log, mintToken, nodeDir, runTest, setStep, sleep, startTodoApi, stop } from "./harness.mjs";

const EVENT_WAIT_MS = 5000; // how long an event may take to arrive after the change's answer
const sources = new Set(); // Node EventSources to close on every exit path

function closeSources() {
  for (const es of sources) {
    try {
      es.close();
    } catch {}
  }
  sources.clear();
}

// ---------------------------------------------------------------- following a Node EventSource

const DECIMAL = /^[0-9]+$/;
const TASK_EVENTS = ["task.created", "task.updated", "task.deleted"];

/// Records what `es` reports: opens, errors (with the HTTP status the package gives), and every
/// event of the types the stream may carry (each with its lastEventId and parsed data).
function follow(es) {
  const st = { opens: 0, errors: [], events: [], wake: new Set() };
  const notify = () => {
    for (const w of [...st.wake]) w();
  };
  es.addEventListener("open", () => {
    st.opens += 1;
    notify();
  });
  es.addEventListener("error", (ev) => {
    st.errors.push({ code: ev.code, message: ev.message, readyState: es.readyState });
    notify();
  });
  // `message` catches events without an `event:` line (there should be none).
  for (const type of [...TASK_EVENTS, "reset", "reauth", "message"]) {
    es.addEventListener(type, (ev) => {
      let data;
      try {
        data = JSON.parse(ev.data);
      } catch {}
      st.events.push({ type: ev.type, lastEventId: ev.lastEventId, raw: ev.data, data });
      notify();
    });
  }
  return st;
}

function describe(st) {
  const evs = st.events.map((e) => `${e.type} id=${JSON.stringify(e.lastEventId)} ${e.raw}`);
  return `opens ${st.opens}; errors ${JSON.stringify(st.errors)}; events:\n      ${evs.join("\n      ") || "(none)"}`;
}

/// Resolves with pred()'s first truthy value, re-checked on each of st's reports; fails after `ms`.
function waitFor(st, pred, ms, what) {
  return new Promise((resolve, reject) => {
    let timer;
    const tryNow = () => {
      let v;
      try {
        v = pred();
      } catch (err) {
        v = undefined;
      }
      if (!v) return false;
      clearTimeout(timer);
      st.wake.delete(tryNow);
      resolve(v);
      return true;
    };
    if (tryNow()) return;
    st.wake.add(tryNow);
    timer = setTimeout(() => {
      st.wake.delete(tryNow);
      try {
        fail(`no ${what} within ${ms / 1000} s; the EventSource saw: ${describe(st)}`);
      } catch (err) {
        reject(err);
      }
    }, ms);
  });
}

// ---------------------------------------------------------------- the test

async function main() {
  setStep("checking the environment");
  checkEnvironment();
  checkChromium();
  for (const pkg of ["eventsource", "playwright-core"]) {
    if (!existsSync(path.join(nodeDir, `node_modules/${pkg}/package.json`)))
      fail(`${nodeDir}/node_modules/${pkg} is missing: run contract.npm_ci`);
  }
  const require = createRequire(path.join(nodeDir, "package.json"));
  const { EventSource } = require("eventsource");
  const { chromium } = require("playwright-core");
  const version = (pkg) => JSON.parse(readFileSync(path.join(nodeDir, `node_modules/${pkg}/package.json`), "utf8")).version;
  const esVersion = version("eventsource");
  const pwVersion = version("playwright-core");
  if (typeof EventSource !== "function") fail(`the eventsource package (${esVersion}) exports no EventSource class`);

  const tmp = mkdtempSync(path.join(os.tmpdir(), "todo-sse-clients-"));
  addCleanup(() => rmSync(tmp, { recursive: true, force: true }));

  setStep("starting todo-api");
  const runDir = path.join(tmp, "run"); // no .env in here
  mkdirSync(runDir);
  const { child: api, base, port } = await startTodoApi(runDir);
  log(`todo-api on ${base} (pid ${api.pid})`);

  setStep("minting a token");
  const user = `sse-clients-${randomBytes(6).toString("hex")}`;
  const tr = await mintToken(user, runDir);
  const token = tr.token;
  check(tr.valid, `todo-api token --sub ${user}: a JWT`, `exit ${tr.code}: ${tr.text.slice(0, 500)}`);
  const auth = { authorization: `Bearer ${token}` };
  const eventsUrl = (t) => `${base}/api/tasks/events?access_token=${encodeURIComponent(t)}`;

  const empty = await http("GET", `${base}/api/tasks`, { headers: auth });
  check(empty.status === 200 && Array.isArray(empty.json) && empty.json.length === 0,
    `GET /api/tasks for the fresh user ${user}: 200, no tasks`, `${empty.status} ${empty.text.slice(0, 300)}`);

  // ------------------------------------------------ Node: npm eventsource
  setStep("opening an EventSource (npm eventsource) with ?access_token=");
  const es = new EventSource(eventsUrl(token));
  sources.add(es);
  const st = follow(es);
  check(es.readyState === EventSource.CONNECTING, `new EventSource(/api/tasks/events?access_token=...) (eventsource ${esVersion}): CONNECTING`,
    `readyState ${es.readyState}`);
  await waitFor(st, () => st.opens > 0 || st.errors.length > 0, 10000, "open event");
  check(st.opens === 1 && st.errors.length === 0 && es.readyState === EventSource.OPEN,
    `the EventSource opened: readyState OPEN (${es.readyState})`, describe(st));

  setStep("creating a task with a plain fetch (npm eventsource following)");
  const title = `sse node ${randomBytes(5).toString("hex")}`;
  const created = await http("POST", `${base}/api/tasks`, { headers: auth, body: { title, description: "made by fetch, seen by EventSource" } });
  check(created.status === 201 && created.json?.title === title && Number.isInteger(created.json?.id),
    `POST /api/tasks (Bearer): 201, task ${created.json?.id} "${title}"`, `${created.status} ${created.text.slice(0, 300)}`);
  const id = created.json.id;
  const createdEv = await waitFor(st, () => st.events.find((e) => e.type === "task.created" && e.data?.id === id),
    EVENT_WAIT_MS, `task.created event for task ${id}`);
  check(isDeepStrictEqual(createdEv.data, created.json), `task.created arrived; its data equals the POST's answer: ${createdEv.raw}`,
    `event data ${createdEv.raw}\n    POST answer ${created.text}`);
  check(typeof createdEv.lastEventId === "string" && DECIMAL.test(createdEv.lastEventId),
    `task.created has a decimal lastEventId: ${JSON.stringify(createdEv.lastEventId)}`, JSON.stringify(createdEv.lastEventId));

  setStep("toggling the task (npm eventsource following)");
  const toggled = await http("PATCH", `${base}/api/tasks/${id}/complete`, { headers: auth });
  check(toggled.status === 200 && toggled.json?.id === id && toggled.json?.completed === true,
    `PATCH /api/tasks/${id}/complete: 200, completed true`, `${toggled.status} ${toggled.text.slice(0, 300)}`);
  const updatedEv = await waitFor(st, () => st.events.find((e) => e.type === "task.updated" && e.data?.id === id),
    EVENT_WAIT_MS, `task.updated event for task ${id}`);
  check(updatedEv.data.completed === true && isDeepStrictEqual(updatedEv.data, toggled.json),
    `task.updated arrived with completed true; its data equals the PATCH's answer`,
    `event data ${updatedEv.raw}\n    PATCH answer ${toggled.text}`);
  check(DECIMAL.test(updatedEv.lastEventId) && BigInt(updatedEv.lastEventId) > BigInt(createdEv.lastEventId),
    `task.updated's id ${updatedEv.lastEventId} is larger than task.created's ${createdEv.lastEventId}`,
    `${JSON.stringify(updatedEv.lastEventId)} after ${JSON.stringify(createdEv.lastEventId)}`);

  setStep("deleting the task (npm eventsource following)");
  const deleted = await http("DELETE", `${base}/api/tasks/${id}`, { headers: auth });
  check(deleted.status === 204, `DELETE /api/tasks/${id}: 204`, `${deleted.status} ${deleted.text.slice(0, 300)}`);
  const deletedEv = await waitFor(st, () => st.events.find((e) => e.type === "task.deleted" && e.data?.id === id),
    EVENT_WAIT_MS, `task.deleted event for task ${id}`);
  check(isDeepStrictEqual(deletedEv.data, { id }), `task.deleted arrived with data {"id":${id}}: ${deletedEv.raw}`, deletedEv.raw);
  check(DECIMAL.test(deletedEv.lastEventId) && BigInt(deletedEv.lastEventId) > BigInt(updatedEv.lastEventId),
    `task.deleted's id ${deletedEv.lastEventId} is larger than task.updated's ${updatedEv.lastEventId}`,
    `${JSON.stringify(deletedEv.lastEventId)} after ${JSON.stringify(updatedEv.lastEventId)}`);

  await sleep(300); // anything else the stream was going to say about these three changes
  const types = st.events.map((e) => e.type).join(",");
  check(types === "task.created,task.updated,task.deleted",
    "the stream carried exactly task.created, task.updated, task.deleted, in that order (no reset, reauth or unnamed event)", describe(st));
  check(st.errors.length === 0 && st.opens === 1 && es.readyState === EventSource.OPEN,
    "no error and no reconnection meanwhile; the EventSource is still OPEN", describe(st));
  es.close();
  sources.delete(es);
  check(es.readyState === EventSource.CLOSED, `es.close(): readyState CLOSED (${es.readyState})`);

  setStep("opening an EventSource with ?access_token=garbage");
  const plainBad = await http("GET", eventsUrl("garbage"));
  check(plainBad.status === 401, `plain GET /api/tasks/events?access_token=garbage: 401`, `${plainBad.status} ${plainBad.text.slice(0, 300)}`);
  const bad = new EventSource(eventsUrl("garbage"));
  sources.add(bad);
  const badSt = follow(bad);
  await waitFor(badSt, () => badSt.errors.length > 0 || badSt.opens > 0, 10000, "error event");
  await sleep(500); // a reconnection, were it (wrongly) attempted, would open or report again
  check(badSt.opens === 0 && badSt.errors.length === 1 && badSt.errors[0].code === 401 && bad.readyState === EventSource.CLOSED &&
    badSt.events.length === 0,
    `EventSource with ?access_token=garbage never opens: one error event (HTTP ${badSt.errors[0]?.code}, "${badSt.errors[0]?.message}"), readyState CLOSED, no reconnection`,
    `readyState ${bad.readyState}; ${describe(badSt)}`);
  bad.close();
  sources.delete(bad);

  // ------------------------------------------------ headless Chromium
  setStep("launching Chromium");
  const { context: browserContext } = await launchChromium({ chromium, pwVersion, dir: tmp });

  const requests = [];
  const streamResponses = [];
  const pageErrors = [];
  browserContext.on("request", (r) => requests.push({ method: r.method(), url: r.url() }));
  browserContext.on("response", (r) => {
    if (new URL(r.url()).pathname === "/api/tasks/events")
      streamResponses.push({ status: r.status(), type: r.headers()["content-type"] });
  });
  const page = browserContext.pages()[0] ?? (await browserContext.newPage());
  page.on("pageerror", (e) => pageErrors.push(e?.stack || String(e)));

  setStep("opening a page of the todo-api origin");
  const resp = await page.goto(`${base}/health`, { waitUntil: "load" });
  check(resp?.status() === 200 && (await page.evaluate(() => location.origin)) === base,
    `Chromium: GET /health 200; the page's origin is ${base}`, `status ${resp?.status()}`);

  setStep("opening an EventSource in the page");
  await page.evaluate((t) => {
    window.__events = [];
    window.__errors = 0;
    window.__opens = 0;
    const src = new EventSource("/api/tasks/events?access_token=" + encodeURIComponent(t));
    window.__es = src;
    src.addEventListener("open", () => (window.__opens += 1));
    src.addEventListener("error", () => (window.__errors += 1));
    src.addEventListener("task.created", (ev) =>
      window.__events.push({ type: ev.type, lastEventId: ev.lastEventId, origin: ev.origin, data: ev.data }));
  }, token);
  try {
    await page.waitForFunction(() => window.__es.readyState === 1, null, { timeout: 10000 });
  } catch {
    const s = await page.evaluate(() => ({ readyState: window.__es.readyState, opens: window.__opens, errors: window.__errors }));
    fail(`the page's EventSource did not reach OPEN within 10 s: ${JSON.stringify(s)}; responses ${JSON.stringify(streamResponses)}`);
  }
  const pstate = await page.evaluate(() => ({ readyState: window.__es.readyState, opens: window.__opens, errors: window.__errors, url: window.__es.url }));
  check(pstate.readyState === 1 && pstate.opens === 1 && pstate.errors === 0 && pstate.url === eventsUrl(token),
    `the page's same-origin EventSource is OPEN (${pstate.url.replace(token, "<jwt>")})`, JSON.stringify(pstate));
  check(streamResponses.length === 1 && streamResponses[0].status === 200 && /^text\/event-stream\b/.test(streamResponses[0].type || ""),
    `the browser got 200 text/event-stream for /api/tasks/events`, JSON.stringify(streamResponses));

  setStep("creating a task from Node (the page following)");
  const btitle = `sse browser ${randomBytes(5).toString("hex")}`;
  const bcreated = await http("POST", `${base}/api/tasks`, { headers: auth, body: { title: btitle, description: null } });
  check(bcreated.status === 201 && bcreated.json?.title === btitle,
    `POST /api/tasks from Node: 201, task ${bcreated.json?.id} "${btitle}"`, `${bcreated.status} ${bcreated.text.slice(0, 300)}`);
  try {
    await page.waitForFunction((t) => window.__events.some((e) => {
      try {
        return JSON.parse(e.data).title === t;
      } catch {
        return false;
      }
    }), btitle, { timeout: EVENT_WAIT_MS });
  } catch {
    const seen = await page.evaluate(() => ({ events: window.__events, readyState: window.__es.readyState, errors: window.__errors }));
    fail(`the page's EventSource got no task.created for "${btitle}" within ${EVENT_WAIT_MS / 1000} s: ${JSON.stringify(seen)}`);
  }
  const pageEvents = await page.evaluate(() => window.__events);
  const mine = pageEvents.filter((e) => {
    try {
      return JSON.parse(e.data).title === btitle;
    } catch {
      return false;
    }
  });
  check(mine.length === 1 && pageEvents.length === 1 && mine[0].type === "task.created",
    `the page received one task.created, for "${btitle}"`, JSON.stringify(pageEvents));
  check(isDeepStrictEqual(JSON.parse(mine[0].data), bcreated.json), `its data equals the POST's answer: ${mine[0].data}`,
    `event data ${mine[0].data}\n    POST answer ${bcreated.text}`);
  check(DECIMAL.test(mine[0].lastEventId) && BigInt(mine[0].lastEventId) > BigInt(deletedEv.lastEventId) && mine[0].origin === base,
    `its lastEventId ${mine[0].lastEventId} is decimal and above the earlier stream's last (${deletedEv.lastEventId}); origin ${mine[0].origin}`,
    JSON.stringify(mine[0]));

  setStep("closing the page's EventSource");
  const closed = await page.evaluate(() => {
    window.__es.close();
    return { readyState: window.__es.readyState, errors: window.__errors, opens: window.__opens };
  });
  check(closed.readyState === 2 && closed.errors === 0 && closed.opens === 1,
    "the page's EventSource had no error, never reconnected, and is CLOSED after close()", JSON.stringify(closed));
  const offHost = requests.filter((r) => {
    try {
      return new URL(r.url).host !== `127.0.0.1:${port}`;
    } catch {
      return true;
    }
  });
  check(offHost.length === 0 && requests.some((r) => new URL(r.url).pathname === "/api/tasks/events"),
    `all ${requests.length} requests of the page went to 127.0.0.1:${port}: ${requests.map((r) => new URL(r.url).pathname).join(" ")}`,
    offHost.map((r) => `${r.method} ${r.url}`).join("\n    "));
  check(pageErrors.length === 0, "no page errors (uncaught exceptions)", pageErrors.join("\n    "));

  setStep("closing Chromium");
  await closeBrowser();
  const left = chromiumLeft();
  check(left.length === 0, "Chromium closed: none of its processes is left", `still running: ${left.join(" ")}`);
  check(api.exitCode === null && api.signalCode === null, `todo-api (pid ${api.pid}) ran throughout`);
  await stop(api);
}

await runTest(main, {
  onExit: killChromium, // the harness kills its own children
  beforeCleanup: async () => {
    closeSources();
    await closeBrowser();
  },
});
