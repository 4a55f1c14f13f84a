"""Start-up time and memory with 1, 3 and 10 workloads (bench/run's scenario 6).

usage: startup.py BIN WORK UPSTREAM_PORT FIRST_PORT KEY TOKEN AUDIENCE  ->  one `RESULT {...}` line per workload count

The workloads cycle through builtin:shared-key, builtin:oidc-verifier (the static
key set of WORK/jwks.json) and an anonymous one, each on its own port from
FIRST_PORT. For each count:
- cold start: the component cache emptied, process start to the first 200 answer;
- warm start: the same with the cache left by the cold start;
- idle RSS: 2 s after the warm start, and its anonymous part (the rest is the
  binary's own pages, clean and file-backed);
- RSS under load: every workload under wrk (4 connections each, 5 s) at once,
  then the peak (VmHWM) and the RSS after the load.
"""
import atexit, http.client, json, os, shutil, signal, subprocess, sys, time

BIN, WORK, UPSTREAM, FIRST_PORT, KEY, TOKEN, AUDIENCE = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5], sys.argv[6], sys.argv[7]
KINDS = ["shared-key", "oidc", "anonymous"]
HOME = os.environ["PORTCULLIS_HOME"]
children = []
# A SIGTERM ends the script through its cleanup, as an exception would.
signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))


def spawn(args, **kwargs):
    child = subprocess.Popen(args, **kwargs)
    children.append(child)
    return child


@atexit.register
def cleanup():
    """Stops every gateway and wrk still running, also when a step failed."""
    for child in children:
        if child.poll() is None:
            child.kill()
            child.wait()


def workload(i):
    kind, port = KINDS[i % 3], FIRST_PORT + i
    entry = {
        "shared-key": f'''  [[workloads.inbound]]
  component = "builtin:shared-key"
  grants = {{ secrets = ["workload:w{i}:shared-key"] }}''',
        "oidc": f'''  [[workloads.inbound]]
  component = "builtin:oidc-verifier"
  [workloads.inbound.config]
  issuer = "https://issuer.bench"
  jwks_file = "{WORK}/jwks.json"
  algorithms = ["RS256", "ES256"]
  audiences = ["{AUDIENCE}"]''',
        "anonymous": "anonymous = true",
    }[kind]
    header = {"shared-key": ("x-portcullis-key", KEY), "oidc": ("authorization", f"Bearer {TOKEN}"), "anonymous": None}[kind]
    text = f'''[[workloads]]
name = "w{i}"
listen = "127.0.0.1:{port}"
upstream = "http://127.0.0.1:{UPSTREAM}"
public_url = "http://127.0.0.1:{port}/mcp"
{entry}
'''
    return text, port, header, kind


def served(port, header):
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
        conn.request("GET", "/mcp", headers=dict([header]) if header else {})
        ok = conn.getresponse().status == 200
        conn.close()
        return ok
    except OSError:
        return False


def start(policy, port, header):
    begin = time.monotonic()
    env = dict(os.environ, RUST_LOG="error")
    proc = spawn([BIN, "run", "--policy", policy], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while not served(port, header):
        if proc.poll() is not None or time.monotonic() - begin > 60:
            raise SystemExit(f"portcullis did not serve {policy}")
        time.sleep(0.001)
    return proc, (time.monotonic() - begin) * 1000


def status(proc, field):
    for line in open(f"/proc/{proc.pid}/status"):
        if line.startswith(field):
            return int(line.split()[1]) / 1024
    return 0.0


def stop(proc):
    proc.terminate()
    proc.wait(timeout=30)


for count in (1, 3, 10):
    workloads = [workload(i) for i in range(count)]
    for i, (_, _, _, kind) in enumerate(workloads):
        if kind == "shared-key":
            subprocess.run([BIN, "secrets", "set", f"workload:w{i}:shared-key"], input=KEY.encode(), check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    policy = f"{WORK}/startup-{count}.toml"
    open(policy, "w").write("version = 1\n" + "\n".join(w[0] for w in workloads))
    _, port, header, _ = workloads[0]
    shutil.rmtree(f"{HOME}/cache/components", ignore_errors=True)
    proc, cold_ms = start(policy, port, header)
    stop(proc)
    proc, warm_ms = start(policy, port, header)
    time.sleep(2)
    idle, idle_anon = status(proc, "VmRSS"), status(proc, "RssAnon")
    loads = [
        spawn(["wrk", "-t1", "-c4", "-d5s"] + (["-H", f"{h[0]}: {h[1]}"] if h else []) + [f"http://127.0.0.1:{p}/mcp"], stdout=subprocess.DEVNULL)
        for _, p, h, _ in workloads
    ]
    for load in loads:
        load.wait()
    peak, after = status(proc, "VmHWM"), status(proc, "VmRSS")
    stop(proc)
    print("RESULT " + json.dumps({"workloads": count, "cold_ms": round(cold_ms, 1), "warm_ms": round(warm_ms, 1),
                                  "idle_rss_mib": round(idle, 1), "idle_anon_mib": round(idle_anon, 1), "load_peak_rss_mib": round(peak, 1), "load_rss_mib": round(after, 1)}), flush=True)
