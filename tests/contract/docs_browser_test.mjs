// /docs in a real browser (issue 13): Swagger UI served by todo-api, in headless Chromium,
// offline, used the way a developer uses it.
//
//   1. start todo-api; mint a token (`todo-api token --sub <user>`);
//   2. open http://127.0.0.1:PORT/docs: the task operations are listed (paths and summaries),
//      every request the page makes goes to 127.0.0.1:PORT (no CDN), none fails or gets >= 400;
//   3. "Authorize": paste the token as bearerAuth, Authorize, Close;
//   4. POST /api/tasks: "Try it out", a JSON body with a unique title, "Execute": the live
//      response shows 201 and the title, and the browser sent `Authorization: Bearer <token>`;
//   5. GET /api/tasks the same way: 200 and the title; a plain fetch with the token agrees;
//      PATCH /api/tasks/{id}/complete the same way: 200, completed true (a plain GET agrees);
//      a conditional header (If-Match, If-None-Match) that Try it out pre-fills from the
//      parameter's example is noted and cleared (fatal with DOCS_PREFILL_FATAL=1);
//   6. a full-page screenshot is saved (DOCS_SCREENSHOT); no page errors (uncaught exceptions).
//
// Run by ctest from the build directory's copy, next to node_modules:
//   node <build>/contract/docs_browser_test.mjs          (cwd: <build>/contract)
// What it shares with the other live-server tests (output, child processes, time limit,
// todo-api and its tokens) is harness.mjs; what it shares with sse_clients_test.mjs (launching
// Chromium, killing it on every exit path) is chromium.mjs; both copied next to it.
// Environment:
//   TODO_API_BINARY      path of the todo-api binary (required)
//   TEST_DATABASE_URL    postgresql:// URL of the throwaway database (required)
//   DOCS_DIR             Swagger UI files (swagger-ui-dist) for todo-api; passed on when set
//   CHROMIUM_PATH        the browser, default /usr/bin/chromium (Debian: apt-get install chromium)
//   DOCS_SCREENSHOT      where to save the screenshot, default ./docs-screenshot.png (cwd)
//   CT_NODE_DIR          where node_modules is (default: this script's directory)
//   CT_TEST_TIMEOUT_S    overall time limit, default 150
//   DOCS_PREFILL_FATAL=1 fail (instead of noting) when Try it out pre-fills If-Match/If-None-Match
// Chromium and todo-api are killed on every exit path (and, through setpriv --pdeathsig, if
// this process is killed outright); the browser profile is a temporary directory.
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import os from "node:os";
import path from "node:path";
import { checkChromium, chromiumLeft, closeBrowser, killChromium, launchChromium } from "./chromium.mjs";
import { addCleanup, check, checkEnvironment, fail, http, log, mintToken, nodeDir, ok, runTest, setStep, sleep, startTodoApi, stop } from "./harness.mjs";

const screenshotPath = path.resolve(process.env.DOCS_SCREENSHOT || "docs-screenshot.png");
let currentPage; // for a screenshot when the test fails

// ---------------------------------------------------------------- Swagger UI

// Swagger UI's "Try it out" fills a header parameter with the parameter's `example`. For the
// conditional headers that sends a made-up ETag: If-Match then makes every PUT/PATCH/DELETE/
// complete tried from /docs answer 412 unless the user clears the field. Noted (fatal with
// DOCS_PREFILL_FATAL=1) and cleared, so that the rest of the test still runs.
const notes = [];
async function clearPrefilledConditional(block, name, where) {
  const input = block.locator(`.parameters input[placeholder="${name}"]`);
  if ((await input.count()) === 0) return;
  const value = await input.first().inputValue();
  if (value === "") {
    ok(`${where}: Try it out leaves ${name} empty`);
    return;
  }
  const msg = `${where}: Try it out pre-fills ${name} with ${value} (the parameter's example)` +
    (name === "If-Match" ? ", so Execute answers 412 unless the user clears it" : ", a conditional header the user did not ask for");
  if (process.env.DOCS_PREFILL_FATAL === "1") fail(msg);
  notes.push(`${msg}; cleared it`);
  log(`note: ${msg}; clearing it`);
  await input.first().fill("");
}

// ---------------------------------------------------------------- the test

