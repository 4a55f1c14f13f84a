#!/usr/bin/env node
// A small MCP server built on the official @modelcontextprotocol/sdk (`McpServer` +
// `StreamableHTTPServerTransport`) for Portcullis MCP-aware authorization tests (per-tool allow/deny,
// filtering of tools/list, prompts/list, resources/list, resources/templates/list, step-up) and, with
// --introspect, per-user upstream tokens (every request must carry a user's own access token).
//
// Usage:   node mcp-server.mjs <port> [--json] [--stateless] [--legacy-sse] [--delay-ms N] [--notify]
//                             [--keepalive-ms N] [--headers-tool] [--introspect ISSUER]
//          Port 0 is allowed: the OS picks a free port and it is reported in the READY line.
// Binds:   127.0.0.1 only.   MCP endpoint: http://127.0.0.1:<port>/mcp  (any other path -> 404)
//
//   --json       POST responses are plain `application/json` (SDK `enableJsonResponse: true`).
//                Without it every POST carrying a request is answered `text/event-stream` (SSE):
//                `event: message\ndata: <one JSON-RPC message>\n\n`, then the stream ends.
//   --stateless  no sessions (SDK `sessionIdGenerator: undefined`): every POST gets a fresh
//                McpServer + transport, no `Mcp-Session-Id` is issued or checked, so a bare
//                `tools/list` POST works without an `initialize` first; GET and DELETE -> 405.
//   --delay-ms N hold every JSON-RPC response back for N ms. With SSE the response headers are
//                then sent first and the body follows later with `Transfer-Encoding: chunked`
//                (without a delay the SDK's HTTP layer sees the whole short SSE body at once and
//                answers with a `Content-Length` instead).
//   --notify     SSE only (ignored with --json): before each JSON-RPC response, send a
//                `notifications/message` {level:"info",logger:"mcp-server",data:"answering request
//                <id>"} on the same SSE stream, so the stream carries two `event: message` events.
//   --legacy-sse the 2024-11-05 HTTP+SSE transport (SDK `SSEServerTransport`) instead: GET /mcp
//                opens the event stream, whose first event is `endpoint` (`/mcp?sessionId=<id>`);
//                each POST to that URL is answered 202 and its answer sent on the GET stream.
//   --headers-tool  also offer the tool `request_headers` {} -> text: the JSON object of the HTTP
//                request headers that carried the call (names lower-cased), so a test can assert what
//                reached the MCP server (e.g. that no Authorization header or token was passed through).
//   --keepalive-ms N  SSE keep-alive comment (`: keepalive`) interval, SDK default 15000; 0 = off.
//                Together with --delay-ms it puts comment frames into POST SSE responses.
//   --introspect ISSUER  every HTTP request (any method, any path, before anything else: before the
//                404 for other paths, session checks, body parsing) must carry
//                `Authorization: Bearer <token>`, checked by RFC 7662 introspection at ISSUER (e.g.
//                registry-idp.mjs) exactly as registry-server.mjs does: the introspection_endpoint is
//                taken from ISSUER/.well-known/openid-configuration at startup (before READY; exit 1
//                if discovery fails), client registry-server / registry-secret, client_secret_basic,
//                token_type_hint=access_token. The token is valid when introspection answers
//                active:true AND token_type "Bearer" (so refresh tokens are rejected).
//                  missing/malformed/inactive/refresh token -> 401, `WWW-Authenticate: Bearer
//                      error="invalid_token"`, body {"error":"invalid_token"}; the request never
//                      reaches the MCP transport (its body is not read, so REQUEST shows rpc `-`).
//                  introspection failed (IdP down, non-200, 10 s timeout) -> 502
//                      {"error":"introspection_failed"}, likewise without reaching the transport.
//                  valid -> handled as without the option; the introspected `sub` is handed to the
//                      SDK with THIS request (Node `req.auth` -> the handler's `extra.authInfo`, so
//                      concurrent requests of different users, in every mode, each see their own).
//                Also offers the tool `whoami` (below).
//   --introspect-header HEADER ISSUER  (with --introspect) a second user token, for a second provider:
//                when a request carries the header HEADER, its value (the bare token) is checked by
//                introspection at ISSUER in the same way (an inactive one -> 401 as above, the request
//                not handled); a request without it is handled as before. Also offers the tool
//                `whoami_header` {} -> text: the introspected `sub` of HEADER's token, or isError
//                "no <HEADER> token" when the call came without one. Sessions are NOT bound to a user: a later
//                request of another valid user with the same Mcp-Session-Id is served, and its
//                `whoami` answers that other user.
//   default      stateful: `initialize` (POST without `Mcp-Session-Id`) creates a session and the
//                response carries `Mcp-Session-Id`; every later request must send it (missing ->
//                400, unknown -> 404, both JSON-RPC error bodies). GET opens the session's
//                standalone SSE stream (stays open until the client goes away; it is SSE even with
//                --json, and this server never sends anything on it); DELETE ends the session. The official SDK client works against both modes with and without --json.
//
// Offers (server name "portcullis-test-mcp-server", version 1.0.0):
//   tools      echo        {message: string} -> text "Echo: <message>"   annotations {readOnlyHint: true}
//              add         {a: number, b: number} -> text "<a+b>"         annotations {readOnlyHint: true}
//              delete_file {path: string} -> text "deleted <path>" (does nothing)
//                                                annotations {readOnlyHint: false, destructiveHint: true}
//              deploy      {env: string} -> text "deployed to <env>"
//                                                annotations {readOnlyHint: false, destructiveHint: true}
//              request_headers {} (only with --headers-tool, see above)
//              whoami_header {} (only with --introspect-header, see above)
//              whoami      {} (only with --introspect) -> text: the introspected `sub` of the access
//                          token that carried THIS call (with registry-idp.mjs: the login typed on its
//                          sign-in page)                  annotations {readOnlyHint: true}
//   prompts    greeting        args {name?}  -> one user message "Say hello to <name>." (default "world")
//              incident_report args {id?}    -> one user message "Write an incident report for
//                                               incident <id>." (default "INC-1")
//              (arguments are optional so a bare prompts/get works)
//   resources  file:///public/readme.md  (text/markdown)  "# Public readme\n..."
//              file:///secret/keys.txt   (text/plain)     "not-a-real-key ..."
//   resource templates
//              file:///public/{name}  (text/plain) reading file:///public/<name> -> "public file <name>"
//              (not enumerated in resources/list; file:///public/readme.md is the static resource)
//
// stdout protocol (one line each):
//   READY <port>                                   once listening
//   REQUEST <method> <path> <rpc> auth=yes|no      after each HTTP request has been answered
//       <path>   request path including any query string
//       <rpc>    the JSON-RPC `method` of the POSTed message (`initialize`, `tools/list`,
//                `notifications/initialized`, ...), comma-joined for a batch, `-` when there is
//                none (GET, DELETE, JSON-RPC responses, unparsable bodies)
//       auth     whether an `Authorization` header reached the server (its value is never printed)
//   INTROSPECTED <result> sub=<sub>                only with --introspect: right after the REQUEST
//                                                  line of the same request
//       <result> `active` (token accepted), `inactive` (no/malformed Authorization header, introspection
//                said active:false, or not an access token) or `failed` (introspection failed: 502)
//       <sub>    the introspected `sub` when accepted, otherwise `-`. The token is never printed.
//   For a GET (standalone SSE stream) the lines appear when that stream closes.
// stdin line commands: `quit` -> exit(0) (EOF on stdin is ignored). SIGTERM/SIGINT exit too.
// Diagnostics (including the HTTP status of each request) go to stderr.
//
// Example (stateful, SSE): initialize, then tools/list with the session id:
//   curl -si http://127.0.0.1:<port>/mcp -H 'content-type: application/json' \
//     -H 'accept: application/json, text/event-stream' \
//     -d '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18",
//          "capabilities":{},"clientInfo":{"name":"curl","version":"0"}}}'
//   curl -si http://127.0.0.1:<port>/mcp -H 'content-type: application/json' \
//     -H 'accept: application/json, text/event-stream' -H 'mcp-session-id: <from above>' \
//     -H 'mcp-protocol-version: 2025-06-18' -d '{"jsonrpc":"2.0","id":2,"method":"tools/list"}'

