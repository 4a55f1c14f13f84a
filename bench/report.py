"""Turns bench/run's results into docs/benchmarks-suite.md and gnuplot's data file.

usage: report.py RESULTS.tsv CLK_TCK OUT.md CHART.dat COMMAND
"""
import json, platform, statistics, subprocess, sys, time

results, clk_tck, out_md, chart, command = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
rows = {}
for line in open(results):
    name, _round, data, ticks, rss = line.rstrip("\n").split("\t")
    data = json.loads(data)
    data["cpu_per_10k"] = (int(ticks) / clk_tck) / max(data["requests"], 1) * 10_000
    data["rss_mib"] = int(rss) / 1024
    rows.setdefault(name, []).append(data)

def spread(values, fmt):
    med, lo, hi = statistics.median(values), min(values), max(values)
    return f"{fmt(med)} ({fmt(lo)}–{fmt(hi)})" if len(values) > 1 else fmt(med)

def version(cmd):
    try:
        text = subprocess.run(cmd, capture_output=True, text=True).stdout + subprocess.run(cmd, capture_output=True, text=True).stderr
        return text.strip().splitlines()[0]
    except Exception:
        return "?"

cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
cores = sum(1 for l in open("/proc/cpuinfo") if l.startswith("processor"))
median = lambda name, key: statistics.median(r[key] for r in rows[name]) if name in rows else None

lines = [
    "# Benchmark suite: the auth path against HAProxy and nginx",
    "",
    f"Written by `{command}` on {time.strftime('%Y-%m-%d')}. Machine: {cores} cores ({cpu}), Linux {platform.release()}.",
    f"Peers: {version(['haproxy', '-v'])}; {version(['nginx', '-v'])}; load: {version(['wrk', '-v'])}.",
    "",
    "Every proxy runs one thread pinned to core 0; wrk (one thread, 32 connections) and the upstream",
    "(nginx, one worker, a small JSON answer) share core 1. Each figure is the median of the rounds,",
    "which alternate between scenarios, with min–max in brackets. Latency is wrk's, in µs. CPU is the",
    "proxy's user + system time per 10 000 requests; RSS its peak resident memory.",
    "",
    "| scenario | req/s | p50 µs | p99 µs | p99.9 µs | CPU s / 10k | peak RSS MiB | errors |",
    "|---|---|---|---|---|---|---|---|",
]
with open(chart, "w") as data:
    for name, runs in rows.items():
        lines.append("| {} | {} | {} | {} | {} | {} | {} | {} |".format(
            name,
            spread([r["rps"] for r in runs], lambda v: f"{v:,.0f}"),
            spread([r["p50"] for r in runs], lambda v: f"{v:.0f}"),
            spread([r["p99"] for r in runs], lambda v: f"{v:.0f}"),
            spread([r["p999"] for r in runs], lambda v: f"{v:.0f}"),
            "—" if name == "direct" else spread([r["cpu_per_10k"] for r in runs], lambda v: f"{v:.2f}"),
            "—" if name == "direct" else spread([r["rss_mib"] for r in runs], lambda v: f"{v:.1f}"),
            sum(r["errors"] for r in runs),
        ))
        rps = [r["rps"] for r in runs]
        data.write(f'"{name}" {statistics.median(rps):.0f} {min(rps):.0f} {max(rps):.0f}\n')

lines += ["", "## Ratios (median req/s)", "", "| comparison | ratio | target |", "|---|---|---|"]
for label, ours, theirs, target in [
    ("no auth: portcullis / HAProxy", "portcullis anonymous", "haproxy", "≥ 1.0"),
    ("no auth: portcullis / nginx direct", "portcullis anonymous", "direct", "≥ 0.5"),
    ("shared key: portcullis / HAProxy ACL", "portcullis shared key", "haproxy key ACL", "≥ 1.0"),
    ("JWT cached: portcullis / HAProxy jwt_verify", "portcullis JWT RS256 cached", "haproxy jwt_verify RS256", "≥ 1.0"),
    ("JWT uncached: portcullis / HAProxy jwt_verify", "portcullis JWT RS256 uncached", "haproxy jwt_verify RS256", "≥ 0.8"),
    ("per-request / pooled isolation (shared key)", "portcullis shared key, per-request", "portcullis shared key", ""),
]:
    a, b = median(ours, "rps"), median(theirs, "rps")
    if a and b:
        lines.append(f"| {label} | {a / b:.2f}× | {target} |")
lines += ["", "![requests per second](benchmarks-suite.png)", ""]
open(out_md, "w").write("\n".join(lines))
