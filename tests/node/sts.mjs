#!/usr/bin/env node
// A real security token service for Portcullis integration tests: the `oidc-provider` package with an
// RFC 8693 token-exchange grant registered (`provider.registerGrantType`). It exchanges access tokens of
// another issuer (tests/node/oidc-provider.mjs) for its own access tokens, for the audience asked.
//
// Usage:   node sts.mjs <port> --subject-issuer ISSUER --subjects SUB[,SUB...] [--client-key-pem PATH]
//                           [--subject-introspection]
//          --subject-introspection: subject tokens are ISSUER's OPAQUE access tokens (registry-idp.mjs),
//          checked in step 3 by RFC 7662 introspection at ISSUER's discovered introspection_endpoint (as
//          registry-server / registry-secret, client_secret_basic) instead of as JWTs: active:true and
//          token_type Bearer, else invalid_grant; `sub` is the introspected one.
//          Port 0 picks a free port. Binds 127.0.0.1.   Issuer: http://127.0.0.1:<port>
//
// Clients (client authentication is oidc-provider's own):
//   gateway-basic   secret sts-secret, client_secret_basic, grant: token-exchange only
//   gateway-post    secret sts-secret, client_secret_post,  grant: token-exchange only
//   gateway-jwt     private_key_jwt, ES256, its public key = the one of the PKCS#8 PEM given with
//                   --client-key-pem (kid = RFC 7638 thumbprint); only with that option
//   registry-server secret registry-secret, client_secret_basic, no grant: the MCP server's
//                   introspection client (mcp-server.mjs --introspect)
//
// What the token-exchange grant checks, in this order (each refusal is an OAuth error, 400):
//   1. the client authenticated with its registered method (oidc-provider; else 401 invalid_client);
//   2. subject_token_type is urn:ietf:params:oauth:token-type:access_token (else invalid_request);
//   3. subject_token is a JWT whose signature verifies with ISSUER's /jwks, whose `iss` is ISSUER and which
//      is not expired (jose.jwtVerify, no clock tolerance) (else invalid_grant);
//   4. its `sub` is one of --subjects (an STS knows its users; else invalid_grant: a foreign subject);
//   5. `audience` is present (else invalid_target); `requested_token_type`, when sent, is the access token
//      type (else invalid_request); `scope` is taken as given.
// It then issues an opaque access token of its own (oidc-provider's AccessToken, stored in its memory, so
// that its introspection endpoint answers for it): accountId = the subject's `sub`, aud = the audience,
// scope as asked, client = the authenticated client, lifetime `ttl` (default 3600 s), and answers
//   {"access_token", "issued_token_type": "urn:ietf:params:oauth:token-type:access_token",
//    "token_type": "Bearer", "expires_in": ttl, "scope"?}
//
// stdout protocol (one line each):
//   READY <issuer>
//   EXCHANGE <status> aud=<audience or -> sub=<subject's sub or -> client=<client id>   one per exchange
//                  request that reached the grant (status: the HTTP status answered). Never a token.
//   OK <command>   after a stdin command took effect
// stdin commands:
//   mode normal        answer as above (the start)
//   mode 500           answer every exchange 500 {"error":"server_error"} (after the checks, so the
//                      line names the subject)
//   mode slow <ms>     answer normally, after <ms> milliseconds
//   mode wrong-type    answer normally but with issued_token_type ...:refresh_token
//   ttl <seconds>      the lifetime of tokens issued from now on
//   quit
// Diagnostics go to stderr.

import http from "node:http";
import fs from "node:fs";
import readline from "node:readline";
import * as jose from "jose";
import Provider, { errors } from "oidc-provider";

const TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS_TOKEN = "urn:ietf:params:oauth:token-type:access_token";
const REFRESH_TOKEN = "urn:ietf:params:oauth:token-type:refresh_token";

const args = process.argv.slice(2);
const portArg = args.shift();
const opts = {};
while (args.length) {
  const flag = args.shift();
  if (flag === "--subject-introspection") {
    opts[flag] = true;
    continue;
  }
  if (!["--subject-issuer", "--subjects", "--client-key-pem"].includes(flag) || !args.length) {
    console.error(`sts: bad argument ${flag}`);
    process.exit(2);
  }
  opts[flag] = args.shift();
}
if (!/^\d+$/.test(portArg ?? "") || !opts["--subject-issuer"] || !opts["--subjects"]) {
  console.error("usage: node sts.mjs <port> --subject-issuer ISSUER --subjects SUB[,SUB...] [--client-key-pem PATH]");
  process.exit(2);
}
const SUBJECT_ISSUER = opts["--subject-issuer"].replace(/\/+$/, "");
const SUBJECTS = new Set(opts["--subjects"].split(","));
const subjectKeys = jose.createRemoteJWKSet(new URL(`${SUBJECT_ISSUER}/jwks`));

