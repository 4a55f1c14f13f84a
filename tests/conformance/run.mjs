// Runs the official MCP conformance suite's SERVER scenarios against one URL and writes a
// machine-readable summary. Started by run.sh with the pinned Node 22 (the CLI needs Node >= 22:
// it imports `globSync` from `fs`); the CLI is spawned with this same Node (process.execPath).
//
//   node run.mjs <url> <output.json> [--suite active|all|pending] [--scenario NAME]... [--timeout-ms N]
//
// Default: the suite's "active" list (every scenario except the pending ones) in one CLI run.
// --scenario NAME (repeatable) runs just those scenarios instead (one CLI run each).
// Extra request headers: env CONFORMANCE_HEADERS ("Name: value" lines), see add-headers.mjs.
// The CLI's own output goes to <output.json>.log (it is not echoed: its "Total: N passed, N failed"
// line would look like a test-runner summary to CI log readers).
//
// Exit status: 0 whenever the summary was written, whatever the scenarios' results;
// 2 on bad usage; 1 when the suite could not be run at all (no scenario result; the summary is
// still written with "error").

import { spawn } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, existsSync, appendFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const HERE = dirname(fileURLToPath(import.meta.url));
const CLI = join(HERE, "node_modules", "@modelcontextprotocol", "conformance", "dist", "index.js");
const PRELOAD = pathToFileURL(join(HERE, "add-headers.mjs")).href;
const USAGE =
  "usage: run.sh <url> <output.json> [--suite active|all|pending] [--scenario NAME]... [--timeout-ms N]";

function usage(msg) {
  console.error(`${msg}\n${USAGE}`);
  process.exit(2);
}

const argv = process.argv.slice(2);
if (argv.length < 2) usage("missing arguments");
const [url, outFile] = argv;
let suite = "active";
const only = [];
let timeoutMs = 180_000;
for (let i = 2; i < argv.length; i++) {
  const a = argv[i];
  const val = () => (i + 1 < argv.length ? argv[++i] : usage(`${a} needs a value`));
  if (a === "--suite") suite = val();
  else if (a === "--scenario") only.push(val());
  else if (a === "--timeout-ms") timeoutMs = Number(val());
  else usage(`unknown argument ${a}`);
}
if (!["active", "all", "pending"].includes(suite)) usage(`bad --suite ${suite}`);
try {
  new URL(url);
} catch {
  usage(`bad url ${url}`);
}
if (!existsSync(CLI)) {
  console.error(`conformance CLI not found at ${CLI}; run \`npm ci\` in ${HERE}`);
  process.exit(1);
}

const logFile = `${outFile}.log`;
writeFileSync(logFile, "");
const cliVersion = JSON.parse(
  readFileSync(join(HERE, "node_modules", "@modelcontextprotocol", "conformance", "package.json"), "utf8"),
).version;
const headerLines = (process.env.CONFORMANCE_HEADERS ?? "").split(/\r?\n/).filter((l) => l.trim() !== "");
for (const l of headerLines) if (l.indexOf(":") <= 0) usage(`CONFORMANCE_HEADERS: bad line (want "Name: value"): ${JSON.stringify(l)}`);
const headerNames = headerLines.map((l) => l.slice(0, l.indexOf(":")).trim());

function runCli(extraArgs, resultDir) {
  return new Promise((resolve) => {
    const args = ["--import", PRELOAD, CLI, "server", "--url", url, "-o", resultDir, ...extraArgs];
    appendFileSync(logFile, `$ ${process.execPath} ${args.join(" ")}\n`);
    const child = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "pipe"], env: process.env });
    let stdout = "";
    child.stdout.on("data", (d) => {
      stdout += d;
      appendFileSync(logFile, d);
    });
    child.stderr.on("data", (d) => appendFileSync(logFile, d));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill("SIGKILL");
    }, timeoutMs);
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, timedOut, stdout });
    });
  });
}

// `server-<scenario>-<ISO timestamp with : and . replaced by ->` (runner/utils.ts createResultDir)
const DIR_RE = /^server-(.+)-\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}-\d{3}Z$/;
// CLI suite summary line: `✓ name: N passed, M failed` / `✗ ...`
const SUMMARY_RE = /^[✓✗] (\S+): (\d+) passed, (\d+) failed$/gm;

