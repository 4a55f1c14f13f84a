#!/usr/bin/env node
// MCP server fixture for the official MCP conformance suite (`@modelcontextprotocol/conformance`,
// `server` mode). Built on the official TypeScript SDK (`@modelcontextprotocol/sdk`, low-level
// `Server` + `StreamableHTTPServerTransport`) so every tool/resource/prompt list is exactly what is
// written here (no zod -> JSON Schema conversion in between).
//
// Usage:   node server.mjs <port> [--no-event-store]
//          Port 0 is allowed: the OS picks a free port and it is reported in the READY line.
// Binds:   127.0.0.1 only.   MCP endpoint: http://127.0.0.1:<port>/mcp   (any other path -> 404)
// stdout:  `READY <port>` once listening; nothing else. Diagnostics go to stderr.
// Stops:   on SIGTERM / SIGINT, or `quit` on stdin (EOF on stdin is ignored).
//
// Transport: Streamable HTTP, stateful. `initialize` (POST without `Mcp-Session-Id`) creates a
// session (one SDK `Server` + transport per session); later requests must carry `Mcp-Session-Id`
// (missing -> 400, unknown -> 404, JSON-RPC error bodies). GET opens the session's standalone SSE
// stream (also used for `Last-Event-ID` resumption), DELETE ends the session. POST responses are SSE.
// By default every session has an in-memory event store and `retryInterval` 1000 ms, so clients
// speaking protocol 2025-11-25 get an SSE priming event (`id: ..`, `retry: 1000`, empty `data:`)
// first on every POST SSE stream and can resume with `Last-Event-ID` (SEP-1699).
// `--no-event-store` turns that off (no priming events, no resumption).
//
// Deliberately NOT implemented: DNS-rebinding protection. No Host / Origin header is checked
// (the SDK transport's `enableDnsRebindingProtection` stays false and no `allowedHosts` /
// `allowedOrigins` are set; no `createMcpExpressApp`). So the conformance scenario
// `dns-rebinding-protection` FAILS against this server directly (its `Host: evil.example.com`
// request gets 200); the Portcullis gateway in front is what must make it pass.
//
// Offers (server "portcullis-conformance-server" 1.0.0; capabilities tools{listChanged},
// resources{subscribe,listChanged}, prompts{listChanged}, logging, completions) everything the
// conformance 0.1.16 server scenarios call:
//   tools      test_simple_text, test_image_content (image/png), test_audio_content (audio/wav),
//              test_embedded_resource, test_multiple_content_types (text+image+resource),
//              test_tool_with_logging (3 notifications/message at info, 50 ms apart),
//              test_tool_with_progress (progress 0/50/100 of 100 to _meta.progressToken),
//              test_error_handling (result isError:true), test_sampling {prompt}
//              (sampling/createMessage), test_elicitation {message} (elicitation/create),
//              test_elicitation_sep1034_defaults, test_elicitation_sep1330_enums,
//              test_reconnection (closes its POST SSE stream mid-call; pending scenario
//              server-sse-polling), json_schema_2020_12_tool (raw 2020-12 inputSchema with
//              $schema/$defs/additionalProperties; pending scenario json-schema-2020-12)
//   resources  test://static-text (text/plain), test://static-binary (image/png blob),
//              test://watched-resource (text/plain; resources/subscribe + unsubscribe accepted)
//   templates  test://template/{id}/data (application/json, echoes the id)
//   prompts    test_simple_prompt, test_prompt_with_arguments {arg1, arg2},
//              test_prompt_with_embedded_resource {resourceUri}, test_prompt_with_image
//   completion completion/complete for test_prompt_with_arguments arg1/arg2 and the template's id
//   logging    logging/setLevel -> {} (level honoured for the tool's log notifications)