import http from "node:http";
import readline from "node:readline";
import { randomUUID } from "node:crypto";
import { McpServer, ResourceTemplate } from "@modelcontextprotocol/sdk/server/mcp.js";
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import { SSEServerTransport } from "@modelcontextprotocol/sdk/server/sse.js";
import { isInitializeRequest } from "@modelcontextprotocol/sdk/types.js";
import { z } from "zod";

const USAGE =
  "usage: node mcp-server.mjs <port> [--json] [--stateless] [--legacy-sse] [--delay-ms N] [--notify] [--keepalive-ms N] [--headers-tool] [--introspect ISSUER] [--introspect-header HEADER ISSUER]";
const args = process.argv.slice(2);
const portArg = args[0];
if (portArg === undefined || !/^\d+$/.test(portArg) || Number(portArg) > 65535) {
  console.error(USAGE);
  process.exit(2);
}
let JSON_RESPONSES = false;
let STATELESS = false;
let LEGACY_SSE = false;
let DELAY_MS = 0;
let NOTIFY = false;
let KEEPALIVE_MS; // undefined = SDK default (15000)
let HEADERS_TOOL = false;
let INTROSPECT_ISSUER; // --introspect: issuer URL without trailing slashes
let HEADER_TOKEN; // --introspect-header: { header (lower case), issuer }
for (let i = 1; i < args.length; i++) {
  const flag = args[i];
  const number = () => {
    const v = args[++i];
    if (v === undefined || !/^\d+$/.test(v)) {
      console.error(`mcp-server: ${flag} needs a number of milliseconds\n${USAGE}`);
      process.exit(2);
    }
    return Number(v);
  };
  if (flag === "--json") JSON_RESPONSES = true;
  else if (flag === "--stateless") STATELESS = true;
  else if (flag === "--legacy-sse") LEGACY_SSE = true;
  else if (flag === "--notify") NOTIFY = true;
  else if (flag === "--headers-tool") HEADERS_TOOL = true;
  else if (flag === "--delay-ms") DELAY_MS = number();
  else if (flag === "--keepalive-ms") KEEPALIVE_MS = number();
  else if (flag === "--introspect") {
    const v = args[++i];
    if (v === undefined || !URL.canParse(v)) {
      console.error(`mcp-server: --introspect needs an issuer URL\n${USAGE}`);
      process.exit(2);
    }
    INTROSPECT_ISSUER = v.replace(/\/+$/, "");
  } else if (flag === "--introspect-header") {
    const [header, issuer] = [args[++i], args[++i]];
    if (header === undefined || !/^[A-Za-z0-9-]+$/.test(header) || issuer === undefined || !URL.canParse(issuer)) {
      console.error(`mcp-server: --introspect-header needs a header name and an issuer URL\n${USAGE}`);
      process.exit(2);
    }
    HEADER_TOKEN = { header: header.toLowerCase(), issuer: issuer.replace(/\/+$/, "") };
  }
  else {
    console.error(`mcp-server: unknown option: ${flag}\n${USAGE}`);
    process.exit(2);
  }
}
if (HEADER_TOKEN !== undefined && INTROSPECT_ISSUER === undefined) {
  console.error(`mcp-server: --introspect-header goes with --introspect\n${USAGE}`);
  process.exit(2);
}
const HOST = "127.0.0.1";
const MCP_PATH = "/mcp";
const MAX_BODY = 4 * 1024 * 1024;

