"""The soak behind bench/soak (which installs what it needs and builds the binary).

usage: soak.py PORTCULLIS OHA OUT.md
env:   SOAK_SECONDS (600), RATE (1000 req/s per workload), RELOAD_EVERY (60 s), RELOADS (100)

1. Reloads: a fresh gateway, warmed by a few requests, reloaded RELOADS times
   by SIGHUP (each one waited for), a few requests after each; RSS before the
   first and after each.
2. Soak: oha at RATE on each workload for SOAK_SECONDS, a SIGHUP every
   RELOAD_EVERY seconds, RSS and open descriptors sampled every 5 s.
Exits 1 when a criterion fails; the figures go to OUT.md either way.
"""
import http.client, json, os, shutil, signal, statistics, subprocess, sys, tempfile, time

BIN, OHA, OUT = sys.argv[1:4]
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SOAK = int(os.environ.get("SOAK_SECONDS", 600))
RATE = int(os.environ.get("RATE", 1000))
RELOAD_EVERY = int(os.environ.get("RELOAD_EVERY", 60))
RELOADS = int(os.environ.get("RELOADS", 100))
# Open descriptors move by a few with the connections in flight or idle in
# the upstream pool; more than this is growth.
FD_NOISE = 8
UPSTREAM, KEY_PORT, OIDC_PORT = 18280, 18283, 18284
KEY = "kW3x0Q4bq0m1pS0uS6oXgk7l0tJc9yQ2p3bTn1VnE8A"

work = tempfile.mkdtemp(prefix="portcullis-soak-")
env = dict(os.environ, PORTCULLIS_HOME=f"{work}/home", PORTCULLIS_SECRETS_PASSWORD="soak", RUST_LOG="info")
children = []
# A SIGTERM ends the script through its cleanup, as an exception would.
signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))


def spawn(args, **kwargs):
    child = subprocess.Popen(args, env=env, **kwargs)
    children.append(child)
    return child


def cleanup():
    for child in children:
        if child.poll() is None:
            child.terminate()
    for child in children:
        try:
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            child.kill()


def run(args, **kwargs):
    subprocess.run(args, env=env, check=True, capture_output=True, **kwargs)


# --- the upstream, keys, the policy -------------------------------------------
os.makedirs(f"{work}/nginx")
open(f"{work}/nginx/nginx.conf", "w").write(f"""worker_processes 1;
daemon off;
pid {work}/nginx/nginx.pid;
error_log {work}/nginx/error.log crit;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  server {{
    listen 127.0.0.1:{UPSTREAM} reuseport backlog=4096;
    keepalive_requests 1000000;
    location / {{ default_type application/json; return 200 "{{\\"jsonrpc\\":\\"2.0\\",\\"id\\":1,\\"result\\":{{}}}}"; }}
  }}
}}
""")
for kind, args in (("rs", ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"]), ("es", ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"])):
    run(["openssl", "genpkey", *args, "-out", f"{work}/{kind}.key"])
    run(["openssl", "pkey", "-in", f"{work}/{kind}.key", "-pubout", "-out", f"{work}/{kind}.pub"])
run(["python3", f"{ROOT}/bench/jwt.py", work, f"http://127.0.0.1:{OIDC_PORT}/mcp"])
TOKEN = open(f"{work}/token-RS256").read()
policy = f"{work}/policy.toml"
open(policy, "w").write(f"""version = 1
[[workloads]]
name = "key"
listen = "127.0.0.1:{KEY_PORT}"
upstream = "http://127.0.0.1:{UPSTREAM}"
public_url = "http://127.0.0.1:{KEY_PORT}/mcp"
  [[workloads.inbound]]
  component = "builtin:shared-key"
  grants = {{ secrets = ["workload:key:shared-key"] }}
[[workloads]]
name = "oidc"
listen = "127.0.0.1:{OIDC_PORT}"
upstream = "http://127.0.0.1:{UPSTREAM}"
public_url = "http://127.0.0.1:{OIDC_PORT}/mcp"
  [[workloads.inbound]]
  component = "builtin:oidc-verifier"
  [workloads.inbound.config]
  issuer = "https://issuer.bench"
  jwks_file = "{work}/jwks.json"
  algorithms = ["RS256"]
""")
run([BIN, "secrets", "set", "workload:key:shared-key"], input=KEY.encode())
TARGETS = [(KEY_PORT, "x-portcullis-key", KEY), (OIDC_PORT, "authorization", f"Bearer {TOKEN}")]


