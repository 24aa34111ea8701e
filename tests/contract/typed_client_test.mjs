// A typed client that works (issue 13): what a frontend developer does with the served
// OpenAPI document must give a client that type-checks and talks to the server.
//
//   1. start todo-api; generate schema.d.ts with openapi-typescript from the SERVED
//      http://127.0.0.1:PORT/openapi.json (as `npx openapi-typescript <url> -o schema.d.ts` does);
//   2. type-check typed_client/client.ts (openapi-fetch + the generated types) with
//      `tsc --noEmit --strict`: must pass;
//   3. type-check deliberately wrong variants (status "done", data.owner, a number title, ...):
//      each must FAIL on exactly the wrong line, and its corrected twin must pass, so a schema
//      that typed everything as `any` (or a client that checked nothing) fails this test;
//   4. compile client.ts with tsc and run its main(baseUrl, token) against the live server:
//      create (201), toggle (200, completed flipped), list with status/sort/limit (X-Total-Count),
//      PUT/PATCH (200), DELETE (204), GET of the deleted id (404, typed `detail` string),
//      POST with a whitespace title (400, typed validation list `detail[0].loc` / `.msg`).
//
// Run by ctest from the build directory's copy, next to node_modules and typed_client/:
//   node <build>/contract/typed_client_test.mjs          (cwd: <build>/contract)
// What it shares with the other live-server test (output, child processes, time limit,
// todo-api and its tokens) is harness.mjs, copied next to it.
// Environment:
//   TODO_API_BINARY      path of the todo-api binary (required)
//   TEST_DATABASE_URL    postgresql:// URL of the throwaway database (required)
//   DOCS_DIR             passed to todo-api when set (not needed by this test)
//   CT_NODE_DIR          where node_modules and typed_client/ are (default: this script's directory)
//   CT_TEST_TIMEOUT_S    overall time limit, default 150
//   CT_KEEP_WORKDIR=1    keep the temporary directory (generated schema.d.ts, compiled client)
// Nothing is written into the source tree or next to the script: all output goes to a
// temporary directory that is removed on exit.
import { randomBytes } from "node:crypto";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { addCleanup, check, checkEnvironment, fail, http, log, mintToken, nodeDir, ok, run, runTest, setStep, startTodoApi, stop } from "./harness.mjs";

// ---------------------------------------------------------------- deliberately wrong variants

