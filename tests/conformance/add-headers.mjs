// Preload (`node --import ./add-headers.mjs ...`) that adds fixed HTTP headers to EVERY request the
// conformance CLI makes. The CLI itself has no option for that (0.1.16: no --header flag, no env
// var; the SDK client transport is built as `new StreamableHTTPClientTransport(new URL(url))`).
//
// Headers come from the environment variable CONFORMANCE_HEADERS: one `Name: value` per line
// (e.g. "Authorization: Bearer abc\nX-Api-Key: k"). Unset or empty -> this module does nothing.
// A header of the same name (case-insensitive) already on the request is replaced.
//
// How: one undici global dispatcher with an interceptor. Both request paths the suite uses go
// through it: Node's built-in `fetch` (the SDK's StreamableHTTPClientTransport and the raw `fetch`
// calls of server-sse-multiple-streams / server-sse-polling) and the `undici` package's
// `request()` (dns-rebinding-protection), since both read the dispatcher from the same global
// symbol (`Symbol.for('undici.globalDispatcher.1')`). The explicit `Host` / `Origin` headers of
// dns-rebinding-protection are left untouched (unless CONFORMANCE_HEADERS names them).

import { Agent, setGlobalDispatcher } from "undici";

const spec = process.env.CONFORMANCE_HEADERS ?? "";
const extra = [];
for (const line of spec.split(/\r?\n/)) {
  if (line.trim() === "") continue;
  const i = line.indexOf(":");
  if (i <= 0) throw new Error(`CONFORMANCE_HEADERS: bad line (want "Name: value"): ${JSON.stringify(line)}`);
  extra.push([line.slice(0, i).trim(), line.slice(i + 1).trim()]);
}

function merge(headers) {
  const drop = new Set(extra.map(([k]) => k.toLowerCase()));
  const out = [];
  const push = (k, v) => {
    if (!drop.has(String(k).toLowerCase())) out.push(String(k), v);
  };
  if (headers == null) {
    // nothing
  } else if (Array.isArray(headers)) {
    if (headers.length > 0 && Array.isArray(headers[0])) for (const [k, v] of headers) push(k, v);
    else for (let i = 0; i + 1 < headers.length; i += 2) push(headers[i], headers[i + 1]);
  } else if (typeof headers[Symbol.iterator] === "function") {
    for (const [k, v] of headers) push(k, v);
  } else {
    for (const [k, v] of Object.entries(headers)) {
      if (Array.isArray(v)) for (const x of v) push(k, x);
      else if (v !== undefined) push(k, v);
    }
  }
  for (const [k, v] of extra) out.push(k, v);
  return out; // flat [name, value, name, value, ...] form, accepted by undici dispatch
}

if (extra.length > 0) {
  setGlobalDispatcher(
    new Agent().compose((dispatch) => (opts, handler) => dispatch({ ...opts, headers: merge(opts.headers) }, handler)),
  );
}