// The subject token's claims: a JWT of SUBJECT_ISSUER, or (--subject-introspection) what its
// introspection says of an opaque one. Throws when it is not accepted.
async function subjectClaims(token) {
  if (!opts["--subject-introspection"]) {
    return (await jose.jwtVerify(token, subjectKeys, { issuer: SUBJECT_ISSUER })).payload;
  }
  const meta = await (await fetch(`${SUBJECT_ISSUER}/.well-known/openid-configuration`)).json();
  const basic = Buffer.from("registry-server:registry-secret").toString("base64");
  const res = await fetch(meta.introspection_endpoint, {
    method: "POST",
    headers: { authorization: `Basic ${basic}`, "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ token, token_type_hint: "access_token" }).toString(),
    signal: AbortSignal.timeout(5_000),
  });
  const claims = res.ok ? await res.json() : {};
  if (claims.active !== true || claims.token_type !== "Bearer") {
    throw Object.assign(new Error("inactive"), { code: "inactive" });
  }
  return claims;
}

let mode = "normal";
let slowMs = 0;
let ttl = 3600;

const clients = [
  { client_id: "gateway-basic", client_secret: "sts-secret", token_endpoint_auth_method: "client_secret_basic" },
  { client_id: "gateway-post", client_secret: "sts-secret", token_endpoint_auth_method: "client_secret_post" },
].map((c) => ({ ...c, grant_types: [TOKEN_EXCHANGE], response_types: [], redirect_uris: [] }));
clients.push({
  client_id: "registry-server",
  client_secret: "registry-secret",
  token_endpoint_auth_method: "client_secret_basic",
  grant_types: [],
  response_types: [],
  redirect_uris: [],
});
if (opts["--client-key-pem"]) {
  const key = await jose.importPKCS8(fs.readFileSync(opts["--client-key-pem"], "utf8"), "ES256", { extractable: true });
  const { d: _private, ...jwk } = await jose.exportJWK(key);
  jwk.kid = await jose.calculateJwkThumbprint(jwk);
  jwk.alg = "ES256";
  jwk.use = "sig";
  clients.push({
    client_id: "gateway-jwt",
    token_endpoint_auth_method: "private_key_jwt",
    token_endpoint_auth_signing_alg: "ES256",
    jwks: { keys: [jwk] },
    grant_types: [TOKEN_EXCHANGE],
    response_types: [],
    redirect_uris: [],
  });
}

const server = http.createServer();
await new Promise((resolve) => server.listen(Number(portArg), "127.0.0.1", resolve));
const issuer = `http://127.0.0.1:${server.address().port}`;

const provider = new Provider(issuer, {
  clients,
  cookies: { keys: ["portcullis-test-sts-cookie-key"] },
  features: { devInteractions: { enabled: false }, introspection: { enabled: true } },
  scopes: ["openid", "read", "write", "mcp:read", "mcp:write"],
  // Our own tokens live as long as `ttl` says when they are issued.
  ttl: { AccessToken: () => ttl },
});
provider.on("server_error", (_ctx, err) => console.error("sts: server_error:", err));

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

provider.registerGrantType(
  TOKEN_EXCHANGE,
  async function tokenExchange(ctx) {
    const { params, client } = ctx.oidc;
    const line = { status: 400, aud: params.audience || "-", sub: "-" };
    try {
      if (params.subject_token_type !== ACCESS_TOKEN) {
        throw new errors.InvalidRequest("subject_token_type must be the access token type");
      }
      let claims;
      try {
        claims = await subjectClaims(params.subject_token ?? "");
      } catch (err) {
        throw new errors.InvalidGrant(`subject_token not accepted (${err.code ?? "invalid"})`);
      }
      line.sub = typeof claims.sub === "string" ? claims.sub : "-";
      if (!SUBJECTS.has(claims.sub)) throw new errors.InvalidGrant("the subject is not known here");
      if (!params.audience) throw new errors.InvalidTarget("audience is required");
      if (params.requested_token_type && params.requested_token_type !== ACCESS_TOKEN) {
        throw new errors.InvalidRequest("only access tokens are issued");
      }
      if (mode === "500") {
        line.status = 500;
        ctx.status = 500;
        ctx.body = { error: "server_error", error_description: "the STS is failing (test mode)" };
        return;
      }
      if (mode === "slow") await sleep(slowMs);
      const token = new ctx.oidc.provider.AccessToken({
        accountId: claims.sub,
        client,
        gty: "token_exchange",
        scope: params.scope || undefined,
      });
      token.setAudience(params.audience);
      const value = await token.save();
      line.status = 200;
      ctx.body = {
        access_token: value,
        issued_token_type: mode === "wrong-type" ? REFRESH_TOKEN : ACCESS_TOKEN,
        token_type: "Bearer",
        expires_in: token.expiration,
        ...(params.scope ? { scope: params.scope } : {}),
      };
    } catch (err) {
      if (err.statusCode) line.status = err.statusCode;
      throw err;
    } finally {
      process.stdout.write(`EXCHANGE ${line.status} aud=${line.aud} sub=${line.sub} client=${client?.clientId ?? "-"}\n`);
    }
  },
  ["subject_token", "subject_token_type", "audience", "resource", "scope", "requested_token_type", "actor_token", "actor_token_type"],
);

server.on("request", provider.callback());
process.stdout.write(`READY ${issuer}\n`);

const rl = readline.createInterface({ input: process.stdin, terminal: false });
rl.on("line", (raw) => {
  const [cmd, arg, value] = raw.trim().split(/\s+/);
  if (cmd === "mode" && ["normal", "500", "wrong-type"].includes(arg)) mode = arg;
  else if (cmd === "mode" && arg === "slow" && /^\d+$/.test(value ?? "")) [mode, slowMs] = ["slow", Number(value)];
  else if (cmd === "ttl" && /^\d+$/.test(arg ?? "")) ttl = Number(arg);
  else if (cmd === "quit") process.exit(0);
  else if (cmd) {
    console.error(`sts: unknown command: ${raw}`);
    return;
  } else return;
  process.stdout.write(`OK ${raw.trim()}\n`);
});
process.on("SIGTERM", () => process.exit(0));