// Each variant is one line put into the same small function, once right (must type-check) and
// once wrong (tsc must report an error on exactly that line, with one of the expected codes).
const VARIANT_HEAD = `import createClient from "openapi-fetch";
import type { components, paths } from "./schema.js";
type Task = components["schemas"]["Task"];
const client = createClient<paths>({ baseUrl: "http://127.0.0.1:9", headers: { Authorization: "Bearer x" } });
export async function f(id: number): Promise<unknown> {
  const got = await client.GET("/api/tasks/{id}", { params: { path: { id } } });
  const task: Task | undefined = got.data;
  const error = got.error;
  void task; void error;
`;
const VARIANT_TAIL = `
}
`;
const VARIANTS = [
  {
    name: "status_enum",
    what: 'list query status "done" (not in all|pending|completed)',
    right: `return (await client.GET("/api/tasks", { params: { query: { status: "pending", sort: "-created", limit: 5 } } })).data;`,
    wrong: `return (await client.GET("/api/tasks", { params: { query: { status: "done", sort: "-created", limit: 5 } } })).data;`,
    codes: [2322, 2769],
  },
  {
    name: "sort_enum",
    what: 'list query sort "newest"',
    right: `return (await client.GET("/api/tasks", { params: { query: { sort: "-updated" } } })).data;`,
    wrong: `return (await client.GET("/api/tasks", { params: { query: { sort: "newest" } } })).data;`,
    codes: [2322, 2769],
  },
  {
    name: "limit_type",
    what: 'list query limit "10" (a string)',
    right: `return (await client.GET("/api/tasks", { params: { query: { limit: 10, offset: 0 } } })).data;`,
    wrong: `return (await client.GET("/api/tasks", { params: { query: { limit: "10", offset: 0 } } })).data;`,
    codes: [2322, 2769],
  },
  {
    name: "task_owner",
    what: "reading data.owner (Task has no owner field)",
    right: `return task?.title.toUpperCase();`,
    wrong: `return task?.owner;`,
    codes: [2339],
  },
  {
    name: "completed_type",
    what: "data.completed used as a string",
    right: `const c: boolean | undefined = task?.completed; return c;`,
    wrong: `const c: string | undefined = task?.completed; return c;`,
    codes: [2322],
  },
  {
    name: "id_type",
    what: "data.id used as a string",
    right: `const n: number | undefined = task?.id; return n;`,
    wrong: `const n: string | undefined = task?.id; return n;`,
    codes: [2322],
  },
  {
    name: "create_title_type",
    what: "POST body title 42 (a number)",
    right: `return (await client.POST("/api/tasks", { body: { title: "x", description: null } })).data;`,
    wrong: `return (await client.POST("/api/tasks", { body: { title: 42, description: null } })).data;`,
    codes: [2322, 2769],
  },
  {
    name: "create_title_required",
    what: "POST body without title",
    right: `return (await client.POST("/api/tasks", { body: { title: "x", description: "y" } })).data;`,
    wrong: `return (await client.POST("/api/tasks", { body: { description: "y" } })).data;`,
    codes: [2741, 2322, 2769, 2345],
  },
  {
    name: "update_completed_type",
    what: 'PATCH body completed "true" (a string)',
    right: `return (await client.PATCH("/api/tasks/{id}", { params: { path: { id } }, body: { completed: true } })).data;`,
    wrong: `return (await client.PATCH("/api/tasks/{id}", { params: { path: { id } }, body: { completed: "true" } })).data;`,
    codes: [2322, 2769],
  },
  {
    name: "path_id_type",
    what: 'path id "abc" (a string)',
    right: `return (await client.DELETE("/api/tasks/{id}", { params: { path: { id: 7 } } })).response.status;`,
    wrong: `return (await client.DELETE("/api/tasks/{id}", { params: { path: { id: "abc" } } })).response.status;`,
    codes: [2322, 2769],
  },
  {
    name: "unknown_path",
    what: "GET /api/todos (no such path)",
    right: `return (await client.GET("/api/tasks", {})).data;`,
    wrong: `return (await client.GET("/api/todos", {})).data;`,
    codes: [2345, 2769],
  },
  {
    name: "error_detail_union",
    what: "error.detail used as a string without narrowing (it is string | ValidationIssue[])",
    right: `return error && typeof error.detail === "string" ? error.detail.toUpperCase() : undefined;`,
    wrong: `return error?.detail.toUpperCase();`,
    codes: [2339],
  },
  {
    name: "validation_loc_type",
    what: "validation detail[0].loc used as a string (it is an array)",
    right: `if (error && Array.isArray(error.detail)) { const loc: (string | number)[] | undefined = error.detail[0]?.loc; return loc; } return undefined;`,
    wrong: `if (error && Array.isArray(error.detail)) { const loc: string | undefined = error.detail[0]?.loc; return loc; } return undefined;`,
    codes: [2322],
  },
];

/// Parses `tsc --pretty false` output: [{ file, line, code, text }].
function tscErrors(text) {
  const errors = [];
  for (const line of text.split("\n")) {
    const m = /^(.+?)\((\d+),(\d+)\): error TS(\d+): (.*)$/.exec(line.trim());
    if (m) errors.push({ file: path.basename(m[1]), line: Number(m[2]), code: Number(m[4]), text: m[5] });
  }
  return errors;
}

// ---------------------------------------------------------------- the test

