"""Turns bench/run's results into docs/benchmarks-suite.md and gnuplot's data file.

usage: report.py WORK CLK_TCK OUT.md COMMAND
reads WORK/results.tsv (throughput), rated.tsv (fixed rates), mcp.tsv (MCP calls),
startup.tsv (start-up and memory); writes OUT.md and the charts' data (WORK/chart-1.dat,
chart-2.dat, latency.dat, for bench/chart.gp), its verdict at
the end, then exits 4 when any scenario answered an error (a socket error, a timeout
or an HTTP status above 399: wrk and oha count them; every scenario should answer
200 only, so its figures are not of the path they name), else 3 naming every target
the run missed (a scenario of ours with no result is a miss), else 0.
"""
import json, os, platform, statistics, subprocess, sys, time

work, clk_tck, out_md, command = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]


def load(name):
    rows = {}
    for line in open(os.path.join(work, name)):
        name, _round, data, ticks, rss = line.rstrip("\n").split("\t")
        data = json.loads(data)
        data["cpu_per_10k"] = (int(ticks) / clk_tck) / max(data["requests"], 1) * 10_000
        data["rss_mib"] = int(rss) / 1024
        rows.setdefault(name, []).append(data)
    return rows


def spread(values, fmt):
    med, lo, hi = statistics.median(values), min(values), max(values)
    return f"{fmt(med)} ({fmt(lo)}–{fmt(hi)})" if len(values) > 1 else fmt(med)


misses = []
# Scenarios that answered errors: "name: N", from the throughput and the fixed-rate runs.
errored = []


def verdict(label, value, target):
    """'met' or 'missed' for `value` against a target written '≥ X' or '≤ X'; a miss is remembered."""
    bound = float(target.split()[1])
    met = value >= bound if target.startswith("≥") else value <= bound
    if not met:
        misses.append(f"{label}: {value:.2f} (target {target})")
    return "met" if met else "**missed**"


def version(cmd):
    try:
        done = subprocess.run(cmd, capture_output=True, text=True)
        return (done.stdout + done.stderr).strip().splitlines()[0]
    except Exception:
        return "?"


throughput, rated = load("results.tsv"), load("rated.tsv")
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
cores = sum(1 for l in open("/proc/cpuinfo") if l.startswith("processor"))
median = lambda name, key: statistics.median(r[key] for r in throughput[name]) if name in throughput else None
count = lambda v: f"{v:,.0f}"
whole = lambda v: f"{v:.0f}"

lines = [
    "# Benchmark suite: the auth path against HAProxy and nginx",
    "",
    f"Written by `{command}` on {time.strftime('%Y-%m-%d')}. Machine: {cores} cores ({cpu}), Linux {platform.release()}.",
    f"Peers: {version(['haproxy', '-v'])}; {version(['nginx', '-v'])}; load: {version(['wrk', '-v'])}, oha 1.16.0.",
    "",
    "## Throughput",
    "",
    "Rows without a thread count: every proxy runs one thread pinned to core 0; wrk (one thread, 32",
    "connections) and the upstream (nginx, one worker, a small JSON answer) share core 1. Rows with",
    "2 threads: the proxy may use both cores, which it shares with wrk and the upstream. Each figure",
    "is the median of the rounds, which alternate between scenarios, with min–max in brackets.",
    "Latency is wrk's, in µs. CPU is the proxy's user + system time per 10 000 requests; RSS its",
    "peak resident memory.",
    "",
    "| scenario | req/s | p50 µs | p99 µs | p99.9 µs | CPU s / 10k | peak RSS MiB | errors |",
    "|---|---|---|---|---|---|---|---|",
]
if True:
    for name, runs in throughput.items():
        lines.append("| {} | {} | {} | {} | {} | {} | {} | {} |".format(
            name,
            spread([r["rps"] for r in runs], count),
            spread([r["p50"] for r in runs], whole),
            spread([r["p99"] for r in runs], whole),
            spread([r["p999"] for r in runs], whole),
            "—" if name == "direct" else spread([r["cpu_per_10k"] for r in runs], lambda v: f"{v:.2f}"),
            "—" if name == "direct" else spread([r["rss_mib"] for r in runs], lambda v: f"{v:.1f}"),
            sum(r["errors"] for r in runs),
        ))