const text = (t) => ({ content: [{ type: "text", text: t }] });
const userMessage = (t) => ({ messages: [{ role: "user", content: { type: "text", text: t } }] });

function createMcpServer() {
  const server = new McpServer({ name: "portcullis-test-mcp-server", version: "1.0.0" });

  server.registerTool(
    "echo",
    {
      title: "Echo",
      description: "Echoes the message back",
      inputSchema: { message: z.string() },
      annotations: { readOnlyHint: true },
    },
    async ({ message }) => text(`Echo: ${message}`),
  );
  server.registerTool(
    "add",
    {
      title: "Add",
      description: "Adds two numbers",
      inputSchema: { a: z.number(), b: z.number() },
      annotations: { readOnlyHint: true },
    },
    async ({ a, b }) => text(String(a + b)),
  );
  server.registerTool(
    "delete_file",
    {
      title: "Delete file",
      description: "Deletes a file (pretends to: nothing is touched)",
      inputSchema: { path: z.string() },
      annotations: { readOnlyHint: false, destructiveHint: true },
    },
    async ({ path }) => text(`deleted ${path}`),
  );
  server.registerTool(
    "deploy",
    {
      title: "Deploy",
      description: "Deploys to an environment (pretends to)",
      inputSchema: { env: z.string() },
      annotations: { readOnlyHint: false, destructiveHint: true },
    },
    async ({ env }) => text(`deployed to ${env}`),
  );
  if (HEADERS_TOOL) {
    server.registerTool(
      "request_headers",
      {
        title: "Request headers",
        description: "Returns the HTTP request headers this call arrived with",
        inputSchema: {},
        annotations: { readOnlyHint: true },
      },
      async (_args, extra) => text(JSON.stringify(extra?.requestInfo?.headers ?? null)),
    );
  }
  if (INTROSPECT_ISSUER !== undefined) {
    server.registerTool(
      "whoami",
      {
        title: "Who am I",
        description: "Returns the subject (user) of the access token this call arrived with",
        inputSchema: {},
        annotations: { readOnlyHint: true },
      },
      // authInfo is per HTTP request (set as req.auth in handle() below), never shared state.
      async (_args, extra) => {
        const sub = extra?.authInfo?.extra?.sub;
        if (typeof sub !== "string") {
          return { content: [{ type: "text", text: "no introspected sub for this request" }], isError: true };
        }
        return text(sub);
      },
    );
  }
  if (HEADER_TOKEN !== undefined) {
    server.registerTool(
      "whoami_header",
      {
        title: "Who am I (second provider)",
        description: `Returns the subject of the ${HEADER_TOKEN.header} token this call arrived with`,
        inputSchema: {},
        annotations: { readOnlyHint: true },
      },
      async (_args, extra) => {
        const sub = extra?.authInfo?.extra?.headerSub;
        if (typeof sub !== "string") {
          return { content: [{ type: "text", text: `no ${HEADER_TOKEN.header} token` }], isError: true };
        }
        return text(sub);
      },
    );
  }

  server.registerPrompt(
    "greeting",
    {
      title: "Greeting",
      description: "Asks for a greeting",
      argsSchema: { name: z.string().optional() },
    },
    ({ name }) => userMessage(`Say hello to ${name ?? "world"}.`),
  );
  server.registerPrompt(
    "incident_report",
    {
      title: "Incident report",
      description: "Asks for an incident report",
      argsSchema: { id: z.string().optional() },
    },
    ({ id }) => userMessage(`Write an incident report for incident ${id ?? "INC-1"}.`),
  );

  server.registerResource(
    "public-readme",
    "file:///public/readme.md",
    { title: "Public readme", description: "A public document", mimeType: "text/markdown" },
    async (uri) => ({
      contents: [
        {
          uri: uri.href,
          mimeType: "text/markdown",
          text: "# Public readme\n\nAnyone may read this.\n",
        },
      ],
    }),
  );
  server.registerResource(
    "secret-keys",
    "file:///secret/keys.txt",
    { title: "Secret keys", description: "A secret document", mimeType: "text/plain" },
    async (uri) => ({
      contents: [
        { uri: uri.href, mimeType: "text/plain", text: "not-a-real-key 0123456789abcdef\n" },
      ],
    }),
  );
  server.registerResource(
    "public-file",
    new ResourceTemplate("file:///public/{name}", { list: undefined }),
    { title: "Public file", description: "Any file under /public", mimeType: "text/plain" },
    async (uri, { name }) => ({
      contents: [{ uri: uri.href, mimeType: "text/plain", text: `public file ${name}` }],
    }),
  );

  return server;
}

