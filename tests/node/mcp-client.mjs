#!/usr/bin/env node
// A real MCP client built on the official @modelcontextprotocol/sdk `Client`.
//
// Usage:
//   node mcp-client.mjs [options] http <url> [--header "Name: value"]... [options]
//       Streamable HTTP transport (StreamableHTTPClientTransport). The headers are sent on every
//       request via requestInit.headers (also accepts -H "Name: value"). No authProvider is
//       configured, so a 401 (or a 403 insufficient_scope) is NOT turned into an OAuth
//       discovery/authorization/step-up flow; it is reported as an error with that status.
//   node mcp-client.mjs [options] stdio <command> [args...]
//       stdio transport (StdioClientTransport) spawning <command>. The child's stderr is inherited
//       (passes straight through to our stderr) and the child gets our full environment (the SDK
//       default would only pass HOME/LOGNAME/PATH/SHELL/TERM/USER). Options must come BEFORE
//       `stdio` here (everything after <command> belongs to the child).
//
// Default run (no options): initialize, tools/list, tools/call echo {message: "hello portcullis"},
// close. Exactly one JSON line is printed on stdout:
//   success: {"ok":true,"serverName":"...","tools":["echo",...],"echo":"Echo: hello portcullis"}
//            (exit code 0; `echo` is the concatenated text content of the echo tool result)
//   failure: {"ok":false,"error":"<message>","status":<HTTP status or null>}   (exit code 1)
//
// Options (all optional; each adds keys to the success line, in this order):
//   --list-all             also prompts/list, resources/list, resources/templates/list ->
//                          "prompts":[names], "resources":[uris], "resourceTemplates":[uriTemplates]
//                          (after "tools"). A failing list fails the whole run, like tools/list.
//   --call TOOL            call TOOL instead of echo (the default echo call and the "echo" key are
//   --args JSON            then skipped); arguments JSON object, default {} -> "call":<outcome>
//   --get-prompt NAME      prompts/get NAME -> "prompt":<outcome>
//   --prompt-args JSON     its arguments (JSON object of strings), default {}
//   --read-resource URI    resources/read URI -> "resource":<outcome>
// Lists follow nextCursor (all pages are collected). A failing --call/--get-prompt/--read-resource
// does NOT fail the run (exit 0, "ok":true): the listings are still reported and the failure is in
// its <outcome>:
//   {"ok":true,"text":"..."}     text = tool: concatenated text content blocks; prompt: the text of
//                                each message joined with "\n"; resource: the text of each content
//                                item joined with "\n"
//   {"ok":false,"error":"<message>","status":<HTTP status or null>[,"code":<JSON-RPC error code>]
//    [,"wwwAuthenticate":"<WWW-Authenticate of the failed HTTP response>"][,"isError":true]}
//       status: HTTP status when the POST itself failed (e.g. 403 for a step-up challenge; then
//       wwwAuthenticate carries e.g. `Bearer error="insufficient_scope", scope="..."`);
//       code: present when the server/gateway answered a JSON-RPC error (e.g. -32602);
//       isError: the tool ran but returned a result with isError:true (error = its text).
// Example: {"ok":true,"serverName":"portcullis-test-mcp-server","tools":["echo","add"],
//           "prompts":["greeting"],"resources":["file:///public/readme.md"],
//           "resourceTemplates":["file:///public/{name}"],"call":{"ok":false,"error":"...","status":403,
//           "wwwAuthenticate":"Bearer error=\"insufficient_scope\", scope=\"tools:deploy\""}}
//
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
const MAX_PAGES = 100;

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

function messageOf(err) {
  let message = err instanceof Error ? err.message : String(err);
  // undici's "fetch failed" hides the real reason (ECONNREFUSED, ...) in `cause`.
  const cause = err?.cause;
  if (cause && (cause.code || cause.message)) message += ` (${cause.code ?? cause.message})`;
  return message;
}

function fail(err) {
  if (err instanceof Error && err.stack) console.error(err.stack);
  finish({ ok: false, error: messageOf(err), status: statusOf(err) }, 1);
}

