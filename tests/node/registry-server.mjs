#!/usr/bin/env node
// A stand-in private MCP registry for Portcullis "registry-token" tests: every request must carry a
// Bearer access token, which is checked by RFC 7662 introspection at the issuer (registry-idp.mjs).
//
// Usage:   node registry-server.mjs <port> <issuer>
//          Port 0 is allowed: the OS picks a free port; the READY line tells you which.
//          <issuer> e.g. http://127.0.0.1:<idp port>; the introspection endpoint is taken from
//          <issuer>/.well-known/openid-configuration (fetched at startup, before READY).
// Binds:   127.0.0.1 only.
//
// For EVERY request (any method, any path):
//   `Authorization: Bearer <token>` is introspected with client registry-server / registry-secret
//   (client_secret_basic). The token counts as valid when introspection says active:true and it is an
//   access token (token_type "Bearer"; refresh tokens are rejected).
//   valid   -> 200 application/json
//              {"servers":[{"name":"io.example/hello","version":"1.0.0"}],"path":<request path incl.
//               query>,"sub":<introspected sub>,"client_id":<introspected client_id>,
//               "aud":<introspected aud or null>,"scope":<introspected scope or null>}
//   missing/invalid/inactive token
//           -> 401, `WWW-Authenticate: Bearer error="invalid_token"`, body {"error":"invalid_token"}
//   introspection itself failed (IdP down, non-200) -> 502 {"error":"introspection_failed"}
//
// stdout protocol (one line each):
//   READY <port>              once listening
//   REQUEST <path> <status>   after each request has been answered (<path> includes the query string)
// Tokens are never printed. Diagnostics go to stderr.

import http from "node:http";
import readline from "node:readline";

const [portArg, issuerArg] = process.argv.slice(2);
if (
  portArg === undefined ||
  !/^\d+$/.test(portArg) ||
  Number(portArg) > 65535 ||
  issuerArg === undefined ||
  !URL.canParse(issuerArg) ||
  process.argv.length !== 4
) {
  console.error("usage: node registry-server.mjs <port> <issuer>");
  process.exit(2);
}
const HOST = "127.0.0.1";
const CLIENT_ID = "registry-server";
const CLIENT_SECRET = "registry-secret";
const issuer = issuerArg.replace(/\/+$/, "");

async function discover() {
  const url = `${issuer}/.well-known/openid-configuration`;
  let lastErr;
  for (let attempt = 0; attempt < 20; attempt++) {
    try {
      const res = await fetch(url);
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      const meta = await res.json();
      if (!meta.introspection_endpoint) throw new Error("no introspection_endpoint in discovery document");
      return meta.introspection_endpoint;
    } catch (err) {
      lastErr = err;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
  throw new Error(`discovery at ${url} failed: ${lastErr?.message}`);
}

let introspectionEndpoint;
try {
  introspectionEndpoint = await discover();
} catch (err) {
  console.error(`registry-server: ${err.message}`);
  process.exit(1);
}
console.error(`registry-server: introspection endpoint ${introspectionEndpoint}`);

const basic = Buffer.from(`${encodeURIComponent(CLIENT_ID)}:${encodeURIComponent(CLIENT_SECRET)}`).toString(
  "base64",
);

async function introspect(token) {
  const res = await fetch(introspectionEndpoint, {
    method: "POST",
    headers: {
      authorization: `Basic ${basic}`,
      "content-type": "application/x-www-form-urlencoded",
      accept: "application/json",
    },
    body: new URLSearchParams({ token, token_type_hint: "access_token" }).toString(),
  });
  if (!res.ok) throw new Error(`introspection HTTP ${res.status}`);
  return res.json();
}

function send(res, status, body, headers = {}) {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(text),
    "cache-control": "no-store",
    ...headers,
  });
  res.end(text);
}

function unauthorized(res) {
  send(res, 401, { error: "invalid_token" }, { "www-authenticate": 'Bearer error="invalid_token"' });
}

async function handle(req, res) {
  req.resume(); // ignore any request body
  const path = req.url;
  const match = /^Bearer +(\S+) *$/i.exec(req.headers.authorization ?? "");
  if (!match) return unauthorized(res);

  let info;
  try {
    info = await introspect(match[1]);
  } catch (err) {
    console.error(`registry-server: ${err.message}`);
    return send(res, 502, { error: "introspection_failed" });
  }
  if (info?.active !== true || info.token_type !== "Bearer") {
    console.error(`registry-server: token rejected (active=${info?.active}, token_type=${info?.token_type})`);
    return unauthorized(res);
  }
  return send(res, 200, {
    servers: [{ name: "io.example/hello", version: "1.0.0" }],
    path,
    sub: info.sub ?? null,
    client_id: info.client_id ?? null,
    aud: info.aud ?? null,
    scope: info.scope ?? null,
  });
}

const server = http.createServer((req, res) => {
  res.on("finish", () => process.stdout.write(`REQUEST ${req.url} ${res.statusCode}\n`));
  handle(req, res).catch((err) => {
    console.error("registry-server: request failed:", err);
    if (!res.headersSent) send(res, 500, { error: "server_error" });
    else res.end();
  });
});
server.on("error", (err) => {
  console.error("registry-server: listen error:", err.message);
  process.exit(1);
});
await new Promise((resolve) => server.listen(Number(portArg), HOST, resolve));
const { port } = server.address();
process.stdout.write(`READY ${port}\n`);

// Same conventions as the other helpers: stdin `quit` exits, EOF is ignored.
readline.createInterface({ input: process.stdin, terminal: false }).on("line", (line) => {
  if (line.trim() === "quit") process.exit(0);
});
process.on("SIGTERM", () => process.exit(0));
process.on("SIGINT", () => process.exit(0));