function newTransport(onInitialized) {
  const transport = new StreamableHTTPServerTransport({
    sessionIdGenerator: STATELESS ? undefined : () => randomUUID(),
    enableJsonResponse: JSON_RESPONSES,
    onsessioninitialized: onInitialized,
    keepAliveMs: KEEPALIVE_MS,
  });
  if (DELAY_MS > 0 || NOTIFY) {
    // --notify / --delay-ms: act just before each JSON-RPC response leaves the server.
    const send = transport.send.bind(transport);
    transport.send = async (message, options) => {
      const isResponse =
        message !== null && typeof message === "object" && ("result" in message || "error" in message);
      if (isResponse && message.id !== undefined && message.id !== null) {
        if (NOTIFY && !JSON_RESPONSES) {
          await send(
            {
              jsonrpc: "2.0",
              method: "notifications/message",
              params: { level: "info", logger: "mcp-server", data: `answering request ${message.id}` },
            },
            { relatedRequestId: message.id },
          );
        }
        if (DELAY_MS > 0) await new Promise((r) => setTimeout(r, DELAY_MS));
      }
      return send(message, options);
    };
  }
  return transport;
}

// Stateful mode: session id -> { transport, server }.
const sessions = new Map();
// --legacy-sse: session id -> SSEServerTransport.
const legacySessions = new Map();

