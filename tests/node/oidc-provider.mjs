#!/usr/bin/env node
// A real OpenID Provider (the `oidc-provider` package) for Portcullis integration tests.
//
// Usage:   node oidc-provider.mjs <port>
//          Port 0 is allowed: the OS picks a free port; the issuer in the READY line tells you which.
// Binds:   127.0.0.1 only.   Issuer: http://127.0.0.1:<port>
//
// stdout protocol (one line each):
//   READY <issuer>                 once listening and able to serve requests
//   ROTATED <new RS256 kid>        after a `rotate` command took effect
// stdin line commands:
//   rotate    generate a fresh RS256 + ES256 key pair (new kids) and REPLACE the old keys: new tokens
//             are signed with the new key and /jwks publishes only the new keys (tokens signed with
//             the old keys no longer verify against the published JWKS).
//   quit      exit(0).   (EOF on stdin is ignored so the process can also be run with stdin closed.)
// Diagnostics go to stderr.
//
// Endpoints (from /.well-known/openid-configuration):
//   token_endpoint  http://127.0.0.1:<port>/token
//   jwks_uri        http://127.0.0.1:<port>/jwks
//
// Clients (grant: client_credentials only, auth: client_secret_basic, all with secret test-secret):
//   test-client        -> JWT access tokens signed RS256
//   test-client-es256  -> JWT access tokens signed ES256
//   eng-client         -> JWT access tokens signed RS256, extra claims
//                         groups: ["engineering"], email: "eng@example.com"
//   ops-client         -> JWT access tokens signed RS256, extra claims
//                         groups: ["ops"], email: "ops@example.com"
// (test-client and test-client-es256 carry no extra claims.)
//
// Access tokens: RFC 8707 resource indicators. Any http://127.0.0.1[:port]/... or
// http://localhost[:port]/... URL is accepted as `resource`; the token is then a JWT
// (header typ "at+jwt", alg RS256/ES256, kid) with aud = the resource string exactly as sent,
// iss = issuer, sub = client_id = the client id, scope = requested ∩ {mcp:read, mcp:write,
// tools:deploy, tools:delete} (same for every client; unknown requested scopes are silently
// dropped, and the `scope` claim is absent when nothing is left), plus the client's extra claims,
// TTL 1 h. Other resources are rejected with `invalid_target`. Without `resource` the token is
// opaque (the extra claims then show up only at introspection).
//
// Get a token:
//   curl -s -u test-client:test-secret \
//     -d grant_type=client_credentials \
//     -d resource=http://127.0.0.1:8080 \
//     --data-urlencode 'scope=mcp:read mcp:write' \
//     http://127.0.0.1:<port>/token
//   -> {"access_token":"eyJ...","expires_in":3600,"token_type":"Bearer","scope":"mcp:read mcp:write"}
//   curl -s -u eng-client:test-secret -d grant_type=client_credentials \
//     -d resource=http://127.0.0.1:8080 --data-urlencode 'scope=mcp:read tools:deploy' \
//     http://127.0.0.1:<port>/token
//   -> access token payload {"groups":["engineering"],"email":"eng@example.com","jti":..,
//      "sub":"eng-client","iat":..,"exp":..,"scope":"mcp:read tools:deploy","client_id":"eng-client",
//      "iss":..,"aud":"http://127.0.0.1:8080"}

import http from "node:http";
import readline from "node:readline";
import * as jose from "jose";
import Provider, { errors } from "oidc-provider";

const portArg = process.argv[2] ?? process.env.PORT;
if (portArg === undefined || !/^\d+$/.test(String(portArg)) || Number(portArg) > 65535) {
  console.error("usage: node oidc-provider.mjs <port>");
  process.exit(2);
}
const HOST = "127.0.0.1";
const SCOPES = ["mcp:read", "mcp:write", "tools:deploy", "tools:delete"];
const CLIENT_SECRET = "test-secret";
const ACCESS_TOKEN_TTL = 3600;
// client id -> access token signing alg and extra access token claims.
const CLIENTS = {
  "test-client": { alg: "RS256" },
  "test-client-es256": { alg: "ES256" },
  "eng-client": { alg: "RS256", claims: { groups: ["engineering"], email: "eng@example.com" } },
  "ops-client": { alg: "RS256", claims: { groups: ["ops"], email: "ops@example.com" } },
};