import http from "node:http";
import readline from "node:readline";
import { randomUUID } from "node:crypto";
import { Server } from "@modelcontextprotocol/sdk/server/index.js";
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import {
  CallToolRequestSchema,
  CompleteRequestSchema,
  ErrorCode,
  GetPromptRequestSchema,
  ListPromptsRequestSchema,
  ListResourcesRequestSchema,
  ListResourceTemplatesRequestSchema,
  ListToolsRequestSchema,
  McpError,
  ReadResourceRequestSchema,
  SubscribeRequestSchema,
  UnsubscribeRequestSchema,
  isInitializeRequest,
} from "@modelcontextprotocol/sdk/types.js";

const USAGE = "usage: node server.mjs <port> [--no-event-store]";
const args = process.argv.slice(2);
if (args.length < 1 || !/^\d+$/.test(args[0]) || Number(args[0]) > 65535) {
  console.error(USAGE);
  process.exit(2);
}
const PORT = Number(args[0]);
let useEventStore = true;
for (const a of args.slice(1)) {
  if (a === "--no-event-store") useEventStore = false;
  else {
    console.error(`unknown option ${a}\n${USAGE}`);
    process.exit(2);
  }
}

const MAX_BODY = 4 * 1024 * 1024;
const RETRY_INTERVAL_MS = 1000;

// 1x1 PNG and a minimal (empty) PCM WAV, base64.
const PNG_1X1 =
  "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==";
const WAV_EMPTY = "UklGRiQAAABXQVZFZm10IBAAAAABAAEAQB8AAIA+AAACABAAZGF0YQAAAAA=";

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const text = (t) => ({ type: "text", text: t });
const noArgs = { type: "object", properties: {} };

// ---------------------------------------------------------------- tools
const TOOLS = [
  { name: "test_simple_text", description: "Returns one text content item", inputSchema: noArgs },
  { name: "test_image_content", description: "Returns one image/png content item", inputSchema: noArgs },
  { name: "test_audio_content", description: "Returns one audio/wav content item", inputSchema: noArgs },
  { name: "test_embedded_resource", description: "Returns one embedded text resource", inputSchema: noArgs },
  {
    name: "test_multiple_content_types",
    description: "Returns text, image and embedded resource content",
    inputSchema: noArgs,
  },
  {
    name: "test_tool_with_logging",
    description: "Sends three info log notifications while running",
    inputSchema: noArgs,
  },
  {
    name: "test_tool_with_progress",
    description: "Reports progress 0, 50, 100 of 100 to the request's progressToken",
    inputSchema: noArgs,
  },
  { name: "test_error_handling", description: "Always returns a tool error (isError: true)", inputSchema: noArgs },
  {
    name: "test_sampling",
    description: "Asks the client for an LLM completion (sampling/createMessage)",
    inputSchema: {
      type: "object",
      properties: { prompt: { type: "string", description: "The prompt to send to the LLM" } },
      required: ["prompt"],
    },
  },
  {
    name: "test_elicitation",
    description: "Asks the client for user input (elicitation/create)",
    inputSchema: {
      type: "object",
      properties: { message: { type: "string", description: "The message to show the user" } },
      required: ["message"],
    },
  },
  {
    name: "test_elicitation_sep1034_defaults",
    description: "Elicitation whose schema carries default values for every primitive type (SEP-1034)",
    inputSchema: noArgs,
  },
  {
    name: "test_elicitation_sep1330_enums",
    description: "Elicitation with every enum schema variant (SEP-1330)",
    inputSchema: noArgs,
  },
  {
    name: "test_reconnection",
    description: "Closes its SSE stream mid-call; the result arrives after Last-Event-ID resumption (SEP-1699)",
    inputSchema: noArgs,
  },
  {
    name: "json_schema_2020_12_tool",
    description: "Tool whose inputSchema uses JSON Schema 2020-12 features (SEP-1613)",
    inputSchema: {
      $schema: "https://json-schema.org/draft/2020-12/schema",
      type: "object",
      $defs: {
        address: {
          type: "object",
          properties: { street: { type: "string" }, city: { type: "string" } },
        },
      },
      properties: { name: { type: "string" }, address: { $ref: "#/$defs/address" } },
      additionalProperties: false,
    },
  },
];

