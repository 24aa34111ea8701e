// Headless Chromium for the contract tests that drive a browser (docs_browser_test.mjs,
// sse_clients_test.mjs): Debian's /usr/bin/chromium (CHROMIUM_PATH) launched by playwright-core
// with a fresh profile and HOME, its process groups tracked so that it is killed on every exit
// path, and a check that closing it leaves no process.
//
// One browser per process: the context and its pids are this module's. A test calls
// checkChromium() with its environment checks, launchChromium() to start it, closeBrowser() to
// close it, and passes { onExit: killChromium, beforeCleanup: closeBrowser } (or a function
// calling closeBrowser) to runTest so that the harness's exit paths end it too.
// Environment:
//   CHROMIUM_PATH        the browser, default /usr/bin/chromium (Debian: apt-get install chromium)
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fail, ok, sleep } from "./harness.mjs";

export const chromiumPath = process.env.CHROMIUM_PATH || "/usr/bin/chromium";
let browserContext; // the Playwright context (persistent: it is the browser)
let chromiumPids = []; // process-group leaders to SIGKILL if closing the browser fails

/// Fails unless the browser is there.
export function checkChromium() {
  if (!existsSync(chromiumPath))
    fail(`${chromiumPath} does not exist: install Chromium (Debian/Ubuntu: apt-get install --no-install-recommends chromium) or set CHROMIUM_PATH`);
}

/// SIGKILL to Chromium's process groups (synchronous: usable in process.on("exit")).
export function killChromium() {
  for (const pid of chromiumPids) {
    try {
      process.kill(-pid, "SIGKILL"); // Playwright starts Chromium as a process-group leader
    } catch {}
    try {
      process.kill(pid, "SIGKILL");
    } catch {}
  }
}
/// Processes still in Chromium's process groups.
export function chromiumLeft() {
  const left = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (fields[0] !== "Z" && chromiumPids.includes(Number(fields[2]))) left.push(Number(name));
    } catch {}
  }
  return left;
}
/// Direct children of this process whose command line mentions chrom (the browser Playwright
/// spawned; through the setpriv wrapper it keeps its pid).
function chromiumChildren() {
  const pids = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (ppid !== process.pid) continue;
      const cmdline = readFileSync(`/proc/${name}/cmdline`, "utf8");
      if (/chrom/i.test(cmdline)) pids.push(Number(name));
    } catch {}
  }
  return pids;
}

/// Launches headless Chromium through `chromium` (playwright-core's, version `pwVersion`) as a
/// persistent context, with a fresh profile and HOME made in `dir` (an existing directory the
/// test removes); with setpriv, Chromium gets SIGKILL should this process die. `options` are
/// added to launchPersistentContext's (e.g. viewport). Prints `ok N - Chromium <version>
/// started ...`, sets the default timeouts (30 s, navigation 60 s) and returns { context, pids }.
export async function launchChromium({ chromium, pwVersion, dir, options = {} }) {
  const profile = path.join(dir, "profile");
  const home = path.join(dir, "home");
  mkdirSync(profile);
  mkdirSync(home);
  let executablePath = chromiumPath;
  if (existsSync("/usr/bin/setpriv")) {
    executablePath = path.join(dir, "chromium-pdeathsig.sh");
    writeFileSync(executablePath, `#!/bin/sh\nexec /usr/bin/setpriv --pdeathsig KILL -- '${chromiumPath.replace(/'/g, "'\\''")}' "$@"\n`);
    chmodSync(executablePath, 0o755);
  }
  const t0 = Date.now();
  browserContext = await chromium.launchPersistentContext(profile, {
    executablePath,
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
      "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"],
    env: { PATH: process.env.PATH, HOME: home, XDG_CONFIG_HOME: path.join(home, ".config"), XDG_CACHE_HOME: path.join(home, ".cache") },
    handleSIGINT: false, // the harness's handlers close it (through closeBrowser)
    handleSIGTERM: false,
    handleSIGHUP: false,
    timeout: 60000,
    ...options,
  });
  chromiumPids = chromiumChildren();
  const version = browserContext.browser()?.version() ?? "(unknown version)";
  ok(`Chromium ${version} started in ${((Date.now() - t0) / 1000).toFixed(1)} s (playwright-core ${pwVersion}, pid ${chromiumPids.join(",") || "?"})`);
  browserContext.setDefaultTimeout(30000);
  browserContext.setDefaultNavigationTimeout(60000);
  return { context: browserContext, pids: chromiumPids };
}

/// Closes the browser (at most 10 s), then SIGKILLs its process groups and waits (at most 5 s)
/// for them to be gone. Safe to call again or when it never started.
export async function closeBrowser() {
  const ctx = browserContext;
  browserContext = undefined;
  if (ctx) await Promise.race([ctx.close().catch(() => {}), sleep(10000)]);
  killChromium();
  for (let i = 0; i < 50 && chromiumLeft().length; i++) await sleep(100);
}
