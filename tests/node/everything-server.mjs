#!/usr/bin/env node
// Starts the real @modelcontextprotocol/server-everything in Streamable HTTP mode.
//
// Usage:   node everything-server.mjs <port>        (or: PORT=<port> node everything-server.mjs)
//          Port 0 is allowed: the OS picks a free port and it is reported in the READY line.
//
// MCP endpoint:  http://127.0.0.1:<port>/mcp   (POST = JSON-RPC, GET = SSE stream, DELETE = end session;
//                the server is stateful and uses the `Mcp-Session-Id` header).
//
// stdout: exactly one line `READY <port>` once the socket is accepting connections. Everything the
//         package itself logs (it uses console.log heavily) is redirected to stderr.
//
// How it works: the package's bin is `dist/index.js` (`mcp-server-everything`), which takes the
// transport as argv[2] (`stdio` | `sse` | `streamableHttp`). The streamableHttp transport
// (dist/transports/streamableHttp.js) is an Express app that reads the port from
// `process.env.PORT` (default 3001) and calls `app.listen(PORT)` WITHOUT a host, i.e. it would
// bind every interface. We therefore run the package's own entry point in-process (single PID, so
// killing this process kills the server) after patching net.Server.prototype.listen so that the
// listen call binds 127.0.0.1 only.

import net from "node:net";
import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";
import path from "node:path";

const portArg = process.argv[2] ?? process.env.PORT;
if (portArg === undefined || !/^\d+$/.test(String(portArg)) || Number(portArg) > 65535) {
  console.error("usage: node everything-server.mjs <port>   (or set PORT)");
  process.exit(2);
}
const HOST = "127.0.0.1";

// Keep stdout clean for the READY line: the package logs everything with console.log.
const writeStdout = process.stdout.write.bind(process.stdout);
console.log = (...args) => console.error(...args);
console.info = (...args) => console.error(...args);

// Force the (single) listen() call made by the package onto loopback.
const originalListen = net.Server.prototype.listen;
let patched = false;
net.Server.prototype.listen = function (...args) {
  if (!patched) {
    patched = true;
    const cb = typeof args[args.length - 1] === "function" ? args.pop() : undefined;
    const first = args[0];
    let opts;
    if (first !== null && typeof first === "object") {
      opts = { ...first, host: HOST };
    } else {
      opts = { port: Number(first), host: HOST };
    }
    this.once("listening", () => {
      const addr = this.address();
      console.error(`everything-server: bound ${addr.address}:${addr.port}`);
      writeStdout(`READY ${addr.port}\n`);
    });
    return cb ? originalListen.call(this, opts, cb) : originalListen.call(this, opts);
  }
  return originalListen.apply(this, args);
};

// Run the package's own bin entry point with the streamableHttp transport.
process.env.PORT = String(portArg);
process.argv = [process.argv[0], "mcp-server-everything", "streamableHttp"];
const require = createRequire(import.meta.url);
const pkgJsonPath = require.resolve("@modelcontextprotocol/server-everything/package.json");
const pkg = require(pkgJsonPath);
const binRel = typeof pkg.bin === "string" ? pkg.bin : pkg.bin["mcp-server-everything"];
const entry = pathToFileURL(path.join(path.dirname(pkgJsonPath), binRel)).href;

const shutdown = () => process.exit(0);
process.on("SIGTERM", shutdown);

await import(entry);
