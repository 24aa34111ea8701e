// Checks deploy/k8s/todo-api.yaml for what matters at a rollout: probe paths, a grace period
// that covers the drain, selectors that match, the settings from the Secret, the security
// context. No YAML library is guaranteed on the test machine, so this reads the block subset
// of YAML the file uses (mappings, sequences, plain and quoted scalars, comments, ---) and
// rejects anything else, so that a construct it cannot read fails instead of passing.
//   node tests/deploy/k8s_check.mjs deploy/k8s/todo-api.yaml
import { readFileSync } from "node:fs";

let fails = 0;
const ok = (m) => console.log(`ok: ${m}`);
const bad = (m) => { console.log(`FAIL: ${m}`); fails++; };

function parseYaml(text) {
  const docs = [];
  let lines = [];
  const flush = () => { if (lines.length) docs.push(parseDoc(lines)); lines = []; };
  text.split("\n").forEach((raw, i) => {
    if (/^---\s*$/.test(raw)) return flush();
    if (/\t/.test(raw.match(/^\s*/)[0])) throw new Error(`line ${i + 1}: tab in indentation`);
    const text = stripComment(raw).trimEnd();
    if (text.trim() === "") return;
    lines.push({ n: i + 1, indent: text.match(/^ */)[0].length, text: text.trim() });
  });
  flush();
  return docs;
}

function stripComment(s) {
  let q = null;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (q) { if (c === q) q = null; continue; }
    if (c === '"' || c === "'") q = c;
    else if (c === "#" && (i === 0 || /\s/.test(s[i - 1]))) return s.slice(0, i);
  }
  return s;
}