const ELICIT_SEP1034_SCHEMA = {
  type: "object",
  properties: {
    name: { type: "string", description: "User name", default: "John Doe" },
    age: { type: "integer", description: "User age", default: 30 },
    score: { type: "number", description: "User score", default: 95.5 },
    status: {
      type: "string",
      description: "User status",
      enum: ["active", "inactive", "pending"],
      default: "active",
    },
    verified: { type: "boolean", description: "Verification status", default: true },
  },
  required: [],
};

const ELICIT_SEP1330_SCHEMA = {
  type: "object",
  properties: {
    untitledSingle: { type: "string", description: "Untitled single-select", enum: ["option1", "option2", "option3"] },
    titledSingle: {
      type: "string",
      description: "Titled single-select",
      oneOf: [
        { const: "value1", title: "First Option" },
        { const: "value2", title: "Second Option" },
        { const: "value3", title: "Third Option" },
      ],
    },
    legacyEnum: {
      type: "string",
      description: "Legacy titled enum (enumNames, deprecated)",
      enum: ["opt1", "opt2", "opt3"],
      enumNames: ["Option One", "Option Two", "Option Three"],
    },
    untitledMulti: {
      type: "array",
      description: "Untitled multi-select",
      items: { type: "string", enum: ["option1", "option2", "option3"] },
    },
    titledMulti: {
      type: "array",
      description: "Titled multi-select",
      items: {
        anyOf: [
          { const: "value1", title: "First Choice" },
          { const: "value2", title: "Second Choice" },
          { const: "value3", title: "Third Choice" },
        ],
      },
    },
  },
  required: [],
};

// ---------------------------------------------------------------- resources & prompts
const RESOURCES = [
  {
    uri: "test://static-text",
    name: "static-text",
    title: "Static Text Resource",
    description: "A static text resource",
    mimeType: "text/plain",
  },
  {
    uri: "test://static-binary",
    name: "static-binary",
    title: "Static Binary Resource",
    description: "A static binary resource (1x1 PNG)",
    mimeType: "image/png",
  },
  {
    uri: "test://watched-resource",
    name: "watched-resource",
    title: "Watched Resource",
    description: "A resource clients may subscribe to",
    mimeType: "text/plain",
  },
];
const TEMPLATE = {
  uriTemplate: "test://template/{id}/data",
  name: "template",
  title: "Resource Template",
  description: "A resource template; {id} is echoed in the content",
  mimeType: "application/json",
};
const TEMPLATE_RE = /^test:\/\/template\/([^/]+)\/data$/;

const PROMPTS = [
  { name: "test_simple_prompt", title: "Simple Prompt", description: "A prompt without arguments" },
  {
    name: "test_prompt_with_arguments",
    title: "Prompt With Arguments",
    description: "A prompt with two required arguments",
    arguments: [
      { name: "arg1", description: "First argument", required: true },
      { name: "arg2", description: "Second argument", required: true },
    ],
  },
  {
    name: "test_prompt_with_embedded_resource",
    title: "Prompt With Embedded Resource",
    description: "A prompt that embeds a resource",
    arguments: [{ name: "resourceUri", description: "URI of the resource to embed", required: true }],
  },
  { name: "test_prompt_with_image", title: "Prompt With Image", description: "A prompt with image content" },
];

const COMPLETIONS = {
  arg1: ["paris", "park", "party", "test", "testing", "tester"],
  arg2: ["alpha", "beta", "gamma"],
  id: ["123", "456", "789"],
};