async function handleLegacy(req, res, info) {
  if (req.method === "GET") {
    const transport = new SSEServerTransport(MCP_PATH, res);
    legacySessions.set(transport.sessionId, transport);
    res.on("close", () => legacySessions.delete(transport.sessionId));
    return createMcpServer().connect(transport);
  }
  if (req.method !== "POST") {
    req.resume();
    return sendJson(res, 405, rpcError(-32000, "Method not allowed."), { allow: "GET, POST" });
  }
  const id = new URL(req.url ?? "/", "http://x").searchParams.get("sessionId");
  const transport = id === null ? undefined : legacySessions.get(id);
  const body = JSON.parse(await readBody(req));
  info.rpc = rpcMethods(body);
  if (!transport) return sendJson(res, 404, rpcError(-32001, "Session not found"));
  return transport.handlePostMessage(req, res, body);
}

function sendJson(res, status, body, headers = {}) {
  const t = JSON.stringify(body);
  res.writeHead(status, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(t),
    ...headers,
  });
  res.end(t);
}

const rpcError = (code, message) => ({ jsonrpc: "2.0", error: { code, message }, id: null });

async function readBody(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > MAX_BODY) throw Object.assign(new Error("body too large"), { tooLarge: true });
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString("utf8");
}

function rpcMethods(body) {
  const msgs = Array.isArray(body) ? body : [body];
  const methods = msgs
    .map((m) => (m && typeof m === "object" && typeof m.method === "string" ? m.method : null))
    .filter((m) => m !== null);
  return methods.length > 0 ? methods.join(",") : "-";
}

// --introspect: RFC 7662 introspection at the issuer, as registry-server.mjs does it.
const INTROSPECT_CLIENT_ID = "registry-server";
const INTROSPECT_CLIENT_SECRET = "registry-secret";
let introspectionEndpoint;
let headerIntrospectionEndpoint; // --introspect-header