function scalar(s, n) {
  if (/^[[{|>&*!]/.test(s)) throw new Error(`line ${n}: '${s}' (flow, block scalar, anchor or tag) is outside the subset this check reads`);
  if (/^"(?:[^"\\]|\\.)*"$/.test(s)) return JSON.parse(s);
  if (/^'(?:[^']|'')*'$/.test(s)) return s.slice(1, -1).replace(/''/g, "'");
  if (/^["']/.test(s)) throw new Error(`line ${n}: unterminated quote`);
  if (s === "true") return true;
  if (s === "false") return false;
  if (s === "null" || s === "~") return null;
  if (/^-?\d+$/.test(s)) return Number(s);
  return s;
}

function parseDoc(lines) {
  let i = 0;
  const keyRe = /^([A-Za-z0-9_.\/-]+|"[^"]*"):(?:\s+(.*))?$/;
  function block(indent) {
    return lines[i].text.startsWith("- ") || lines[i].text === "-" ? seq(indent) : map(indent);
  }
  function valueAfterKey(indent) { // the value of "key:" with nothing after the colon
    if (i >= lines.length) return null;
    const next = lines[i];
    if (next.indent > indent) return block(next.indent);
    if (next.indent === indent && next.text.startsWith("- ")) return seq(indent);
    return null;
  }
  function map(indent) {
    const out = {};
    while (i < lines.length && lines[i].indent === indent && !lines[i].text.startsWith("- ")) {
      const { n, text } = lines[i];
      const m = text.match(keyRe);
      if (!m) throw new Error(`line ${n}: expected 'key: value', got '${text}'`);
      const key = m[1].replace(/^"|"$/g, "");
      if (key in out) throw new Error(`line ${n}: duplicate key '${key}'`);
      i++;
      out[key] = m[2] === undefined || m[2] === "" ? valueAfterKey(indent) : scalar(m[2], n);
    }
    if (i < lines.length && lines[i].indent > indent)
      throw new Error(`line ${lines[i].n}: unexpected indentation`);
    return out;
  }
  function seq(indent) {
    const out = [];
    while (i < lines.length && lines[i].indent === indent && (lines[i].text.startsWith("- ") || lines[i].text === "-")) {
      const { n, text } = lines[i];
      const rest = text.slice(1).replace(/^ +/, "");
      if (rest === "") { i++; out.push(i < lines.length && lines[i].indent > indent ? block(lines[i].indent) : null); continue; }
      if (keyRe.test(rest)) { // "- key: value": a mapping whose column is that of "key"
        lines[i] = { n, indent: indent + text.indexOf(rest), text: rest };
        out.push(map(lines[i].indent));
      } else { i++; out.push(scalar(rest, n)); }
    }
    return out;
  }
  const doc = block(lines[0].indent);
  if (i < lines.length) throw new Error(`line ${lines[i].n}: unexpected '${lines[i].text}'`);
  return doc;
}

const file = process.argv[2];
let docs;
try {
  docs = parseYaml(readFileSync(file, "utf8"));
  ok(`${file}: ${docs.length} documents parsed (${docs.map((d) => d.kind).join(", ")})`);
} catch (e) {
  bad(`${file}: ${e.message}`);
  process.exit(1);
}
const kind = (k) => docs.filter((d) => d && d.kind === k);
const get = (o, path) => path.split(".").reduce((v, k) => (v == null ? undefined : v[k]), o);
const subset = (sel, labels) => sel && labels && Object.keys(sel).length > 0 &&
  Object.entries(sel).every(([k, v]) => labels[k] === v);
const check = (cond, good, fail) => (cond ? ok(good) : bad(fail));

const [dep] = kind("Deployment");
if (!dep) { bad("no Deployment"); process.exit(1); }
const spec = dep.spec || {};
const pod = get(spec, "template.spec") || {};
const labels = get(spec, "template.metadata.labels");
const c = (pod.containers || [])[0] || {};
const env = Object.fromEntries((c.env || []).map((e) => [e.name, e]));

check(spec.replicas === 3, "Deployment: 3 replicas", `Deployment: replicas ${spec.replicas}, expected 3`);
const ru = get(spec, "strategy.rollingUpdate") || {};
check(get(spec, "strategy.type") === "RollingUpdate" && ru.maxUnavailable === 0 && ru.maxSurge === 1,
  "rolling update: maxUnavailable 0, maxSurge 1",
  `rolling update: type ${get(spec, "strategy.type")}, maxUnavailable ${ru.maxUnavailable}, maxSurge ${ru.maxSurge}`);
check(subset(get(spec, "selector.matchLabels"), labels), "the Deployment's selector matches its pod labels",
  "the Deployment's selector does not match its pod template's labels");

const portNames = new Set((c.ports || []).flatMap((p) => [p.name, p.containerPort]));
for (const [probe, path] of [["readinessProbe", "/ready"], ["livenessProbe", "/health"]]) {
  const g = get(c, `${probe}.httpGet`) || {};
  check(g.path === path && portNames.has(g.port), `${probe}: GET ${path} on port ${g.port}`,
    `${probe}: GET ${g.path} on port ${g.port}, expected ${path} on one of the container's ports`);
}

const num = (name, dflt) => {
  const v = env[name] && env[name].value;
  return v === undefined ? dflt : Number(v);
};
const drain = num("DRAIN_DELAY_MS", 0), grace = num("SHUTDOWN_GRACE_MS", 10000);
const preStop = Number(get(c, "lifecycle.preStop.sleep.seconds") || 0) * 1000;
const execPreStop = get(c, "lifecycle.preStop.exec");
if (execPreStop) bad("preStop exec: this check cannot tell how long it takes; use the sleep action");
const period = (pod.terminationGracePeriodSeconds ?? 30) * 1000, margin = 2000;
check(period >= preStop + drain + grace + margin,
  `terminationGracePeriodSeconds ${period / 1000} s >= preStop ${preStop / 1000} s + DRAIN_DELAY_MS ${drain} + SHUTDOWN_GRACE_MS ${grace} + ${margin / 1000} s`,
  `terminationGracePeriodSeconds ${period / 1000} s is below preStop ${preStop / 1000} s + DRAIN_DELAY_MS ${drain} + SHUTDOWN_GRACE_MS ${grace} + ${margin / 1000} s: the kubelet would kill requests in flight`);
const rp = c.readinessProbe || {};
const notice = (rp.periodSeconds ?? 10) * (rp.failureThreshold ?? 3) * 1000;
check(preStop > 0 || notice <= drain,
  `the readiness probe notices the drain (${notice} ms <= DRAIN_DELAY_MS ${drain})`,
  `the readiness probe needs ${notice} ms to see /ready 503, longer than DRAIN_DELAY_MS ${drain}`);

for (const name of ["DATABASE_URL", "DATABASE_LISTEN_URL", "BETTER_AUTH_JWKS_URL", "TRUSTED_PROXIES"]) {
  const ref = get(env[name], "valueFrom.secretKeyRef");
  check(ref && ref.name && ref.key, `${name} from Secret ${ref && ref.name}`,
    `${name} is not read from a Secret (valueFrom.secretKeyRef)`);
}

const res = c.resources || {};
check(get(res, "requests.memory") && get(res, "requests.cpu") && get(res, "limits.memory"),
  `resources: requests ${get(res, "requests.cpu")} / ${get(res, "requests.memory")}, memory limit ${get(res, "limits.memory")}`,
  "resources: requests (cpu, memory) and a memory limit are required");

const psc = pod.securityContext || {}, csc = c.securityContext || {};
check((csc.runAsNonRoot ?? psc.runAsNonRoot) === true, "runAsNonRoot", "runAsNonRoot is not true");
check(csc.readOnlyRootFilesystem === true, "readOnlyRootFilesystem", "readOnlyRootFilesystem is not true");
check(csc.allowPrivilegeEscalation === false, "allowPrivilegeEscalation: false", "allowPrivilegeEscalation is not false");
check((get(csc, "capabilities.drop") || []).includes("ALL"), "capabilities: drop ALL", "capabilities.drop does not hold ALL");

const [svc] = kind("Service");
check(svc && subset(get(svc, "spec.selector"), labels) &&
  (get(svc, "spec.ports") || []).every((p) => portNames.has(p.targetPort ?? p.port)),
  "Service: selector and targetPort match the pods",
  "Service: missing, or its selector / targetPort does not match the Deployment's pods");

const [pdb] = kind("PodDisruptionBudget");
const pdbSel = get(pdb, "spec.selector.matchLabels");
check(pdb && subset(pdbSel, labels) && JSON.stringify(pdbSel) === JSON.stringify(get(spec, "selector.matchLabels")),
  "PodDisruptionBudget: selector matches the Deployment's",
  "PodDisruptionBudget: missing, or its selector differs from the Deployment's");
const pspec = (pdb && pdb.spec) || {};
check((pspec.maxUnavailable !== undefined && pspec.maxUnavailable >= 1 && pspec.maxUnavailable < spec.replicas) ||
  (pspec.minAvailable !== undefined && pspec.minAvailable >= 1 && pspec.minAvailable < spec.replicas),
  `PodDisruptionBudget: ${pspec.maxUnavailable !== undefined ? `maxUnavailable ${pspec.maxUnavailable}` : `minAvailable ${pspec.minAvailable}`} of ${spec.replicas}`,
  "PodDisruptionBudget: needs maxUnavailable or minAvailable that lets a drain proceed and keeps replicas up");

process.exit(fails ? 1 : 0);