def request(port, name, value):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    conn.request("GET", "/mcp", headers={name: value})
    status = conn.getresponse().status
    conn.close()
    return status


def status_field(pid, field):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(field):
            return int(line.split()[1]) / 1024
    return 0.0


def fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


log_path = f"{work}/gateway.log"


def reloads_done():
    return open(log_path, errors="replace").read().count("policy reloaded")


def reload(gateway, timeout=15):
    before = reloads_done()
    gateway.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + timeout
    while reloads_done() == before:
        if time.monotonic() > deadline or gateway.poll() is not None:
            raise SystemExit("a reload did not complete; see " + log_path)
        time.sleep(0.01)


try:
    spawn(["nginx", "-c", f"{work}/nginx/nginx.conf", "-p", f"{work}/nginx"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    gateway = spawn([BIN, "run", "--policy", policy], stdout=subprocess.DEVNULL, stderr=open(log_path, "w"))
    deadline = time.monotonic() + 30
    while True:
        try:
            if all(request(*t) == 200 for t in TARGETS):
                break
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit("the gateway did not start; see " + log_path)
        time.sleep(0.05)

    # --- 1. reloads back to back ------------------------------------------------
    failures = 0
    for _ in range(100):
        failures += sum(request(*t) != 200 for t in TARGETS)
    time.sleep(1)
    rss_before, fds_before = status_field(gateway.pid, "VmRSS"), fds(gateway.pid)
    reload_rss = []
    for _ in range(RELOADS):
        reload(gateway)
        for _ in range(5):
            failures += sum(request(*t) != 200 for t in TARGETS)
        reload_rss.append(status_field(gateway.pid, "VmRSS"))
    fds_reloaded = fds(gateway.pid)
    tail = reload_rss[len(reload_rss) // 2:]
    # Least-squares slope over the second half, in MiB per reload.
    xs = range(len(tail))
    mean_x, mean_y = statistics.mean(xs), statistics.mean(tail)
    slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, tail)) / max(sum((x - mean_x) ** 2 for x in xs), 1)
    print(f"reloads: RSS {rss_before:.1f} MiB before, {reload_rss[-1]:.1f} after {RELOADS} (max {max(reload_rss):.1f}), "
          f"slope {slope:+.3f} MiB/reload, {failures} failed requests", flush=True)

    # --- 2. the soak ---------------------------------------------------------------
    loads = [
        spawn([OHA, "-z", f"{SOAK}s", "-w", "-q", str(RATE), "-c", "16", "--latency-correction", "--no-tui", "--output-format", "json",
               "-H", f"{name}: {value}", f"http://127.0.0.1:{port}/mcp"], stdout=open(f"{work}/oha-{port}.json", "w"))
        for port, name, value in TARGETS
    ]
    start, samples, next_reload, soak_reloads = time.monotonic(), [], RELOAD_EVERY, 0
    while any(load.poll() is None for load in loads):
        elapsed = time.monotonic() - start
        samples.append((elapsed, status_field(gateway.pid, "VmRSS"), fds(gateway.pid)))
        if elapsed >= next_reload and elapsed < SOAK - 5:
            reload(gateway)
            soak_reloads += 1
            next_reload += RELOAD_EVERY
        time.sleep(5)
    idle_fds = fds(gateway.pid)
    results = []
    for (port, _, _), load in zip(TARGETS, loads):
        report = json.load(open(f"{work}/oha-{port}.json"))
        codes = report.get("statusCodeDistribution") or {}
        errors = sum((report.get("errorDistribution") or {}).values()) + sum(n for c, n in codes.items() if c != "200")
        p = report["latencyPercentiles"]
        results.append({"port": port, "requests": sum(codes.values()), "errors": errors, "p50": p["p50"] * 1e3, "p99": p["p99"] * 1e3, "p999": p["p99.9"] * 1e3})
    warm_up = min(60, SOAK // 5)
    after = [s for s in samples if s[0] >= warm_up]
    rss_warm = statistics.median(s[1] for s in after[:3])
    rss_end = statistics.median(s[1] for s in after[-3:])
    # Under load, a leak shows as the highest count of the last third above
    # that of the first by more than the noise. Too short a run cannot tell.
    if len(after) < 6:
        raise SystemExit(f"{len(after)} samples after warm-up: run the soak for longer (SOAK_SECONDS)")
    third = len(after) // 3
    fd_warm, fd_end = max(s[2] for s in after[:third]), max(s[2] for s in after[-third:])
    growth = (rss_end - rss_warm) / rss_warm
finally:
    cleanup()
# The work directory holds a secret store and keys; it stays only when a step
# failed above, for its gateway log.
shutil.rmtree(work, ignore_errors=True)

checks = [
    ("no failed request", failures == 0 and all(r["errors"] == 0 for r in results)),
    ("RSS growth after warm-up under 5 %", growth < 0.05),
    (f"no growth in open descriptors (more than {FD_NOISE}) over the reloads and under load", fds_reloaded <= fds_before + FD_NOISE and fd_end <= fd_warm + FD_NOISE),
    (f"RSS after {RELOADS} reloads within 1.3x of before the first", reload_rss[-1] <= 1.3 * rss_before),
]
names = {KEY_PORT: "shared key", OIDC_PORT: "OIDC (RS256, token cache on)"}
lines = [
    "# Soak",
    "",
    f"Written by `SOAK_SECONDS={SOAK} RATE={RATE} RELOAD_EVERY={RELOAD_EVERY} RELOADS={RELOADS} bench/soak` on {time.strftime('%Y-%m-%d')}: "
    "the release binary, nginx as the upstream, oha as the load (fixed rate, 16 connections per workload), all on loopback.",
    "",
    "## Reloads back to back",
    "",
    f"{RELOADS} reloads by SIGHUP, each waited for, with 10 requests after each. RSS {rss_before:.1f} MiB before the first, "
    f"{reload_rss[-1]:.1f} MiB after the last ({reload_rss[-1] / rss_before:.2f}×; the highest {max(reload_rss):.1f} MiB); "
    f"over the second half the trend is {slope:+.3f} MiB per reload. Open descriptors {fds_before} before, {fds_reloaded} after.",
    "",
    "## Soak",
    "",
    f"{SOAK} s at {RATE} req/s on each workload, {soak_reloads} reloads (one every {RELOAD_EVERY} s).",
    "",
    "| workload | requests | errors | p50 ms | p99 ms | p99.9 ms |",
    "|---|---|---|---|---|---|",
    *[f"| {names[r['port']]} | {r['requests']:,} | {r['errors']} | {r['p50']:.2f} | {r['p99']:.2f} | {r['p999']:.2f} |" for r in results],
    "",
    f"RSS after {warm_up} s of warm-up {rss_warm:.1f} MiB, at the end {rss_end:.1f} MiB ({growth * 100:+.1f} %). "
    f"Open descriptors under load, the highest count: {fd_warm} in the first third after warm-up, {fd_end} in the last; {idle_fds} once the load stopped.",
    "",
    "| criterion | result |",
    "|---|---|",
    *[f"| {name} | {'pass' if ok else '**fail**'} |" for name, ok in checks],
    "",
]
open(OUT, "w").write("\n".join(lines))
print("\n".join(lines))
sys.exit(0 if all(ok for _, ok in checks) else 1)