# The charts' data (bench/chart.gp): each group is a peer doing the same job, then portcullis.
CHART_GROUPS = {
    1: [("no auth / HAProxy", "haproxy", "portcullis anonymous"),
        ("no auth / nginx", "nginx proxy_pass", "portcullis anonymous"),
        ("shared key / HAProxy ACL", "haproxy key ACL", "portcullis shared key"),
        ("shared key, per-request / HAProxy ACL", "haproxy key ACL", "portcullis shared key, per-request"),
        ("RS256 cached / HAProxy", "haproxy jwt_verify RS256", "portcullis JWT RS256 cached"),
        ("RS256 uncached / HAProxy", "haproxy jwt_verify RS256", "portcullis JWT RS256 uncached"),
        ("ES256 cached / HAProxy", "haproxy jwt_verify ES256", "portcullis JWT ES256 cached"),
        ("ES256 uncached / HAProxy", "haproxy jwt_verify ES256", "portcullis JWT ES256 uncached")],
    2: [("no auth / HAProxy", "haproxy, 2 threads", "portcullis anonymous, 2 threads"),
        ("no auth / nginx", "nginx proxy_pass, 2 threads", "portcullis anonymous, 2 threads"),
        ("shared key / HAProxy ACL", "haproxy key ACL, 2 threads", "portcullis shared key, 2 threads"),
        ("RS256 cached / HAProxy", "haproxy jwt_verify RS256, 2 threads", "portcullis JWT RS256 cached, 2 threads"),
        ("RS256 uncached / HAProxy", "haproxy jwt_verify RS256, 2 threads", "portcullis JWT RS256 uncached, 2 threads")],
}
for threads, groups in CHART_GROUPS.items():
    with open(os.path.join(work, f"chart-{threads}.dat"), "w") as data:
        for label, peer, ours in groups:
            a, b = median(ours, "rps") or 0, median(peer, "rps") or 0
            data.write(f'"{label}" {b:.0f} {a:.0f} {a / b if b else 0:.2f}\n')

lines += ["", "### Ratios (median req/s)", "", "| comparison | ratio | target | |", "|---|---|---|---|"]
for label, ours, theirs, target in [
    ("no auth: portcullis / HAProxy", "portcullis anonymous", "haproxy", "≥ 1.0"),
    ("no auth: portcullis / nginx direct", "portcullis anonymous", "direct", "≥ 0.5"),
    ("shared key: portcullis / HAProxy ACL", "portcullis shared key", "haproxy key ACL", "≥ 1.0"),
    ("JWT RS256 cached: portcullis / HAProxy jwt_verify", "portcullis JWT RS256 cached", "haproxy jwt_verify RS256", "≥ 1.3"),
    ("JWT RS256 uncached: portcullis / HAProxy jwt_verify", "portcullis JWT RS256 uncached", "haproxy jwt_verify RS256", "≥ 0.8"),
    ("JWT ES256 cached: portcullis / HAProxy jwt_verify", "portcullis JWT ES256 cached", "haproxy jwt_verify ES256", "≥ 1.3"),
    ("JWT ES256 uncached: portcullis / HAProxy jwt_verify", "portcullis JWT ES256 uncached", "haproxy jwt_verify ES256", "≥ 1.0"),
    ("per-request / pooled isolation (shared key)", "portcullis shared key, per-request", "portcullis shared key", ""),
    ("2 threads, no auth: portcullis / HAProxy", "portcullis anonymous, 2 threads", "haproxy, 2 threads", "≥ 1.0"),
    ("2 threads, shared key: portcullis / HAProxy ACL", "portcullis shared key, 2 threads", "haproxy key ACL, 2 threads", "≥ 1.0"),
    ("2 threads, JWT RS256 cached: portcullis / HAProxy", "portcullis JWT RS256 cached, 2 threads", "haproxy jwt_verify RS256, 2 threads", "≥ 1.0"),
    ("2 threads, JWT RS256 uncached: portcullis / HAProxy", "portcullis JWT RS256 uncached, 2 threads", "haproxy jwt_verify RS256, 2 threads", "≥ 0.8"),
]:
    a, b = median(ours, "rps") or 0, median(theirs, "rps")
    if b:
        lines.append(f"| {label} | {a / b:.2f}× | {target} | {verdict(label, a / b, target) if target else ''} |")