async function generateSigningJwks() {
  const keys = [];
  for (const alg of ["RS256", "ES256"]) {
    const { privateKey } = await jose.generateKeyPair(alg, { extractable: true });
    const jwk = await jose.exportJWK(privateKey);
    const thumb = await jose.calculateJwkThumbprint(jwk);
    jwk.kid = `${alg.toLowerCase()}-${thumb.slice(0, 16)}`;
    jwk.alg = alg;
    jwk.use = "sig";
    keys.push(jwk);
  }
  return { keys };
}

function isAcceptedResource(resource) {
  let url;
  try {
    url = new URL(resource);
  } catch {
    return false;
  }
  return url.protocol === "http:" && (url.hostname === "127.0.0.1" || url.hostname === "localhost");
}

function createProvider(issuer, jwks) {
  const provider = new Provider(issuer, {
    clients: Object.keys(CLIENTS).map((clientId) => ({
      client_id: clientId,
      client_secret: CLIENT_SECRET,
      grant_types: ["client_credentials"],
      response_types: [],
      redirect_uris: [],
      token_endpoint_auth_method: "client_secret_basic",
      scope: SCOPES.join(" "),
    })),
    jwks,
    scopes: ["openid", ...SCOPES],
    cookies: { keys: ["portcullis-test-cookie-key"] },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      introspection: { enabled: true },
      resourceIndicators: {
        enabled: true,
        getResourceServerInfo: async (_ctx, resourceIndicator, client) => {
          if (!isAcceptedResource(resourceIndicator)) {
            throw new errors.InvalidTarget(
              "resource must be an http://127.0.0.1[:port] or http://localhost[:port] URL",
            );
          }
          return {
            scope: SCOPES.join(" "),
            audience: resourceIndicator,
            accessTokenTTL: ACCESS_TOKEN_TTL,
            accessTokenFormat: "jwt",
            jwt: {
              sign: { alg: CLIENTS[client?.clientId]?.alg ?? "RS256" },
            },
          };
        },
      },
    },
    // Extra access token claims (groups, email) for the clients that have them; undefined = none.
    extraTokenClaims: async (_ctx, token) => {
      const claims = CLIENTS[token.clientId]?.claims;
      return claims === undefined ? undefined : structuredClone(claims);
    },
    ttl: {
      ClientCredentials: (_ctx, token) => token.resourceServer?.accessTokenTTL ?? ACCESS_TOKEN_TTL,
    },
  });
  provider.on("server_error", (_ctx, err) => console.error("oidc-provider: server_error:", err));
  provider.on("grant.error", (_ctx, err) =>
    console.error("oidc-provider: grant.error:", err?.message, err?.error_description ?? ""),
  );
  return provider;
}

let handler = (_req, res) => {
  res.statusCode = 503;
  res.end("starting\n");
};
const server = http.createServer((req, res) => handler(req, res));
server.on("error", (err) => {
  console.error("oidc-provider: listen error:", err.message);
  process.exit(1);
});
await new Promise((resolve) => server.listen(Number(portArg), HOST, resolve));
const { address, port } = server.address();
const issuer = `http://${HOST}:${port}`;
console.error(`oidc-provider: bound ${address}:${port}`);

function kidOf(jwks, alg) {
  return jwks.keys.find((k) => k.alg === alg)?.kid;
}

let jwks = await generateSigningJwks();
handler = createProvider(issuer, jwks).callback();
console.error(`oidc-provider: signing keys ${jwks.keys.map((k) => k.kid).join(", ")}`);
process.stdout.write(`READY ${issuer}\n`);

let rotating = Promise.resolve();
async function rotate() {
  const next = await generateSigningJwks();
  const nextHandler = createProvider(issuer, next).callback();
  jwks = next;
  handler = nextHandler; // requests from now on are served by the new Provider instance
  console.error(`oidc-provider: rotated, signing keys ${jwks.keys.map((k) => k.kid).join(", ")}`);
  process.stdout.write(`ROTATED ${kidOf(jwks, "RS256")}\n`);
}

const rl = readline.createInterface({ input: process.stdin, terminal: false });
rl.on("line", (line) => {
  const cmd = line.trim();
  if (cmd === "") return;
  if (cmd === "rotate") {
    rotating = rotating.then(rotate).catch((err) => console.error("oidc-provider: rotate failed:", err));
  } else if (cmd === "quit") {
    rotating.finally(() => process.exit(0));
  } else {
    console.error(`oidc-provider: unknown command: ${cmd} (expected rotate | quit)`);
  }
});

process.on("SIGTERM", () => process.exit(0));
process.on("SIGINT", () => process.exit(0));