function usage(msg) {
  if (msg) console.error(msg);
  console.error(
    'usage: node mcp-client.mjs [options] http <url> [--header "Name: value"]... [options]\n' +
      "       node mcp-client.mjs [options] stdio <command> [args...]\n" +
      "options: --list-all | --call TOOL [--args JSON] | --get-prompt NAME [--prompt-args JSON] |\n" +
      "         --read-resource URI",
  );
  finish({ ok: false, error: msg ?? "bad usage", status: null }, 1);
}

const timer = setTimeout(() => {
  fail(new Error(`timeout after ${TIMEOUT_MS} ms`));
}, TIMEOUT_MS);

process.on("unhandledRejection", (err) => fail(err));
process.on("uncaughtException", (err) => fail(err));

// Parses one of the report options at argv[i]. Returns the index of its last token, or -1 when
// argv[i] is not a report option, or null after a usage error.
function parseOption(argv, i, opts) {
  const flag = argv[i];
  const value = () => {
    const v = argv[i + 1];
    if (v === undefined) {
      usage(`${flag} needs a value`);
      return null;
    }
    return v;
  };
  const jsonObject = (v) => {
    let parsed;
    try {
      parsed = JSON.parse(v);
    } catch (err) {
      usage(`${flag}: invalid JSON: ${err.message}`);
      return null;
    }
    if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
      usage(`${flag}: expected a JSON object`);
      return null;
    }
    return parsed;
  };
  switch (flag) {
    case "--list-all":
      opts.listAll = true;
      return i;
    case "--call":
    case "--get-prompt":
    case "--read-resource": {
      const v = value();
      if (v === null) return null;
      opts[{ "--call": "call", "--get-prompt": "prompt", "--read-resource": "resource" }[flag]] = v;
      return i + 1;
    }
    case "--args":
    case "--prompt-args": {
      const v = value();
      if (v === null) return null;
      const obj = jsonObject(v);
      if (obj === null) return null;
      opts[flag === "--args" ? "callArgs" : "promptArgs"] = obj;
      return i + 1;
    }
    default:
      return -1;
  }
}

// Records the status and WWW-Authenticate header of the latest failed POST (http mode), so that a
// failed call can report the challenge (e.g. a 403 insufficient_scope step-up).
let lastFailedPost = null;
function recordingFetch(url, init) {
  return fetch(url, init).then((res) => {
    if ((init?.method ?? "GET").toUpperCase() === "POST" && !res.ok) {
      lastFailedPost = { status: res.status, wwwAuthenticate: res.headers.get("www-authenticate") };
    }
    return res;
  });
}

