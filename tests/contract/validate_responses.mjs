// Validates every response the black-box HTTP tests received against the OpenAPI document,
// so that the document cannot drift from the behaviour (issue 13).
//
//   node validate_responses.mjs <openapi.json> <responses.jsonl | directory> <minimum count>
//
// A directory means every responses*.jsonl in it (the HTTP tests' and each fault scenario's).
// Each line of responses.jsonl is one exchange recorded by tests/http/http_client.cpp
// (TODO_RESPONSE_LOG): method, target, request_headers, status, headers (lowercased), body.
// For each exchange whose path matches a documented path template:
//   - a documented method: the status must be documented for that operation (or `default`),
//     every header the response object marks required must be there, every documented header
//     that is there must match its schema, the Content-Type must be a documented media type
//     and a JSON body must match its schema (Ajv, JSON Schema 2020-12, formats checked); a
//     response documented without content must have no body; HEAD answers have no body;
//   - an undocumented method: the answer must be 405 with an Allow header that lists only
//     documented methods (plus HEAD and OPTIONS);
//   - OPTIONS (CORS preflight) is not an operation: skipped and counted.
// An exchange whose path matches no template must be a 404 with the error shape.
// Exits 1 on any mismatch, or when fewer than <minimum count> exchanges were validated (a
// recorder that silently records nothing must not pass).
import { readFileSync, readdirSync, statSync } from "node:fs";
import path from "node:path";
import Ajv2020 from "ajv/dist/2020.js";
import addFormats from "ajv-formats";

const [docPath, logPath, minArg] = process.argv.slice(2);
if (!docPath || !logPath) {
  console.error("usage: node validate_responses.mjs <openapi.json> <responses.jsonl> [min]");
  process.exit(2);
}
const minimum = Number(minArg || 1);
const doc = JSON.parse(readFileSync(docPath, "utf8"));
const logFiles = statSync(logPath).isDirectory()
  ? readdirSync(logPath).filter((f) => /^responses.*\.jsonl$/.test(f)).map((f) => path.join(logPath, f))
  : [logPath];
const lines = logFiles.flatMap((f) => readFileSync(f, "utf8").split("\n").filter((l) => l.trim() !== ""));
console.log(`files: ${logFiles.map((f) => path.basename(f)).join(", ")}`);

const ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: true });
addFormats(ajv);
ajv.addSchema(doc, "openapi"); // schemas are compiled by JSON pointer into the document

const escape = (s) => s.replace(/~/g, "~0").replace(/\//g, "~1");
function resolve(node, pointer) {
  // Follows OpenAPI $refs (responses, headers, parameters) inside the document.
  for (let hops = 0; node && node.$ref && hops < 10; hops++) {
    if (!node.$ref.startsWith("#/")) throw new Error(`external $ref ${node.$ref}`);
    pointer = node.$ref.slice(1);
    node = pointer
      .split("/")
      .slice(1)
      .map((p) => p.replace(/~1/g, "/").replace(/~0/g, "~"))
      .reduce((n, k) => (n == null ? n : n[k]), doc);
  }
  return { node, pointer };
}
const validators = new Map();
function validatorAt(pointer) {
  if (!validators.has(pointer)) validators.set(pointer, ajv.compile({ $ref: `openapi#${pointer}` }));
  return validators.get(pointer);
}

// Path templates, most specific first (a literal segment beats a parameter, left to right).
const templates = Object.keys(doc.paths || {}).map((t) => ({
  template: t,
  segments: t.split("/").slice(1),
}));
function matchPath(path) {
  const segs = path.split("/").slice(1);
  const hits = templates.filter(
    (t) =>
      t.segments.length === segs.length &&
      t.segments.every((s, i) => (s.startsWith("{") && s.endsWith("}") ? segs[i] !== "" : s === segs[i])),
  );
  hits.sort((a, b) => {
    for (let i = 0; i < a.segments.length; i++) {
      const pa = a.segments[i].startsWith("{") ? 1 : 0;
      const pb = b.segments[i].startsWith("{") ? 1 : 0;
      if (pa !== pb) return pa - pb;
    }
    return 0;
  });
  return hits[0];
}

const methods = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];
const failures = [];
const covered = new Map(); // "METHOD template status" -> count
let validated = 0;
let skipped = 0;

function mediaType(value) {
  return (value || "").split(";")[0].trim().toLowerCase();
}
function headerValue(schema, raw) {
  const type = schema && (Array.isArray(schema.type) ? schema.type[0] : schema.type);
  if (type === "integer" || type === "number") return /^-?[0-9.]+$/.test(raw) ? Number(raw) : raw;
  return raw;
}

