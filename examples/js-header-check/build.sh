#!/usr/bin/env bash
# Builds header-check.wasm, a Portcullis authenticator component written in
# JavaScript, with componentize-js (SpiderMonkey/StarlingMonkey + Wizer).
#
#   bash build.sh        # -> header-check.wasm
#
# The gateway links WASI 0.2 (cli, clocks, filesystem, io, random, sockets:
# linked, but with no files, sockets or environment granted) and
# portcullis:auth/*, but not wasi:http, so the engine's `fetch()` ("http")
# and incoming-request ("fetch-event") features are disabled: with them the
# component would import wasi:http and the gateway would refuse to link it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

npm ci --no-audit --no-fund

npx --no-install componentize-js src/header-check.js \
  --wit ../../wit \
  --world-name authenticator \
  --disable http fetch-event \
  --out header-check.wasm

ls -l header-check.wasm
