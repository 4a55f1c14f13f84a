"""oha's JSON report as the one-line result bench/report.lua gives for wrk (latencies in µs).

usage: oha_result.py OHA.json
Errors are failed requests plus answers other than 200.
"""
import json, sys

report = json.load(open(sys.argv[1]))
summary, percentiles = report["summary"], report["latencyPercentiles"]
codes = report.get("statusCodeDistribution") or {}
requests = sum(codes.values())
errors = sum((report.get("errorDistribution") or {}).values()) + sum(n for code, n in codes.items() if code != "200")
micros = lambda key: round((percentiles.get(key) or 0) * 1e6)
print(json.dumps({"requests": requests, "seconds": round(summary["total"], 3), "rps": round(requests / summary["total"], 1),
                  "p50": micros("p50"), "p99": micros("p99"), "p999": micros("p99.9"), "errors": errors}))
