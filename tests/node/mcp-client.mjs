#!/usr/bin/env node
// A real MCP client built on the official @modelcontextprotocol/sdk `Client`.
//
// Usage:
//   node mcp-client.mjs http <url> [--header "Name: value"]...     (also accepts -H "Name: value")
//       Streamable HTTP transport (StreamableHTTPClientTransport). The headers are sent on every
//       request via requestInit.headers. No authProvider is configured, so a 401 is NOT turned
//       into an OAuth discovery/authorization flow; it is reported as an error with status 401.
//   node mcp-client.mjs stdio <command> [args...]
//       stdio transport (StdioClientTransport) spawning <command>. The child's stderr is inherited
//       (passes straight through to our stderr) and the child gets our full environment (the SDK
//       default would only pass HOME/LOGNAME/PATH/SHELL/TERM/USER).
//
// In both modes: initialize, tools/list, tools/call echo {message: "hello portcullis"}, close.
// Exactly one JSON line is printed on stdout:
//   success: {"ok":true,"serverName":"...","tools":["echo",...],"echo":"Echo: hello portcullis"}
//            (exit code 0; `echo` is the concatenated text content of the echo tool result)
//   failure: {"ok":false,"error":"<message>","status":<HTTP status or null>}   (exit code 1)
// A global 15 s timeout guarantees the process never hangs.
// Diagnostics go to stderr.

import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import {
  StreamableHTTPClientTransport,
  StreamableHTTPError,
} from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";

const TIMEOUT_MS = 15_000;
const ECHO_MESSAGE = "hello portcullis";

let finished = false;
function finish(result, code) {
  if (finished) return;
  finished = true;
  process.stdout.write(JSON.stringify(result) + "\n", () => process.exit(code));
  // In case the write callback never fires (e.g. stdout closed), exit anyway.
  setTimeout(() => process.exit(code), 1000).unref();
}

function statusOf(err) {
  // StreamableHTTPError.code carries the HTTP status (it uses -1 for non-HTTP conditions such as
  // an unexpected content type). Walk `cause` chains too, in case the SDK wraps the error.
  for (let e = err, depth = 0; e && depth < 5; e = e.cause, depth++) {
    if (e instanceof StreamableHTTPError || e?.name === "StreamableHTTPError") {
      if (typeof e.code === "number" && e.code >= 100 && e.code <= 599) return e.code;
    }
    if (typeof e?.status === "number" && e.status >= 100 && e.status <= 599) return e.status;
  }
  return null;
}

function fail(err) {
  let message = err instanceof Error ? err.message : String(err);
  // undici's "fetch failed" hides the real reason (ECONNREFUSED, ...) in `cause`.
  const cause = err?.cause;
  if (cause && (cause.code || cause.message)) message += ` (${cause.code ?? cause.message})`;
  if (err instanceof Error && err.stack) console.error(err.stack);
  finish({ ok: false, error: message, status: statusOf(err) }, 1);
}

function usage(msg) {
  if (msg) console.error(msg);
  console.error(
    'usage: node mcp-client.mjs http <url> [--header "Name: value"]...\n' +
      "       node mcp-client.mjs stdio <command> [args...]",
  );
  finish({ ok: false, error: msg ?? "bad usage", status: null }, 1);
}

const timer = setTimeout(() => {
  fail(new Error(`timeout after ${TIMEOUT_MS} ms`));
}, TIMEOUT_MS);

process.on("unhandledRejection", (err) => fail(err));
process.on("uncaughtException", (err) => fail(err));

function buildTransport(argv) {
  const [mode, ...rest] = argv;
  if (mode === "http") {
    const [url, ...opts] = rest;
    if (!url) return usage("missing <url>");
    const headers = {};
    for (let i = 0; i < opts.length; i++) {
      const flag = opts[i];
      if (flag === "--header" || flag === "-H") {
        const h = opts[++i];
        if (h === undefined) return usage(`${flag} needs a value`);
        const idx = h.indexOf(":");
        if (idx <= 0) return usage(`bad header (expected "Name: value"): ${h}`);
        headers[h.slice(0, idx).trim()] = h.slice(idx + 1).trim();
      } else {
        return usage(`unknown option: ${flag}`);
      }
    }
    return {
      mode,
      transport: new StreamableHTTPClientTransport(new URL(url), {
        requestInit: { headers },
      }),
    };
  }
  if (mode === "stdio") {
    const [command, ...args] = rest;
    if (!command) return usage("missing <command>");
    return {
      mode,
      transport: new StdioClientTransport({
        command,
        args,
        env: { ...process.env },
        stderr: "inherit",
      }),
    };
  }
  return usage(`unknown mode: ${mode ?? "(none)"}`);
}

async function main() {
  const built = buildTransport(process.argv.slice(2));
  if (!built) return;
  const { mode, transport } = built;

  transport.onerror = (err) => console.error("mcp-client: transport error:", err?.message ?? err);

  const client = new Client({ name: "portcullis-test-client", version: "0.0.0" });
  const reqOpts = { timeout: TIMEOUT_MS };

  await client.connect(transport, reqOpts);
  const serverName = client.getServerVersion()?.name ?? null;

  const { tools } = await client.listTools(undefined, reqOpts);
  const toolNames = tools.map((t) => t.name);

  const result = await client.callTool(
    { name: "echo", arguments: { message: ECHO_MESSAGE } },
    undefined,
    reqOpts,
  );
  if (result.isError) {
    throw new Error(`echo tool returned isError: ${JSON.stringify(result.content)}`);
  }
  const echo = (result.content ?? [])
    .filter((c) => c.type === "text")
    .map((c) => c.text)
    .join("");

  if (mode === "http") {
    // Best effort: end the server-side session with DELETE (servers may answer 405).
    try {
      await transport.terminateSession();
    } catch (err) {
      console.error("mcp-client: terminateSession failed (ignored):", err?.message ?? err);
    }
  }
  await client.close();

  clearTimeout(timer);
  finish({ ok: true, serverName, tools: toolNames, echo }, 0);
}

main().catch(fail);