async function discoverIntrospectionEndpoint(issuer) {
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

const introspectBasic = Buffer.from(
  `${encodeURIComponent(INTROSPECT_CLIENT_ID)}:${encodeURIComponent(INTROSPECT_CLIENT_SECRET)}`,
).toString("base64");

async function introspect(token, endpoint = introspectionEndpoint) {
  const res = await fetch(endpoint, {
    method: "POST",
    headers: {
      authorization: `Basic ${introspectBasic}`,
      "content-type": "application/x-www-form-urlencoded",
      accept: "application/json",
    },
    body: new URLSearchParams({ token, token_type_hint: "access_token" }).toString(),
    signal: AbortSignal.timeout(10_000),
  });
  if (!res.ok) throw new Error(`introspection HTTP ${res.status}`);
  return res.json();
}

// Checks the request's bearer token. Returns true when the request may go on (then `req.auth` carries
// the SDK AuthInfo with extra.sub); otherwise it has answered 401/502 itself and returns false.
async function authorize(req, res, info) {
  const reject = () => {
    req.resume();
    sendJson(res, 401, { error: "invalid_token" }, {
      "www-authenticate": 'Bearer error="invalid_token"',
      "cache-control": "no-store",
    });
    return false;
  };
  const match = /^Bearer +(\S+) *$/i.exec(req.headers.authorization ?? "");
  if (!match) return reject();
  const token = match[1];
  let result;
  try {
    result = await introspect(token);
  } catch (err) {
    console.error(`mcp-server: ${err.message}`);
    info.introspected = "failed";
    req.resume();
    sendJson(res, 502, { error: "introspection_failed" }, { "cache-control": "no-store" });
    return false;
  }
  if (result?.active !== true || result.token_type !== "Bearer") {
    console.error(`mcp-server: token rejected (active=${result?.active}, token_type=${result?.token_type})`);
    return reject();
  }
  let headerSub;
  const headerToken = HEADER_TOKEN !== undefined ? req.headers[HEADER_TOKEN.header] : undefined;
  if (headerToken !== undefined) {
    let second;
    try {
      second = await introspect(String(headerToken).trim(), headerIntrospectionEndpoint);
    } catch (err) {
      console.error(`mcp-server: ${HEADER_TOKEN.header}: ${err.message}`);
      info.introspected = "failed";
      req.resume();
      sendJson(res, 502, { error: "introspection_failed" }, { "cache-control": "no-store" });
      return false;
    }
    if (second?.active !== true || second.token_type !== "Bearer") {
      console.error(`mcp-server: ${HEADER_TOKEN.header} token rejected (active=${second?.active})`);
      return reject();
    }
    headerSub = second.sub;
  }
  info.introspected = "active";
  info.sub = typeof result.sub === "string" ? result.sub : "-";
  // The SDK's Node transports read `req.auth` per request and hand it to the request handlers as
  // `extra.authInfo`, so every call sees the user of the request that carried it.
  req.auth = {
    token,
    clientId: typeof result.client_id === "string" ? result.client_id : "",
    scopes: typeof result.scope === "string" ? result.scope.split(" ").filter(Boolean) : [],
    expiresAt: typeof result.exp === "number" ? result.exp : undefined,
    extra: { sub: result.sub, headerSub },
  };
  return true;
}

async function handle(req, res, info) {
  if (INTROSPECT_ISSUER !== undefined && !(await authorize(req, res, info))) return;
  const path = (req.url ?? "/").split("?")[0];
  if (path !== MCP_PATH) {
    req.resume();
    return sendJson(res, 404, { error: "not_found" });
  }
  if (LEGACY_SSE) return handleLegacy(req, res, info);
  const sessionId = req.headers["mcp-session-id"];

  if (req.method === "POST") {
    let raw;
    try {
      raw = await readBody(req);
    } catch (err) {
      if (err.tooLarge) return sendJson(res, 413, rpcError(-32000, "Request body too large"));
      throw err;
    }
    let body;
    try {
      body = JSON.parse(raw);
    } catch {
      return sendJson(res, 400, rpcError(-32700, "Parse error: Invalid JSON"));
    }
    info.rpc = rpcMethods(body);

    if (STATELESS) {
      const server = createMcpServer();
      const transport = newTransport(undefined);
      res.on("close", () => {
        transport.close().catch(() => {});
        server.close().catch(() => {});
      });
      await server.connect(transport);
      return transport.handleRequest(req, res, body);
    }

    if (sessionId !== undefined) {
      const session = sessions.get(sessionId);
      if (!session) return sendJson(res, 404, rpcError(-32001, "Session not found"));
      return session.transport.handleRequest(req, res, body);
    }
    const isInit = Array.isArray(body) ? body.some(isInitializeRequest) : isInitializeRequest(body);
    if (!isInit) {
      return sendJson(res, 400, rpcError(-32000, "Bad Request: No valid session ID provided"));
    }
    const server = createMcpServer();
    const transport = newTransport((id) => {
      sessions.set(id, { transport, server });
      console.error(`mcp-server: session ${id} created (${sessions.size} open)`);
    });
    transport.onclose = () => {
      const id = transport.sessionId;
      if (id && sessions.delete(id)) {
        console.error(`mcp-server: session ${id} closed (${sessions.size} open)`);
      }
    };
    await server.connect(transport);
    return transport.handleRequest(req, res, body);
  }

  req.resume();
  if (req.method === "GET" || req.method === "DELETE") {
    if (STATELESS) {
      return sendJson(res, 405, rpcError(-32000, "Method not allowed."), { allow: "POST" });
    }
    if (sessionId === undefined) {
      return sendJson(res, 400, rpcError(-32000, "Bad Request: No valid session ID provided"));
    }
    const session = sessions.get(sessionId);
    if (!session) return sendJson(res, 404, rpcError(-32001, "Session not found"));
    return session.transport.handleRequest(req, res);
  }
  return sendJson(res, 405, rpcError(-32000, "Method not allowed."), {
    allow: STATELESS ? "POST" : "GET, POST, DELETE",
  });
}

if (INTROSPECT_ISSUER !== undefined) {
  try {
    introspectionEndpoint = await discoverIntrospectionEndpoint(INTROSPECT_ISSUER);
  } catch (err) {
    console.error(`mcp-server: ${err.message}`);
    process.exit(1);
  }
  console.error(`mcp-server: introspection endpoint ${introspectionEndpoint}`);
}
if (HEADER_TOKEN !== undefined) {
  try {
    headerIntrospectionEndpoint = await discoverIntrospectionEndpoint(HEADER_TOKEN.issuer);
  } catch (err) {
    console.error(`mcp-server: ${err.message}`);
    process.exit(1);
  }
}

const httpServer = http.createServer((req, res) => {
  const info = { rpc: "-", introspected: "inactive", sub: "-" };
  const auth = req.headers.authorization !== undefined ? "yes" : "no";
  let logged = false;
  const log = () => {
    if (logged) return;
    logged = true;
    console.error(`mcp-server: ${req.method} ${req.url} ${info.rpc} -> ${res.statusCode}`);
    process.stdout.write(`REQUEST ${req.method} ${req.url} ${info.rpc} auth=${auth}\n`);
    if (INTROSPECT_ISSUER !== undefined) {
      process.stdout.write(`INTROSPECTED ${info.introspected} sub=${info.sub}\n`);
    }
  };
  res.on("finish", log);
  res.on("close", log);
  handle(req, res, info).catch((err) => {
    console.error("mcp-server: request failed:", err);
    if (!res.headersSent) sendJson(res, 500, rpcError(-32603, "Internal error"));
    else res.end();
  });
});
httpServer.on("error", (err) => {
  console.error("mcp-server: listen error:", err.message);
  process.exit(1);
});
await new Promise((resolve) => httpServer.listen(Number(portArg), HOST, resolve));
const { address, port } = httpServer.address();
console.error(
  `mcp-server: bound ${address}:${port} (${STATELESS ? "stateless" : "stateful"}, ` +
    `${JSON_RESPONSES ? "JSON" : "SSE"} responses, delay ${DELAY_MS} ms, notify ${NOTIFY}, ` +
    `keep-alive ${KEEPALIVE_MS ?? "default"}` +
    `${INTROSPECT_ISSUER !== undefined ? `, introspect at ${INTROSPECT_ISSUER}` : ""})`,
);
process.stdout.write(`READY ${port}\n`);

readline.createInterface({ input: process.stdin, terminal: false }).on("line", (line) => {
  const cmd = line.trim();
  if (cmd === "quit") process.exit(0);
  else if (cmd !== "") console.error(`mcp-server: unknown command: ${cmd} (expected quit)`);
});
process.on("SIGTERM", () => process.exit(0));
process.on("SIGINT", () => process.exit(0));