async function main() {
  setStep("checking the environment");
  checkEnvironment();
  const otsCli = path.join(nodeDir, "node_modules/openapi-typescript/bin/cli.js");
  const tscJs = path.join(nodeDir, "node_modules/typescript/bin/tsc");
  const clientDir = path.join(nodeDir, "typed_client");
  for (const f of [otsCli, tscJs, path.join(nodeDir, "node_modules/openapi-fetch/package.json"),
    path.join(clientDir, "client.ts"), path.join(clientDir, "tsconfig.json")]) {
    if (!existsSync(f)) fail(`${f} is missing: build the contract_scripts target and run contract.npm_ci`);
  }
  const version = (pkg) => JSON.parse(readFileSync(path.join(nodeDir, "node_modules", pkg, "package.json"), "utf8")).version;
  log(`openapi-typescript ${version("openapi-typescript")}, openapi-fetch ${version("openapi-fetch")}, typescript ${version("typescript")}, Node.js ${process.versions.node}`);

  const work = mkdtempSync(path.join(os.tmpdir(), "todo-typed-client-"));
  if (process.env.CT_KEEP_WORKDIR === "1") log(`work directory (kept): ${work}`);
  else addCleanup(() => rmSync(work, { recursive: true, force: true }));
  const toolEnv = {
    PATH: process.env.PATH,
    HOME: process.env.HOME || os.tmpdir(),
    REDOCLY_TELEMETRY: "off",
    REDOCLY_SUPPRESS_UPDATE_NOTICE: "true",
    NO_COLOR: "1",
    FORCE_COLOR: "0",
  };

  setStep("starting todo-api");
  const api = await startTodoApi();
  log(`todo-api on ${api.base} (pid ${api.child.pid})`);

  setStep("fetching the served OpenAPI document");
  const docUrl = `${api.base}/openapi.json`;
  const doc = await http("GET", docUrl);
  check(doc.status === 200 && /^application\/json/.test(doc.headers.get("content-type") || "") && doc.json,
    `GET /openapi.json: 200, JSON (${doc.text.length} bytes)`, `${doc.status} ${doc.headers.get("content-type")} ${doc.text.slice(0, 200)}`);
  check(/^3\.1\./.test(doc.json.openapi || "") && doc.json.paths?.["/api/tasks"] && doc.json.paths?.["/api/tasks/{id}/complete"],
    `it is OpenAPI ${doc.json.openapi} with /api/tasks and /api/tasks/{id}/complete`);
  writeFileSync(path.join(work, "openapi.json"), doc.text);

  setStep("generating schema.d.ts with openapi-typescript");
  // What a frontend developer runs: `npx openapi-typescript <served url> -o schema.d.ts`.
  const gen = await run("openapi-typescript", process.execPath, [otsCli, docUrl, "-o", path.join(work, "schema.d.ts")],
    { cwd: work, env: toolEnv }, 60000);
  const schemaPath = path.join(work, "schema.d.ts");
  const schema = existsSync(schemaPath) ? readFileSync(schemaPath, "utf8") : "";
  check(gen.code === 0 && /export interface paths/.test(schema) && schema.includes('"/api/tasks/{id}/complete"') &&
      /export interface components/.test(schema),
    `openapi-typescript ${docUrl} -o schema.d.ts: exit 0, ${schema.length} bytes with paths and components`,
    `exit ${gen.code}: ${gen.text.slice(-2000)}`);
  check(/listTasks:/.test(schema) && /status\?:/.test(schema) && /"pending"/.test(schema) && /ValidationIssue:/.test(schema),
    "schema.d.ts types listTasks' query (status pending|...), Task and the validation list");

  setStep("setting up the typed client's directory");
  for (const f of ["client.ts", "tsconfig.json"]) copyFileSync(path.join(clientDir, f), path.join(work, f));
  writeFileSync(path.join(work, "package.json"), `${JSON.stringify({ name: "typed-client-check", private: true, type: "module" }, null, 2)}\n`);
  symlinkSync(path.join(nodeDir, "node_modules"), path.join(work, "node_modules"), "dir");

  setStep("type-checking typed_client/client.ts");
  const tsc = (args, ms = 90000) => run("tsc", process.execPath, [tscJs, "--pretty", "false", ...args], { cwd: work, env: toolEnv }, ms);
  const t0 = Date.now();
  const good = await tsc(["--noEmit", "--strict", "-p", "tsconfig.json"]);
  check(good.code === 0 && tscErrors(good.text).length === 0,
    `tsc --noEmit --strict: client.ts type-checks against the generated types (${((Date.now() - t0) / 1000).toFixed(1)} s)`,
    `exit ${good.code}:\n${good.text.slice(0, 4000)}`);

  setStep("type-checking the deliberately wrong variants");
  const vdir = path.join(work, "variants");
  mkdirSync(vdir);
  const headLines = VARIANT_HEAD.split("\n").length; // the variant's line is the next one after the head
  const files = [];
  for (const v of VARIANTS) {
    for (const kind of ["right", "wrong"]) {
      const file = `${kind}_${v.name}.ts`;
      writeFileSync(path.join(vdir, file), `${VARIANT_HEAD.replace(/"\.\/schema\.js"/, '"../schema.js"')}  ${v[kind]}${VARIANT_TAIL}`);
      files.push(`variants/${file}`);
    }
  }
  const base = JSON.parse(readFileSync(path.join(work, "tsconfig.json"), "utf8"));
  writeFileSync(path.join(work, "tsconfig.variants.json"),
    JSON.stringify({ compilerOptions: { ...base.compilerOptions, noUnusedLocals: false }, files }, null, 2));
  const t1 = Date.now();
  const vr = await tsc(["--noEmit", "--strict", "-p", "tsconfig.variants.json"]);
  const errs = tscErrors(vr.text);
  log(`tsc on ${files.length} variant files: exit ${vr.code}, ${errs.length} errors (${((Date.now() - t1) / 1000).toFixed(1)} s)`);
  check(vr.code !== 0 && errs.length > 0, "tsc --noEmit --strict FAILS on the wrong variants", vr.text.slice(0, 2000));
  const stray = errs.filter((e) => !/^wrong_/.test(e.file));
  check(stray.length === 0, "every corrected twin (right_*.ts) type-checks",
    stray.map((e) => `${e.file}(${e.line}): TS${e.code} ${e.text}`).join("\n    "));
  for (const v of VARIANTS) {
    const mine = errs.filter((e) => e.file === `wrong_${v.name}.ts`);
    const onLine = mine.filter((e) => e.line === headLines);
    const elsewhere = mine.filter((e) => e.line !== headLines);
    check(onLine.length > 0 && onLine.some((e) => v.codes.includes(e.code)) && elsewhere.length === 0,
      `tsc rejects ${v.what}: ${onLine.map((e) => `TS${e.code}`).join(", ") || "no error"}`,
      mine.map((e) => `line ${e.line}: TS${e.code} ${e.text}`).join("\n    ") || `no error in wrong_${v.name}.ts`);
  }

  setStep("compiling client.ts");
  const emit = await tsc(["--strict", "-p", "tsconfig.json"]);
  const clientJs = path.join(work, "out", "client.js");
  check(emit.code === 0 && existsSync(clientJs), "tsc compiles client.ts to out/client.js", `exit ${emit.code}:\n${emit.text.slice(0, 3000)}`);

  setStep("running the typed client against todo-api");
  const user = `typed-client-${randomBytes(6).toString("hex")}`; // a user with no tasks yet
  const minted = await mintToken(user, api.runDir);
  if (!minted.valid) fail(`\`todo-api token --sub ${user}\` exited ${minted.code}: ${minted.text.slice(0, 500)}`);
  const token = minted.token;
  ok(`minted a token for ${user}`);
  const client = await import(pathToFileURL(clientJs).href);
  check(typeof client.main === "function", "out/client.js exports main");
  let report;
  try {
    report = await client.main(api.base, token);
  } catch (err) {
    fail(`the typed client's main() threw: ${err?.stack || err}`);
  }
  ok("main(baseUrl, token) ran every step without throwing");

  const titles = ["typed: buy milk", "typed: call Alice", "typed: water the plants"];
  check(report.created.length === 3 && report.created.every((c, i) => c.status === 201 && c.task.title === titles[i] &&
      c.task.completed === false && Number.isInteger(c.task.id) && c.location === `/api/tasks/${c.task.id}`),
    "POST /api/tasks x3: 201, titles as sent, completed false, Location /api/tasks/{id}",
    JSON.stringify(report.created));
  const [milk, alice, plants] = report.created.map((c) => c.task.id);
  check(report.toggled.status === 200 && report.toggled.id === milk && report.toggled.before === false && report.toggled.after === true,
    "PATCH /api/tasks/{id}/complete (no body): 200, completed flipped false -> true", JSON.stringify(report.toggled));
  check(report.setCompleted.status === 200 && report.setCompleted.completed === true,
    'PATCH /api/tasks/{id}/complete {"completed": true}: 200, still completed', JSON.stringify(report.setCompleted));
  check(report.listed.status === 200 && JSON.stringify(report.listed.ids) === JSON.stringify([plants]) && report.listed.total === 2,
    "GET /api/tasks?status=pending&sort=-created&limit=1: 200, the newest pending task, X-Total-Count 2",
    JSON.stringify(report.listed));
  check(report.listedAll.status === 200 && JSON.stringify(report.listedAll.ids) === JSON.stringify([milk, alice, plants]) &&
      report.listedAll.total === 3,
    "GET /api/tasks?status=all&sort=created: 200, 3 tasks oldest first, X-Total-Count 3", JSON.stringify(report.listedAll));
  check(report.replaced.status === 200 && report.replaced.title === "typed: call Alice and Bob" && report.replaced.description === "about the trip",
    "PUT /api/tasks/{id}: 200, new title and description", JSON.stringify(report.replaced));
  check(report.patched.status === 200 && report.patched.completed === true && report.patched.description === null,
    "PATCH /api/tasks/{id}: 200, completed set, description cleared", JSON.stringify(report.patched));
  check(report.deleted.status === 204, "DELETE /api/tasks/{id}: 204", JSON.stringify(report.deleted));
  check(report.notFound.status === 404 && report.notFound.detail === "Task not found",
    'GET of the deleted id: 404, typed error.detail "Task not found"', JSON.stringify(report.notFound));
  check(report.invalid.status === 400 && JSON.stringify(report.invalid.loc) === '["body","title"]' &&
      typeof report.invalid.msg === "string" && report.invalid.msg.length > 0,
    `POST with title "   ": 400, typed detail[0].loc ["body","title"], msg "${report.invalid.msg}" (${report.invalid.type})`,
    JSON.stringify(report.invalid));

  // What the client did is what the server holds (checked without the client).
  const after = await http("GET", `${api.base}/api/tasks?sort=created`, { headers: { authorization: `Bearer ${token}` } });
  check(after.status === 200 && Array.isArray(after.json) && JSON.stringify(after.json.map((x) => [x.id, x.title, x.completed])) ===
      JSON.stringify([[alice, "typed: call Alice and Bob", false], [plants, "typed: water the plants", true]]),
    "plain GET /api/tasks agrees: 2 tasks left with the client's changes", `${after.status} ${after.text.slice(0, 500)}`);
  check(api.child.exitCode === null && api.child.signalCode === null, `todo-api (pid ${api.child.pid}) ran throughout`);

  log("for a frontend: npx openapi-typescript http://localhost:8000/openapi.json -o src/api/schema.d.ts && npm i openapi-fetch");
  await stop(api.child);
}

await runTest(main);