// ---------------------------------------------------------------- one MCP server per session
function createServer() {
  const server = new Server(
    { name: "portcullis-conformance-server", version: "1.0.0" },
    {
      capabilities: {
        tools: { listChanged: true },
        resources: { subscribe: true, listChanged: true },
        prompts: { listChanged: true },
        logging: {},
        completions: {},
      },
    },
  );
  const subscriptions = new Set();

  const log = async (extra, level, data) => {
    if (server.isMessageIgnored(level, extra.sessionId)) return;
    await extra.sendNotification({
      method: "notifications/message",
      params: { level, logger: "conformance-server", data },
    });
  };

  server.setRequestHandler(ListToolsRequestSchema, async () => ({ tools: TOOLS }));

  server.setRequestHandler(CallToolRequestSchema, async (req, extra) => {
    const name = req.params.name;
    const a = req.params.arguments ?? {};
    const related = { relatedRequestId: extra.requestId };
    switch (name) {
      case "test_simple_text":
        return { content: [text("This is a simple text response for testing.")] };
      case "test_image_content":
        return { content: [{ type: "image", data: PNG_1X1, mimeType: "image/png" }] };
      case "test_audio_content":
        return { content: [{ type: "audio", data: WAV_EMPTY, mimeType: "audio/wav" }] };
      case "test_embedded_resource":
        return {
          content: [
            {
              type: "resource",
              resource: {
                uri: "test://embedded-resource",
                mimeType: "text/plain",
                text: "This is an embedded resource content.",
              },
            },
          ],
        };
      case "test_multiple_content_types":
        return {
          content: [
            text("Multiple content types test:"),
            { type: "image", data: PNG_1X1, mimeType: "image/png" },
            {
              type: "resource",
              resource: {
                uri: "test://mixed-content-resource",
                mimeType: "application/json",
                text: JSON.stringify({ test: "data", value: 123 }),
              },
            },
          ],
        };
      case "test_tool_with_logging":
        await log(extra, "info", "Tool execution started");
        await sleep(50);
        await log(extra, "info", "Tool processing data");
        await sleep(50);
        await log(extra, "info", "Tool execution completed");
        return { content: [text("Tool with logging executed successfully")] };
      case "test_tool_with_progress": {
        const token = extra._meta?.progressToken;
        for (const progress of [0, 50, 100]) {
          if (progress > 0) await sleep(50);
          if (token !== undefined) {
            await extra.sendNotification({
              method: "notifications/progress",
              params: { progressToken: token, progress, total: 100, message: `${progress}/100` },
            });
          }
        }
        return { content: [text(`Progress reported to token ${JSON.stringify(token ?? null)}`)] };
      }
      case "test_error_handling":
        return { isError: true, content: [text("This tool intentionally returns an error for testing")] };
      case "test_sampling": {
        if (typeof a.prompt !== "string") throw new McpError(ErrorCode.InvalidParams, "prompt (string) is required");
        const r = await server.createMessage(
          { messages: [{ role: "user", content: text(a.prompt) }], maxTokens: 100 },
          related,
        );
        const reply = Array.isArray(r.content) ? r.content.find((c) => c.type === "text")?.text : r.content?.text;
        return { content: [text(`LLM response: ${reply ?? "(no text)"}`)] };
      }
      case "test_elicitation": {
        if (typeof a.message !== "string") throw new McpError(ErrorCode.InvalidParams, "message (string) is required");
        const r = await server.elicitInput(
          {
            message: a.message,
            requestedSchema: {
              type: "object",
              properties: {
                username: { type: "string", description: "User name" },
                email: { type: "string", description: "Email address" },
              },
              required: [],
            },
          },
          related,
        );
        return { content: [text(`User response: action=${r.action}, content=${JSON.stringify(r.content ?? {})}`)] };
      }
      case "test_elicitation_sep1034_defaults": {
        const r = await server.elicitInput(
          { message: "Please review and update the form fields with defaults", requestedSchema: ELICIT_SEP1034_SCHEMA },
          related,
        );
        return { content: [text(`Elicitation completed: action=${r.action}, content=${JSON.stringify(r.content ?? {})}`)] };
      }
      case "test_elicitation_sep1330_enums": {
        const r = await server.elicitInput(
          { message: "Please select options from the enum fields", requestedSchema: ELICIT_SEP1330_SCHEMA },
          related,
        );
        return { content: [text(`Elicitation completed: action=${r.action}, content=${JSON.stringify(r.content ?? {})}`)] };
      }
      case "test_reconnection":
        // Only offered by the SDK when an event store is configured and the client speaks >= 2025-11-25.
        extra.closeSSEStream?.();
        await sleep(100);
        return { content: [text("Reconnection test completed: result delivered after the stream was closed.")] };
      case "json_schema_2020_12_tool":
        return { content: [text(`json_schema_2020_12_tool called with: ${JSON.stringify(a)}`)] };
      default:
        throw new McpError(ErrorCode.InvalidParams, `Unknown tool: ${name}`);
    }
  });

  server.setRequestHandler(ListResourcesRequestSchema, async () => ({ resources: RESOURCES }));
  server.setRequestHandler(ListResourceTemplatesRequestSchema, async () => ({ resourceTemplates: [TEMPLATE] }));
  server.setRequestHandler(ReadResourceRequestSchema, async (req) => {
    const uri = req.params.uri;
    switch (uri) {
      case "test://static-text":
        return { contents: [{ uri, mimeType: "text/plain", text: "This is the content of the static text resource." }] };
      case "test://static-binary":
        return { contents: [{ uri, mimeType: "image/png", blob: PNG_1X1 }] };
      case "test://watched-resource":
        return { contents: [{ uri, mimeType: "text/plain", text: "Watched resource content" }] };
    }
    const m = TEMPLATE_RE.exec(uri);
    if (m) {
      const id = decodeURIComponent(m[1]);
      return {
        contents: [
          { uri, mimeType: "application/json", text: JSON.stringify({ id, templateTest: true, data: `Data for ID: ${id}` }) },
        ],
      };
    }
    throw new McpError(-32002, `Resource not found: ${uri}`, { uri });
  });
  server.setRequestHandler(SubscribeRequestSchema, async (req) => {
    subscriptions.add(req.params.uri);
    return {};
  });
  server.setRequestHandler(UnsubscribeRequestSchema, async (req) => {
    subscriptions.delete(req.params.uri);
    return {};
  });

  server.setRequestHandler(ListPromptsRequestSchema, async () => ({ prompts: PROMPTS }));
  server.setRequestHandler(GetPromptRequestSchema, async (req) => {
    const a = req.params.arguments ?? {};
    const need = (k) => {
      if (typeof a[k] !== "string") throw new McpError(ErrorCode.InvalidParams, `Missing required argument: ${k}`);
      return a[k];
    };
    switch (req.params.name) {
      case "test_simple_prompt":
        return { messages: [{ role: "user", content: text("This is a simple prompt for testing.") }] };
      case "test_prompt_with_arguments": {
        const arg1 = need("arg1");
        const arg2 = need("arg2");
        return { messages: [{ role: "user", content: text(`Prompt with arguments: arg1='${arg1}', arg2='${arg2}'`) }] };
      }
      case "test_prompt_with_embedded_resource": {
        const uri = need("resourceUri");
        return {
          messages: [
            {
              role: "user",
              content: {
                type: "resource",
                resource: { uri, mimeType: "text/plain", text: "Embedded resource content for testing." },
              },
            },
            { role: "user", content: text("Please process the embedded resource above.") },
          ],
        };
      }
      case "test_prompt_with_image":
        return {
          messages: [
            { role: "user", content: { type: "image", data: PNG_1X1, mimeType: "image/png" } },
            { role: "user", content: text("Please analyze the image above.") },
          ],
        };
      default:
        throw new McpError(ErrorCode.InvalidParams, `Unknown prompt: ${req.params.name}`);
    }
  });

  server.setRequestHandler(CompleteRequestSchema, async (req) => {
    const { ref, argument } = req.params;
    let pool = [];
    if (ref.type === "ref/prompt" && ref.name === "test_prompt_with_arguments") pool = COMPLETIONS[argument.name] ?? [];
    else if (ref.type === "ref/resource" && ref.uri === TEMPLATE.uriTemplate && argument.name === "id") pool = COMPLETIONS.id;
    const values = pool.filter((v) => v.startsWith(argument.value ?? ""));
    return { completion: { values, total: values.length, hasMore: false } };
  });

  return server;
}

