#!/usr/bin/env node
// The OFFICIAL MCP TypeScript SDK client (`Client` + `StreamableHTTPClientTransport`) with an OAuth
// client provider of its own, the way an MCP client meets a protected MCP server for the first time:
// the 401's `WWW-Authenticate: Bearer resource_metadata=...` -> RFC 9728 protected resource metadata
// -> RFC 8414 authorization server metadata -> a client id (RFC 7591 dynamic registration, or a
// Client ID Metadata Document URL) -> authorization code + PKCE S256 + RFC 8707 `resource` (all done
// by the SDK's `auth()`) -> a login in a REAL headless Chromium (browser-login.mjs, which signs in at
// the company IdP the authorization server federates to and ends on our redirect URI) -> the code on
// our loopback redirect listener -> `finishAuth(code)` -> reconnect -> tools/list and tools/call.
//
// Usage:   node mcp-oauth-client.mjs <mcp-url> [--client-metadata-url URL] [--user NAME]
//                                              [--tool NAME] [--args JSON] [--scope SCOPE]
//          <mcp-url>               the MCP endpoint (through the gateway)
//          --client-metadata-url   offer this https URL as a Client ID Metadata Document client id
//                                  (the SDK uses it only when the server's metadata says
//                                  client_id_metadata_document_supported; else it registers)
//          --user NAME             who logs in at the IdP (default "alice")
//          --tool NAME --args JSON the tool to call after listing (default: none)
//          --refresh               then refresh the tokens with the SDK's `auth()` (refresh_token
//                                  grant: the refresh token rotates) and list the tools again with
//                                  the new access token
//
// stdout protocol: exactly one JSON line, then exit.
//   success (exit 0): {"ok":true,"clientId":..,"registered":true|false (dynamic registration used),
//                      "redirectUri":..,"authorizeParams":{<the authorize URL's query, code_challenge
//                      kept, state kept>},"callbackParams":{"state":..,"iss":..,"hasCode":true},
//                      "tokenHeader":{..JWT header..},"tokenClaims":{..JWT payload..} (null if opaque),
//                      "tokenType":..,"hasRefreshToken":bool,"scope":..,
//                      "firstStatus":"unauthorized" (the first connect needed a login),
//                      "tools":[names],"call":<CallToolResult or null>,
//                      "callText":<first text content or null>,
//                      "tokenInCall":bool (the access token appears in callText; with mcp-server.mjs
//                      --headers-tool and --tool request_headers this says whether the MCP server saw it),
//                      "refreshed":null | {"result":"AUTHORIZED","newAccessToken":bool,
//                      "rotatedRefreshToken":bool,"tools":<count listed with the new token>}}
//   failure (exit 1): {"ok":false,"error":<message>,"stage":<where>}
// Tokens are never printed: only the JWT's decoded header and claims (not its signature).
// Diagnostics go to stderr.

import http from "node:http";
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { UnauthorizedError, auth } from "@modelcontextprotocol/sdk/client/auth.js";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const OVERALL_TIMEOUT_MS = 90_000;
const started = Date.now();
let stage = "arguments";

function log(msg) {
  console.error(`mcp-oauth-client: [${Date.now() - started} ms] ${msg}`);
}

function finish(ok, body) {
  process.stdout.write(`${JSON.stringify({ ok, ...body })}\n`, () => process.exit(ok ? 0 : 1));
}

setTimeout(() => finish(false, { error: "timed out", stage }), OVERALL_TIMEOUT_MS).unref();

// ---------------------------------------------------------------------------------------------
// Command line

const argv = process.argv.slice(2);
let mcpUrl;
let clientMetadataUrl;
let user = "alice";
let tool;
let toolArgs = {};
let scope;
let refresh = false;
for (let i = 0; i < argv.length; i++) {
  const arg = argv[i];
  const value = () => {
    const v = argv[++i];
    if (v === undefined) finish(false, { error: `${arg} needs a value`, stage });
    return v;
  };
  if (arg === "--client-metadata-url") clientMetadataUrl = value();
  else if (arg === "--user") user = value();
  else if (arg === "--tool") tool = value();
  else if (arg === "--args") toolArgs = JSON.parse(value());
  else if (arg === "--scope") scope = value();
  else if (arg === "--refresh") refresh = true;
  else if (mcpUrl === undefined) mcpUrl = arg;
  else finish(false, { error: `unexpected argument ${arg}`, stage });
}
if (!mcpUrl || !URL.canParse(mcpUrl)) finish(false, { error: "usage: node mcp-oauth-client.mjs <mcp-url> [options]", stage });

// ---------------------------------------------------------------------------------------------
// The loopback redirect listener (RFC 8252 7.3): any port on 127.0.0.1, path /callback.

let resolveCallback;
const callbackReceived = new Promise((resolve) => (resolveCallback = resolve));
const listener = http.createServer((req, res) => {
  const url = new URL(req.url, "http://127.0.0.1");
  if (url.pathname !== "/callback") {
    res.writeHead(404).end();
    return;
  }
  res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
  res.end("<!doctype html><title>Signed in</title><p>You can close this page.</p>");
  resolveCallback(url.searchParams);
});
await new Promise((resolve) => listener.listen(0, "127.0.0.1", resolve));
const redirectUri = `http://127.0.0.1:${listener.address().port}/callback`;

// ---------------------------------------------------------------------------------------------
// The OAuth client provider: everything in memory, one run.

const memory = { client: undefined, tokens: undefined, verifier: undefined, registered: false, authorizeUrl: undefined, state: undefined };

