#!/usr/bin/env node
// The latency of MCP `tools/call`, for bench/run's scenario 5: one client, calls back to back.
//
// Usage:  node mcp-latency.mjs <url> <calls> [-H "Name: value"]...
// stdout: one line `RESULT {"calls":N,"p50":µs,"p99":µs,"mean":µs}`. Every call must succeed
//         (the process exits 1 on the first failure), so a figure never hides an error.
// The session is initialised and 100 calls warm up connections and caches before the measured ones.

import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

const [url, callsArg, ...rest] = process.argv.slice(2);
const calls = Number(callsArg);
if (!url || !Number.isInteger(calls) || calls < 1) {
  console.error("usage: node mcp-latency.mjs <url> <calls> [-H 'Name: value']...");
  process.exit(2);
}
const headers = {};
for (let i = 0; i < rest.length; i += 2) {
  if (rest[i] !== "-H" || !rest[i + 1]?.includes(":")) {
    console.error(`unexpected argument: ${rest[i]}`);
    process.exit(2);
  }
  const at = rest[i + 1].indexOf(":");
  headers[rest[i + 1].slice(0, at).trim()] = rest[i + 1].slice(at + 1).trim();
}
// Never hang a benchmark run.
setTimeout(() => {
  console.error("mcp-latency: timed out after 120 s");
  process.exit(1);
}, 120_000).unref();

const client = new Client({ name: "portcullis-bench", version: "0.0.0" });
await client.connect(new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers } }));
const call = async () => {
  const result = await client.callTool({ name: "echo", arguments: { message: "bench" } });
  if (result.isError) throw new Error(`echo failed: ${JSON.stringify(result.content)}`);
};
for (let i = 0; i < 100; i++) await call();
const micros = [];
for (let i = 0; i < calls; i++) {
  const start = process.hrtime.bigint();
  await call();
  micros.push(Number(process.hrtime.bigint() - start) / 1000);
}
await client.close();
micros.sort((a, b) => a - b);
const at = (q) => micros[Math.min(micros.length - 1, Math.floor(q * micros.length))];
const mean = micros.reduce((a, b) => a + b, 0) / micros.length;
console.log(`RESULT ${JSON.stringify({ calls, p50: Math.round(at(0.5)), p99: Math.round(at(0.99)), mean: Math.round(mean) })}`);
process.exit(0);