// ---------------------------------------------------------------- event store (SEP-1699 resumption)
function createEventStore() {
  const events = []; // { id, streamId, message }, in order
  let seq = 0;
  return {
    async storeEvent(streamId, message) {
      const id = `${streamId}::${String(++seq).padStart(8, "0")}`;
      events.push({ id, streamId, message });
      return id;
    },
    async getStreamIdForEventId(eventId) {
      return events.find((e) => e.id === eventId)?.streamId;
    },
    async replayEventsAfter(lastEventId, { send }) {
      const at = events.findIndex((e) => e.id === lastEventId);
      if (at < 0) throw new Error(`unknown Last-Event-ID ${lastEventId}`);
      const streamId = events[at].streamId;
      for (const e of events.slice(at + 1)) {
        if (e.streamId === streamId && Object.keys(e.message).length > 0) await send(e.id, e.message);
      }
      return streamId;
    },
  };
}

// ---------------------------------------------------------------- HTTP
const sessions = new Map(); // session id -> { transport, server }

function jsonError(res, status, code, message) {
  if (res.headersSent) return;
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify({ jsonrpc: "2.0", error: { code, message }, id: null }));
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on("data", (c) => {
      size += c.length;
      if (size > MAX_BODY) {
        reject(Object.assign(new Error("body too large"), { status: 413 }));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}

async function handle(req, res) {
  const path = new URL(req.url, "http://x").pathname;
  if (path !== "/mcp") {
    res.writeHead(404, { "content-type": "text/plain" });
    res.end("not found\n");
    return;
  }
  const sid = req.headers["mcp-session-id"];
  if (req.method === "POST") {
    let body;
    try {
      body = JSON.parse(await readBody(req));
    } catch (e) {
      if (e.status === 413) return jsonError(res, 413, -32600, "Request body too large");
      return jsonError(res, 400, -32700, "Parse error");
    }
    if (sid === undefined) {
      const isInit = Array.isArray(body) ? body.some(isInitializeRequest) : isInitializeRequest(body);
      if (!isInit) return jsonError(res, 400, -32000, "Bad Request: Mcp-Session-Id header is required");
      const server = createServer();
      const transport = new StreamableHTTPServerTransport({
        sessionIdGenerator: () => randomUUID(),
        ...(useEventStore ? { eventStore: createEventStore(), retryInterval: RETRY_INTERVAL_MS } : {}),
        onsessioninitialized: (id) => sessions.set(id, { transport, server }),
        onsessionclosed: (id) => sessions.delete(id),
      });
      transport.onclose = () => {
        if (transport.sessionId) sessions.delete(transport.sessionId);
      };
      await server.connect(transport);
      await transport.handleRequest(req, res, body);
      return;
    }
    const s = sessions.get(sid);
    if (!s) return jsonError(res, 404, -32001, "Session not found");
    await s.transport.handleRequest(req, res, body);
    return;
  }
  if (req.method === "GET" || req.method === "DELETE") {
    if (sid === undefined) return jsonError(res, 400, -32000, "Bad Request: Mcp-Session-Id header is required");
    const s = sessions.get(sid);
    if (!s) return jsonError(res, 404, -32001, "Session not found");
    await s.transport.handleRequest(req, res);
    return;
  }
  res.writeHead(405, { allow: "GET, POST, DELETE", "content-type": "application/json" });
  res.end(JSON.stringify({ jsonrpc: "2.0", error: { code: -32000, message: "Method not allowed." }, id: null }));
}

const httpServer = http.createServer((req, res) => {
  handle(req, res)
    .catch((err) => {
      console.error("request error:", err);
      jsonError(res, 500, -32603, "Internal server error");
    })
    .finally(() => console.error(`${req.method} ${req.url} -> ${res.statusCode}`));
});

httpServer.listen(PORT, "127.0.0.1", () => {
  process.stdout.write(`READY ${httpServer.address().port}\n`);
});

function shutdown() {
  for (const { transport } of sessions.values()) transport.close().catch(() => {});
  httpServer.close();
  httpServer.closeAllConnections?.();
  process.exit(0);
}
process.on("SIGTERM", shutdown);
process.on("SIGINT", shutdown);
readline.createInterface({ input: process.stdin }).on("line", (line) => {
  if (line.trim() === "quit") shutdown();
});