function parseArgs(argv) {
  const opts = {};
  let i = 0;
  for (; i < argv.length && argv[i].startsWith("--"); i++) {
    const end = parseOption(argv, i, opts);
    if (end === null) return null;
    if (end < 0) return usage(`unknown option: ${argv[i]}`);
    i = end;
  }
  const [mode, ...rest] = argv.slice(i);
  if (mode === "http") {
    const [url, ...more] = rest;
    if (!url) return usage("missing <url>");
    const headers = {};
    for (let j = 0; j < more.length; j++) {
      const flag = more[j];
      if (flag === "--header" || flag === "-H") {
        const h = more[++j];
        if (h === undefined) return usage(`${flag} needs a value`);
        const idx = h.indexOf(":");
        if (idx <= 0) return usage(`bad header (expected "Name: value"): ${h}`);
        headers[h.slice(0, idx).trim()] = h.slice(idx + 1).trim();
      } else {
        const end = parseOption(more, j, opts);
        if (end === null) return null;
        if (end < 0) return usage(`unknown option: ${flag}`);
        j = end;
      }
    }
    if (!checkOpts(opts)) return null;
    return {
      mode,
      opts,
      transport: new StreamableHTTPClientTransport(new URL(url), {
        requestInit: { headers },
        fetch: recordingFetch,
      }),
    };
  }
  if (mode === "stdio") {
    const [command, ...args] = rest;
    if (!command) return usage("missing <command>");
    if (!checkOpts(opts)) return null;
    return {
      mode,
      opts,
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

function checkOpts(opts) {
  if (opts.callArgs !== undefined && opts.call === undefined) {
    usage("--args needs --call TOOL");
    return false;
  }
  if (opts.promptArgs !== undefined && opts.prompt === undefined) {
    usage("--prompt-args needs --get-prompt NAME");
    return false;
  }
  return true;
}

// Collects every page of a list method.
async function listAll(fetchPage, key) {
  const items = [];
  let cursor;
  for (let page = 0; page < MAX_PAGES; page++) {
    const result = await fetchPage(cursor === undefined ? undefined : { cursor });
    items.push(...(result[key] ?? []));
    cursor = result.nextCursor;
    if (cursor === undefined || cursor === null) break;
  }
  return items;
}

const textOfContent = (content) =>
  (content ?? [])
    .filter((c) => c?.type === "text")
    .map((c) => c.text)
    .join("");

// Runs one optional operation; a failure becomes {"ok":false,...} instead of failing the run.
async function outcome(label, fn) {
  lastFailedPost = null;
  try {
    return await fn();
  } catch (err) {
    console.error(`mcp-client: ${label} failed:`, err?.message ?? err);
    const result = { ok: false, error: messageOf(err), status: statusOf(err) };
    if (typeof err?.code === "number" && err?.name === "McpError") result.code = err.code;
    if (
      result.status !== null &&
      lastFailedPost?.status === result.status &&
      lastFailedPost.wwwAuthenticate
    ) {
      result.wwwAuthenticate = lastFailedPost.wwwAuthenticate;
    }
    return result;
  }
}

async function main() {
  const built = parseArgs(process.argv.slice(2));
  if (!built) return;
  const { mode, opts, transport } = built;

  transport.onerror = (err) => console.error("mcp-client: transport error:", err?.message ?? err);

  const client = new Client({ name: "portcullis-test-client", version: "0.0.0" });
  const reqOpts = { timeout: TIMEOUT_MS };

  await client.connect(transport, reqOpts);
  const serverName = client.getServerVersion()?.name ?? null;
  const report = { ok: true, serverName };

  const tools = await listAll((p) => client.listTools(p, reqOpts), "tools");
  report.tools = tools.map((t) => t.name);

  if (opts.listAll) {
    const prompts = await listAll((p) => client.listPrompts(p, reqOpts), "prompts");
    report.prompts = prompts.map((p) => p.name);
    const resources = await listAll((p) => client.listResources(p, reqOpts), "resources");
    report.resources = resources.map((r) => r.uri);
    const templates = await listAll(
      (p) => client.listResourceTemplates(p, reqOpts),
      "resourceTemplates",
    );
    report.resourceTemplates = templates.map((t) => t.uriTemplate);
  }

  if (opts.call === undefined) {
    const result = await client.callTool(
      { name: "echo", arguments: { message: ECHO_MESSAGE } },
      undefined,
      reqOpts,
    );
    if (result.isError) {
      throw new Error(`echo tool returned isError: ${JSON.stringify(result.content)}`);
    }
    report.echo = textOfContent(result.content);
  } else {
    report.call = await outcome(`tools/call ${opts.call}`, async () => {
      const result = await client.callTool(
        { name: opts.call, arguments: opts.callArgs ?? {} },
        undefined,
        reqOpts,
      );
      const text = textOfContent(result.content);
      return result.isError
        ? { ok: false, error: text, status: null, isError: true }
        : { ok: true, text };
    });
  }

  if (opts.prompt !== undefined) {
    report.prompt = await outcome(`prompts/get ${opts.prompt}`, async () => {
      const result = await client.getPrompt(
        { name: opts.prompt, arguments: opts.promptArgs ?? {} },
        reqOpts,
      );
      const text = (result.messages ?? [])
        .map((m) => (m?.content?.type === "text" ? m.content.text : ""))
        .join("\n");
      return { ok: true, text };
    });
  }

  if (opts.resource !== undefined) {
    report.resource = await outcome(`resources/read ${opts.resource}`, async () => {
      const result = await client.readResource({ uri: opts.resource }, reqOpts);
      const text = (result.contents ?? [])
        .filter((c) => typeof c?.text === "string")
        .map((c) => c.text)
        .join("\n");
      return { ok: true, text };
    });
  }

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
  finish(report, 0);
}

main().catch(fail);