const provider = {
  get redirectUrl() {
    return redirectUri;
  },
  clientMetadataUrl,
  // The SDK sends a `state` only when the provider makes one; checked on the callback.
  state() {
    memory.state = randomBytes(16).toString("base64url");
    return memory.state;
  },
  get clientMetadata() {
    return {
      client_name: "portcullis e2e MCP client",
      redirect_uris: [redirectUri],
      grant_types: ["authorization_code", "refresh_token"],
      response_types: ["code"],
      token_endpoint_auth_method: "none",
      application_type: "native",
      ...(scope ? { scope } : {}),
    };
  },
  clientInformation() {
    return memory.client;
  },
  saveClientInformation(info) {
    // Called after a dynamic registration (and not for a CIMD client id).
    memory.registered = true;
    memory.client = info;
    log(`registered client ${info.client_id}`);
  },
  tokens() {
    return memory.tokens;
  },
  saveTokens(tokens) {
    memory.tokens = tokens;
    log(`tokens saved (refresh token: ${tokens.refresh_token ? "yes" : "no"})`);
  },
  saveCodeVerifier(verifier) {
    memory.verifier = verifier;
  },
  codeVerifier() {
    if (!memory.verifier) throw new Error("no code verifier saved");
    return memory.verifier;
  },
  async redirectToAuthorization(url) {
    memory.authorizeUrl = url;
    stage = "login";
    log(`logging in as ${user} in Chromium (authorize endpoint ${url.origin}${url.pathname})`);
    const report = await runBrowserLogin(url.href);
    if (!report.ok) throw new Error(`browser login failed: ${report.error}`);
  },
};

function runBrowserLogin(url) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [path.join(HERE, "browser-login.mjs"), url, "--user", user], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    let out = "";
    child.stdout.on("data", (d) => (out += d));
    child.on("close", () => {
      const line = out.trim().split("\n").pop() ?? "";
      try {
        resolve(JSON.parse(line));
      } catch {
        resolve({ ok: false, error: `browser-login printed no JSON: ${out}` });
      }
    });
  });
}

function decodeJwt(token) {
  const parts = String(token).split(".");
  if (parts.length !== 3) return { header: null, claims: null };
  const decode = (p) => JSON.parse(Buffer.from(p, "base64url").toString("utf8"));
  try {
    return { header: decode(parts[0]), claims: decode(parts[1]) };
  } catch {
    return { header: null, claims: null };
  }
}

function newTransport() {
  return new StreamableHTTPClientTransport(new URL(mcpUrl), { authProvider: provider });
}

// ---------------------------------------------------------------------------------------------

async function run() {
  stage = "first connect";
  let firstStatus = "connected";
  let transport = newTransport();
  let client = new Client({ name: "portcullis-e2e-oauth-client", version: "1.0.0" });
  try {
    await client.connect(transport);
  } catch (err) {
    if (!(err instanceof UnauthorizedError)) throw err;
    firstStatus = "unauthorized";
    stage = "callback";
    const params = await callbackReceived;
    if (params.get("error")) throw new Error(`authorization error ${params.get("error")}: ${params.get("error_description") ?? ""}`);
    const code = params.get("code");
    if (!code) throw new Error("the redirect carried no code");
    if (params.get("state") !== memory.state) throw new Error("the redirect's state is not the one sent");
    stage = "finishAuth";
    await transport.finishAuth(code);
    memory.callback = { state: params.get("state"), iss: params.get("iss"), hasCode: true };
    stage = "second connect";
    transport = newTransport();
    client = new Client({ name: "portcullis-e2e-oauth-client", version: "1.0.0" });
    await client.connect(transport);
  }
  stage = "tools/list";
  const tools = (await client.listTools()).tools.map((t) => t.name);
  let call = null;
  if (tool) {
    stage = "tools/call";
    call = await client.callTool({ name: tool, arguments: toolArgs });
  }
  const callText = call?.content?.find((c) => c.type === "text")?.text ?? null;
  const accessToken = memory.tokens?.access_token ?? "";
  let refreshed = null;
  if (refresh) {
    stage = "refresh";
    const before = memory.tokens;
    const result = await auth(provider, { serverUrl: mcpUrl });
    const after = memory.tokens;
    await client.close();
    transport = newTransport();
    client = new Client({ name: "portcullis-e2e-oauth-client", version: "1.0.0" });
    await client.connect(transport);
    refreshed = {
      result,
      newAccessToken: after.access_token !== before.access_token,
      rotatedRefreshToken: Boolean(after.refresh_token) && after.refresh_token !== before.refresh_token,
      tools: (await client.listTools()).tools.length,
    };
  }
  const { header, claims } = decodeJwt(accessToken);
  const authorizeParams = memory.authorizeUrl ? Object.fromEntries(memory.authorizeUrl.searchParams) : null;
  await client.close();
  listener.close();
  finish(true, {
    clientId: memory.client?.client_id ?? null,
    registered: memory.registered,
    redirectUri,
    authorizeParams,
    callbackParams: memory.callback ?? null,
    tokenHeader: header,
    tokenClaims: claims,
    tokenType: memory.tokens?.token_type ?? null,
    hasRefreshToken: Boolean(memory.tokens?.refresh_token),
    scope: memory.tokens?.scope ?? null,
    firstStatus,
    tools,
    call,
    callText,
    tokenInCall: Boolean(accessToken && callText && callText.includes(accessToken)),
    refreshed,
  });
}

run().catch((err) => finish(false, { error: String(err?.message ?? err), stage }));