# CPU per request against HAProxy's on the same path (lower is better).
for label, ours, theirs in [
    ("CPU per 10k, no auth: portcullis / HAProxy", "portcullis anonymous", "haproxy"),
    ("CPU per 10k, shared key: portcullis / HAProxy ACL", "portcullis shared key", "haproxy key ACL"),
]:
    a, b = median(ours, "cpu_per_10k"), median(theirs, "cpu_per_10k")
    if a is not None and b:
        lines.append(f"| {label} | {a / b:.2f}× | ≤ 1.1 | {verdict(label, a / b, '≤ 1.1')} |")

lines += [
    "", "## Latency at a fixed rate", "",
    "oha (32 connections, core 1) sends at a fixed rate, with its coordinated-omission correction:",
    "a late answer also delays the requests queued behind it. One proxy thread on core 0. Latency in µs.",
    "", "| scenario | achieved req/s | p50 µs | p99 µs | p99.9 µs | errors |", "|---|---|---|---|---|---|",
]
for name, runs in rated.items():
    lines.append("| {} | {} | {} | {} | {} | {} |".format(
        name, spread([r["rps"] for r in runs], count), spread([r["p50"] for r in runs], whole),
        spread([r["p99"] for r in runs], whole), spread([r["p999"] for r in runs], whole), sum(r["errors"] for r in runs)))
p99 = lambda name: statistics.median(r["p99"] for r in rated[name]) if name in rated else None
p50 = lambda name: statistics.median(r["p50"] for r in rated[name]) if name in rated else None
with open(os.path.join(work, "latency.dat"), "w") as data:
    for rate in sorted({name.rsplit(" at ", 1)[1] for name in rated}, key=lambda r: int(r.split()[0])):
        for label, ours, theirs in (("shared key", "portcullis shared key", "haproxy key ACL"), ("JWT RS256 cached", "portcullis JWT RS256 cached", "haproxy jwt_verify RS256")):
            values = [f(f"{n} at {rate}") or 0 for n in (theirs, ours) for f in (p50, p99)]
            data.write(f'"{label} at {rate}" ' + " ".join(f"{v:.0f}" for v in values) + "\n")
for rate in sorted({name.rsplit(" at ", 1)[1] for name in rated}, key=lambda r: int(r.split()[0])):
    for ours, theirs in (("portcullis shared key", "haproxy key ACL"), ("portcullis JWT RS256 cached", "haproxy jwt_verify RS256")):
        a, b = p99(f"{ours} at {rate}"), p99(f"{theirs} at {rate}")
        if a is None and b:
            misses.append(f"p99 at {rate}, {ours}: no result")
        elif a is not None and b:
            label = f"p99 at {rate}, {ours} / {theirs}"
            lines.append(f"\n{label}: **{a / b:.2f}×** (target ≤ 1.2: {verdict(label, a / b, '≤ 1.2')}).")

mcp = {}
for line in open(os.path.join(work, "mcp.tsv")):
    target, _round, data = line.rstrip("\n").split("\t")
    mcp.setdefault(target, []).append(json.loads(data))