for (const [n, line] of lines.entries()) {
  let ex;
  try {
    ex = JSON.parse(line);
  } catch (e) {
    failures.push(`line ${n + 1}: not JSON (${e.message})`);
    continue;
  }
  const where = `${ex.method} ${ex.target} -> ${ex.status}`;
  const fail = (msg) => failures.push(`${where}: ${msg}`);
  const reqPath = ex.target.split("?")[0];
  const method = ex.method.toLowerCase();
  if (method === "options") {
    skipped++;
    continue;
  }
  const hit = matchPath(reqPath);
  if (!hit) {
    validated++;
    if (ex.status !== 404) fail(`no documented path matches, yet the answer is not 404`);
    continue;
  }
  const item = doc.paths[hit.template];
  const isHead = method === "head";
  const opMethod = isHead ? "get" : method;
  const op = methods.includes(opMethod) ? item[opMethod] : undefined;
  validated++;
  if (!op) {
    if (ex.status !== 405) {
      fail(`${ex.method} is not documented for ${hit.template}, yet the answer is not 405`);
      continue;
    }
    const allow = (ex.headers.allow || "").split(",").map((m) => m.trim().toLowerCase()).filter(Boolean);
    if (allow.length === 0) fail(`405 without an Allow header`);
    for (const m of allow)
      if (m !== "head" && m !== "options" && !item[m]) fail(`Allow lists ${m.toUpperCase()}, which ${hit.template} does not document`);
    covered.set(`${ex.method} ${hit.template} 405`, (covered.get(`${ex.method} ${hit.template} 405`) || 0) + 1);
    continue;
  }
  const opPointer = `/paths/${escape(hit.template)}/${opMethod}`;
  const code = String(ex.status);
  let respKey = code in op.responses ? code : `${code[0]}XX` in op.responses ? `${code[0]}XX` : "default";
  if (!(respKey in op.responses)) {
    fail(`status ${code} is not documented for ${opMethod.toUpperCase()} ${hit.template}`);
    continue;
  }
  const key = `${opMethod.toUpperCase()} ${hit.template} ${code}`;
  covered.set(key, (covered.get(key) || 0) + 1);
  const { node: resp, pointer: respPointer } = resolve(op.responses[respKey], `${opPointer}/responses/${respKey}`);
  // Headers.
  for (const [name, h0] of Object.entries(resp.headers || {})) {
    const lname = name.toLowerCase();
    if (lname === "content-type") continue; // OpenAPI ignores it here
    const { node: h, pointer: hPointer } = resolve(h0, `${respPointer}/headers/${escape(name)}`);
    const value = ex.headers[lname];
    if (value === undefined) {
      if (h.required) fail(`required header ${name} is missing`);
      continue;
    }
    if (h.schema) {
      const v = validatorAt(`${hPointer}/schema`);
      if (!v(headerValue(h.schema, value))) fail(`header ${name}: ${JSON.stringify(value)} ${ajv.errorsText(v.errors)}`);
    }
  }
  // Body.
  const content = resp.content;
  if (!content || Object.keys(content).length === 0 || isHead) {
    if (ex.body !== "") fail(`a body (${ex.body.length} bytes) where none is documented`);
    continue;
  }
  const type = mediaType(ex.headers["content-type"]);
  const mediaKey = Object.keys(content).find((k) => mediaType(k) === type) ||
    Object.keys(content).find((k) => k === "*/*" || (k.endsWith("/*") && type.startsWith(k.slice(0, -1))));
  if (!mediaKey) {
    fail(`Content-Type ${JSON.stringify(ex.headers["content-type"])} is not documented (${Object.keys(content).join(", ")})`);
    continue;
  }
  const media = content[mediaKey];
  if (!media.schema) continue;
  if (type === "application/json" || type.endsWith("+json")) {
    let body;
    try {
      body = JSON.parse(ex.body);
    } catch (e) {
      fail(`body is not JSON: ${e.message}`);
      continue;
    }
    const v = validatorAt(`${respPointer}/content/${escape(mediaKey)}/schema`);
    if (!v(body)) fail(`body ${ex.body.slice(0, 200)}: ${ajv.errorsText(v.errors)}`);
  }
}

const opsDocumented = [];
for (const [t, item] of Object.entries(doc.paths))
  for (const m of methods) if (item[m]) opsDocumented.push(`${m.toUpperCase()} ${t}`);
const opsSeen = new Set([...covered.keys()].map((k) => k.split(" ").slice(0, 2).join(" ")));
console.log(`${lines.length} exchanges recorded, ${validated} validated, ${skipped} OPTIONS skipped`);
console.log(`documented operations exercised: ${opsDocumented.filter((o) => opsSeen.has(o)).length} of ${opsDocumented.length}`);
for (const o of opsDocumented) if (!opsSeen.has(o)) console.log(`  not exercised by the black-box tests: ${o}`);
console.log(`(operation, status) pairs seen: ${covered.size}`);
if (validated < minimum) failures.push(`only ${validated} exchanges validated; expected at least ${minimum}`);
if (failures.length) {
  const shown = failures.slice(0, 60);
  console.log(`FAIL: ${failures.length} response(s) do not match the document:`);
  for (const f of shown) console.log(`  ${f}`);
  if (failures.length > shown.length) console.log(`  ... and ${failures.length - shown.length} more`);
  process.exit(1);
}
console.log("PASS: every recorded response matches the OpenAPI document");