async function main() {
  setStep("checking the environment");
  checkEnvironment();
  checkChromium();
  if (!existsSync(path.join(nodeDir, "node_modules/playwright-core/package.json")))
    fail(`${nodeDir}/node_modules/playwright-core is missing: run contract.npm_ci`);
  const require = createRequire(path.join(nodeDir, "package.json"));
  const { chromium } = require("playwright-core");
  const pwVersion = JSON.parse(readFileSync(path.join(nodeDir, "node_modules/playwright-core/package.json"), "utf8")).version;

  const tmp = mkdtempSync(path.join(os.tmpdir(), "todo-docs-browser-"));
  addCleanup(() => rmSync(tmp, { recursive: true, force: true }));

  setStep("starting todo-api");
  const runDir = path.join(tmp, "run"); // no .env in here
  mkdirSync(runDir);
  const { child: api, base, port } = await startTodoApi(runDir);
  log(`todo-api on ${base} (pid ${api.pid})${process.env.DOCS_DIR ? `, DOCS_DIR=${process.env.DOCS_DIR}` : ""}`);

  setStep("minting a token");
  const user = `docs-browser-${randomBytes(6).toString("hex")}`;
  const tr = await mintToken(user, runDir);
  const token = tr.token;
  check(tr.valid, `todo-api token --sub ${user}: a JWT`, `exit ${tr.code}: ${tr.text.slice(0, 500)}`);

  setStep("launching Chromium");
  const { context: browserContext } = await launchChromium({
    chromium, pwVersion, dir: tmp, options: { viewport: { width: 1280, height: 900 } },
  });

  const requests = []; // every request the browser made
  const failedRequests = [];
  const badResponses = [];
  const pageErrors = [];
  const consoleErrors = [];
  browserContext.on("request", (r) => requests.push({ method: r.method(), url: r.url(), headers: r.headers() }));
  browserContext.on("requestfailed", (r) => failedRequests.push(`${r.method()} ${r.url()}: ${r.failure()?.errorText}`));
  browserContext.on("response", (r) => {
    if (r.status() >= 400) badResponses.push(`${r.request().method()} ${r.url()}: ${r.status()}`);
  });
  const page = browserContext.pages()[0] ?? (await browserContext.newPage());
  currentPage = page;
  page.on("pageerror", (e) => pageErrors.push(e?.stack || String(e)));
  page.on("console", (m) => {
    if (m.type() === "error") consoleErrors.push(m.text());
  });

  setStep("opening /docs");
  const resp = await page.goto(`${base}/docs`, { waitUntil: "load" });
  check(resp?.status() === 200, `GET /docs in Chromium: 200`, `status ${resp?.status()}`);
  await page.locator(".opblock").first().waitFor({ state: "visible", timeout: 60000 });
  check((await page.title()).length > 0 && (await page.locator(".swagger-ui .info .title").count()) > 0,
    `Swagger UI rendered the document: "${(await page.locator(".swagger-ui .info .title").first().textContent())?.trim()}"`);

  // The task operations, found by method and path (as Swagger UI renders them).
  const op = (method, p) =>
    page.locator(`.opblock.opblock-${method}`, { has: page.locator(`.opblock-summary-path[data-path="${p}"]`) });
  const expected = [
    ["get", "/api/tasks"],
    ["post", "/api/tasks"],
    ["get", "/api/tasks/{id}"],
    ["put", "/api/tasks/{id}"],
    ["patch", "/api/tasks/{id}"],
    ["delete", "/api/tasks/{id}"],
    ["patch", "/api/tasks/{id}/complete"],
  ];
  const doc = (await http("GET", `${base}/openapi.json`)).json;
  for (const [method, p] of expected) {
    const block = op(method, p);
    const n = await block.count();
    const summary = n === 1 ? (await block.locator(".opblock-summary-description").textContent())?.trim() : undefined;
    const want = doc?.paths?.[p]?.[method]?.summary;
    check(n === 1 && summary && summary === want, `/docs lists ${method.toUpperCase()} ${p}: "${summary}"`,
      `${n} blocks, summary ${JSON.stringify(summary)}, the document says ${JSON.stringify(want)}`);
  }
  const body = await page.locator("body").innerText();
  check(body.includes("/api/tasks") && body.includes("/api/tasks/{id}/complete"), `the page text shows /api/tasks and /api/tasks/{id}/complete`);

  setStep("authorizing");
  await page.locator(".scheme-container button.authorize, .auth-wrapper button.authorize").first().click();
  const modal = page.locator(".modal-ux");
  await modal.waitFor({ state: "visible" });
  const modalText = await modal.innerText();
  check(/bearerAuth/.test(modalText), `the Authorize dialog offers bearerAuth`, modalText.slice(0, 300));
  // The dialog also offers accessTokenQuery (the live-updates route's ?access_token=): fill
  // the bearerAuth form only.
  const bearer = modal.locator("form").filter({ hasText: "bearerAuth" });
  await bearer.locator("input").first().fill(token);
  await bearer.locator(".auth-btn-wrapper button.authorize").click();
  await bearer.locator(".auth-btn-wrapper button", { hasText: /logout/i }).waitFor({ state: "visible" });
  ok("token pasted as bearerAuth, Authorize clicked (the dialog now offers Logout)");
  await modal.locator(".auth-btn-wrapper button.btn-done, button.close-modal").first().click();
  await modal.waitFor({ state: "hidden" });
  check(await page.locator(".auth-wrapper button.authorize.locked").count() > 0, "dialog closed; the Authorize button shows locked");

  setStep("POST /api/tasks with Try it out");
  const title = `from Swagger UI ${randomBytes(5).toString("hex")}`;
  const post = op("post", "/api/tasks");
  await post.locator(".opblock-summary-control").click();
  await post.locator("button.try-out__btn").click();
  const textarea = post.locator("textarea.body-param__text");
  await textarea.waitFor({ state: "visible" });
  await textarea.fill(JSON.stringify({ title, description: "typed into Swagger UI in headless Chromium" }, null, 2));
  const [postReq] = await Promise.all([
    page.waitForRequest((r) => r.method() === "POST" && new URL(r.url()).pathname === "/api/tasks", { timeout: 30000 }),
    post.locator("button.execute").click(),
  ]);
  const postStatus = post.locator(".live-responses-table .response .response-col_status").first();
  await postStatus.waitFor({ state: "visible" });
  const postCode = (await postStatus.innerText()).trim();
  const postBody = (await post.locator(".live-responses-table .response .response-col_description").first().innerText()).trim();
  check(/^201\b/.test(postCode), `Execute: the live response shows 201`, `status cell ${JSON.stringify(postCode)}; body ${postBody.slice(0, 500)}`);
  check(postBody.includes(title), `the response body shows the title "${title}"`, postBody.slice(0, 500));
  const reqUrl = (await post.locator(".request-url pre").first().innerText().catch(() => "")).trim();
  check(reqUrl === `${base}/api/tasks`, `the request URL shown is ${base}/api/tasks`, JSON.stringify(reqUrl));
  check(postReq.headers()["authorization"] === `Bearer ${token}` && /^application\/json/.test(postReq.headers()["content-type"] || ""),
    "the browser sent Authorization: Bearer <the token> and Content-Type: application/json",
    JSON.stringify({ authorization: postReq.headers()["authorization"]?.slice(0, 20), "content-type": postReq.headers()["content-type"] }));
  let created;
  try {
    created = JSON.parse(postReq.postData() || "");
  } catch {}
  check(created?.title === title, "the request body was the JSON typed into the textarea", postReq.postData()?.slice(0, 300));

  setStep("GET /api/tasks with Try it out");
  const list = op("get", "/api/tasks");
  await list.locator(".opblock-summary-control").click();
  await list.locator("button.try-out__btn").click();
  await clearPrefilledConditional(list, "If-None-Match", "GET /api/tasks");
  const [listReq] = await Promise.all([
    page.waitForRequest((r) => r.method() === "GET" && new URL(r.url()).pathname === "/api/tasks", { timeout: 30000 }),
    list.locator("button.execute").click(),
  ]);
  const listStatus = list.locator(".live-responses-table .response .response-col_status").first();
  await listStatus.waitFor({ state: "visible" });
  const listCode = (await listStatus.innerText()).trim();
  const listBody = (await list.locator(".live-responses-table .response .response-col_description").first().innerText()).trim();
  check(/^200\b/.test(listCode) && listBody.includes(title), `GET /api/tasks Execute: 200 and the list shows "${title}" (${listReq.url().replace(base, "")})`,
    `status ${JSON.stringify(listCode)}; body ${listBody.slice(0, 500)}`);

  setStep("checking with a plain fetch");
  const plain = await http("GET", `${base}/api/tasks`, { headers: { authorization: `Bearer ${token}` } });
  const mine = Array.isArray(plain.json) ? plain.json.filter((t) => t.title === title) : [];
  check(plain.status === 200 && mine.length === 1 && plain.json.length === 1 && mine[0].completed === false,
    `plain GET /api/tasks with the token: 200, exactly the one task "${title}" (id ${mine[0]?.id})`, `${plain.status} ${plain.text.slice(0, 300)}`);
  const taskId = mine[0].id;

  setStep("PATCH /api/tasks/{id}/complete with Try it out");
  const complete = op("patch", "/api/tasks/{id}/complete");
  await complete.locator(".opblock-summary-control").click();
  await complete.locator("button.try-out__btn").click();
  await clearPrefilledConditional(complete, "If-Match", "PATCH /api/tasks/{id}/complete");
  await complete.locator('.parameters input[placeholder="id"]').fill(String(taskId));
  const [completeReq] = await Promise.all([
    page.waitForRequest((r) => r.method() === "PATCH" && new URL(r.url()).pathname === `/api/tasks/${taskId}/complete`, { timeout: 30000 }),
    complete.locator("button.execute").click(),
  ]);
  const completeStatus = complete.locator(".live-responses-table .response .response-col_status").first();
  await completeStatus.waitFor({ state: "visible" });
  const completeCode = (await completeStatus.innerText()).trim();
  const completeBody = (await complete.locator(".live-responses-table .response .response-col_description").first().innerText()).trim();
  check(/^200\b/.test(completeCode) && /"completed":\s*true/.test(completeBody) && completeBody.includes(title),
    `PATCH /api/tasks/${taskId}/complete Execute (body ${JSON.stringify(completeReq.postData() ?? "")}): 200, completed true`,
    `status ${JSON.stringify(completeCode)}; body ${completeBody.slice(0, 500)}`);
  const after = await http("GET", `${base}/api/tasks/${taskId}`, { headers: { authorization: `Bearer ${token}` } });
  check(after.status === 200 && after.json?.completed === true, `plain GET /api/tasks/${taskId}: completed is true`, `${after.status} ${after.text.slice(0, 300)}`);

  setStep("saving the screenshot");
  mkdirSync(path.dirname(screenshotPath), { recursive: true });
  await page.screenshot({ path: screenshotPath, fullPage: true, timeout: 60000 });
  const size = existsSync(screenshotPath) ? statSync(screenshotPath).size : 0;
  check(size > 10000, `full-page screenshot saved: ${screenshotPath} (${size} bytes)`);

  setStep("checking what the page did");
  const offHost = requests.filter((r) => {
    try {
      const u = new URL(r.url);
      if (u.protocol === "data:" || u.protocol === "blob:") return false;
      return u.host !== `127.0.0.1:${port}`;
    } catch {
      return true;
    }
  });
  check(requests.length >= 5 && offHost.length === 0,
    `all ${requests.length} requests went to 127.0.0.1:${port} (no CDN, nothing else): ${[...new Set(requests.map((r) => new URL(r.url).pathname))].join(" ")}`,
    offHost.map((r) => `${r.method} ${r.url}`).join("\n    "));
  for (const asset of ["/docs", "/docs/swagger-ui.css", "/docs/swagger-ui-bundle.js", "/openapi.json"]) {
    if (!requests.some((r) => new URL(r.url).pathname === asset)) fail(`the page never requested ${asset}`);
  }
  ok("the page loaded /docs, /docs/swagger-ui.css, /docs/swagger-ui-bundle.js and /openapi.json from todo-api");
  check(failedRequests.length === 0, "no request failed", failedRequests.join("\n    "));
  check(badResponses.length === 0, "no response had a status >= 400", badResponses.join("\n    "));
  if (consoleErrors.length) log(`console errors (not fatal): ${consoleErrors.join(" | ").slice(0, 1000)}`);
  check(pageErrors.length === 0, "no page errors (uncaught exceptions)", pageErrors.join("\n    "));
  check(api.exitCode === null && api.signalCode === null, `todo-api (pid ${api.pid}) ran throughout`);
  for (const n of notes) log(`NOTE: ${n}`);

  setStep("closing Chromium");
  await closeDocsBrowser();
  const left = chromiumLeft();
  check(left.length === 0, "Chromium closed: none of its processes is left", `still running: ${left.join(" ")}`);
  await stop(api);
}

async function failureScreenshot() {
  const page = currentPage;
  if (!page) return;
  try {
    mkdirSync(path.dirname(screenshotPath), { recursive: true });
    await Promise.race([page.screenshot({ path: screenshotPath, fullPage: true, timeout: 10000 }), sleep(12000)]);
    if (existsSync(screenshotPath)) console.log(`screenshot of the failure: ${screenshotPath}`);
  } catch {}
}

/// closeBrowser (chromium.mjs), forgetting the page first (no failure screenshot of a closed page).
async function closeDocsBrowser() {
  currentPage = undefined;
  await closeBrowser();
}

await runTest(main, {
  onExit: killChromium, // the harness kills its own children
  beforeCleanup: closeDocsBrowser,
  onFailure: failureScreenshot,
  onSuccess: () => console.log(`screenshot: ${screenshotPath}`),
});