if mcp:
    lines += [
        "", "## MCP tools/call", "",
        "`@modelcontextprotocol/server-everything` (Streamable HTTP) directly, and behind an OIDC workload",
        "(`builtin:oidc-verifier`, RS256, token cache on; the workload reads every MCP message). One client",
        "(the official TypeScript SDK, `tests/node/mcp-latency.mjs`) sends `echo` calls back to back on core 1;",
        "the gateway has one thread on core 0. Latency in µs, the median of the rounds.",
        "", "| path | p50 µs | p99 µs | mean µs |", "|---|---|---|---|",
    ]
    for target, runs in mcp.items():
        lines.append(f"| {target} | {spread([r['p50'] for r in runs], whole)} | {spread([r['p99'] for r in runs], whole)} | {spread([r['mean'] for r in runs], whole)} |")
    if "direct" in mcp and "portcullis" in mcp:
        added = statistics.median(r["p50"] for r in mcp["portcullis"]) - statistics.median(r["p50"] for r in mcp["direct"])
        # `+ 0.0` turns a rounded -0.0 into 0.0.
        added_ms = round(added / 1000, 2) + 0.0
        lines.append(f"\nAdded by the gateway at p50: **{added_ms:.2f} ms** (target ≤ 0.1 ms: {verdict('MCP tools/call added at p50, ms', added_ms, '≤ 0.1')}).")

startup = [json.loads(l) for l in open(os.path.join(work, "startup.tsv")) if l.strip()]
if startup:
    lines += [
        "", "## Start-up and memory", "",
        "Workloads cycle through shared key, OIDC (static key set) and anonymous. Start: process start to",
        "the first 200 answer, with the component cache emptied (cold) and as the cold start left it (warm).",
        "Idle RSS 2 s after the warm start, and its anonymous part (the rest is pages of the binary itself,",
        "clean and file-backed: shared and reclaimable); under load, every workload at once under wrk (4 connections",
        "each, 5 s): the peak and the RSS after. One run, nothing pinned, the gateway with its default threads.",
        "", "| workloads | cold start ms | warm start ms | idle RSS MiB | idle anonymous MiB | peak RSS under load MiB | RSS after load MiB |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in startup:
        lines.append(f"| {r['workloads']} | {r['cold_ms']:.0f} | {r['warm_ms']:.0f} | {r['idle_rss_mib']:.1f} | {r['idle_anon_mib']:.1f} | {r['load_peak_rss_mib']:.1f} | {r['load_rss_mib']:.1f} |")
    lines.append("")
    for r in startup:
        n = r["workloads"]
        lines.append(f"- {n} workloads: warm start ≤ 200 ms: {verdict(f'warm start, {n} workloads, ms', r['warm_ms'], '≤ 200')}; "
                     f"peak RSS under load ≤ 40 MiB: {verdict(f'peak RSS under load, {n} workloads, MiB', r['load_peak_rss_mib'], '≤ 40')}"
                     + (f"; idle RSS ≤ 20 MiB: {verdict('idle RSS, 3 workloads, MiB', r['idle_rss_mib'], '≤ 20')}" if n == 3 else ""))

for name, runs in list(throughput.items()) + [(f"{n} (fixed rate)", r) for n, r in rated.items()]:
    errors = sum(r["errors"] for r in runs)
    if errors:
        errored.append(f"{name}: {errors}")

lines += ["", "![requests per second, Portcullis beside its peer](benchmarks-suite.png)", "",
          "![latency at fixed rates, p50 and p99](benchmarks-latency.png)", "", "## Verdict", ""]
if errored:
    lines += ["**This run is not valid**: these scenarios answered errors (socket errors, timeouts, or statuses",
              "above 399), so their figures are not of the path they name:", ""] + [f"- {e}" for e in errored] + [""]
if misses:
    lines += [f"**{len(misses)} target(s) missed:**", ""] + [f"- {m}" for m in misses] + [""]
if not errored and not misses:
    lines += ["Every target met; no scenario answered an error.", ""]
open(out_md, "w").write("\n".join(lines))
if errored:
    print("scenarios answered errors (the run is not valid):\n  " + "\n  ".join(errored), file=sys.stderr)
if misses:
    print("targets missed:\n  " + "\n  ".join(misses), file=sys.stderr)
sys.exit(4 if errored else 3 if misses else 0)