function readResults(resultDir) {
  const byName = new Map();
  for (const d of readdirSync(resultDir)) {
    const m = DIR_RE.exec(d);
    const f = join(resultDir, d, "checks.json");
    if (!m || !existsSync(f)) continue;
    byName.set(m[1], JSON.parse(readFileSync(f, "utf8")));
  }
  return byName;
}

function summarize(name, checks, note) {
  const count = (s) => checks.filter((c) => c.status === s).length;
  const failures = count("FAILURE");
  return {
    name,
    passed: checks.length > 0 && failures === 0,
    counts: { success: count("SUCCESS"), failure: failures, warning: count("WARNING"), info: count("INFO") },
    ...(note ? { note } : {}),
    checks: checks
      .filter((c) => c.status !== "INFO")
      .map((c) => ({
        id: c.id,
        status: c.status,
        ...(c.errorMessage ? { errorMessage: c.errorMessage } : {}),
        ...(c.status !== "SUCCESS" && c.details ? { details: c.details } : {}),
      })),
  };
}

const started = Date.now();
const scenarios = [];
const runs = [];
let error;
const tmp = mkdtempSync(join(tmpdir(), "mcp-conformance-"));
try {
  if (only.length === 0) {
    const dir = join(tmp, "suite");
    const r = await runCli(["--suite", suite], dir);
    runs.push({ args: ["--suite", suite], exitCode: r.code, signal: r.signal, timedOut: r.timedOut });
    const results = existsSync(dir) ? readResults(dir) : new Map();
    const listed = [...r.stdout.matchAll(SUMMARY_RE)].map((m) => ({ name: m[1], failed: Number(m[3]) }));
    for (const { name, failed } of listed) {
      const checks = results.get(name);
      if (checks) scenarios.push(summarize(name, checks));
      else
        scenarios.push({
          ...summarize(name, []),
          passed: false,
          note: `scenario crashed in the CLI (no checks.json; ${failed} failure(s) reported), see ${logFile}`,
        });
    }
    // results written but missing from the summary (CLI killed before printing it)
    for (const [name, checks] of results) if (!listed.some((l) => l.name === name)) scenarios.push(summarize(name, checks));
    if (r.timedOut) error = `CLI timed out after ${timeoutMs} ms`;
  } else {
    for (const [i, name] of only.entries()) {
      const dir = join(tmp, `s${i}`);
      const r = await runCli(["--scenario", name], dir);
      runs.push({ args: ["--scenario", name], exitCode: r.code, signal: r.signal, timedOut: r.timedOut });
      const checks = existsSync(dir) ? readResults(dir).get(name) : undefined;
      if (checks) scenarios.push(summarize(name, checks));
      else
        scenarios.push({
          ...summarize(name, []),
          passed: false,
          note: r.timedOut
            ? `CLI timed out after ${timeoutMs} ms`
            : `no result (CLI exit ${r.code}; unknown scenario or crash), see ${logFile}`,
        });
    }
  }
  if (scenarios.length === 0 && !error) error = `no scenario results (CLI exit ${runs[0]?.exitCode}), see ${logFile}`;
} finally {
  rmSync(tmp, { recursive: true, force: true });
}

const passed = scenarios.filter((s) => s.passed).map((s) => s.name);
const failed = scenarios.filter((s) => !s.passed).map((s) => s.name);
const summary = {
  url,
  suite: only.length ? null : suite,
  conformanceVersion: cliVersion,
  node: process.version,
  headersAdded: headerNames,
  durationMs: Date.now() - started,
  passedCount: passed.length,
  failedCount: failed.length,
  passed,
  failed,
  ...(error ? { error } : {}),
  runs,
  scenarios,
};
writeFileSync(outFile, JSON.stringify(summary, null, 2) + "\n");
console.error(
  `conformance ${cliVersion} against ${url}: ${passed.length}/${scenarios.length} scenarios ok` +
    (failed.length ? ` (not ok: ${failed.join(", ")})` : "") +
    ` in ${summary.durationMs} ms -> ${outFile}`,
);
process.exit(error ? 1 : 0);
