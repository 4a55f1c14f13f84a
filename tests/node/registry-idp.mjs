#!/usr/bin/env node
// A real OpenID Provider (the `oidc-provider` package) that logs users in for the "registry-token"
// credential injector tests: OAuth 2.1 authorization code + PKCE (S256) for a PUBLIC client,
// rotating refresh tokens, RFC 8707 resource indicators, RFC 7662 introspection, RFC 7009 revocation.
//
// Usage:   node registry-idp.mjs <port> [--access-ttl SECONDS] [--refresh-ttl SECONDS]
//                                       [--redirect-uri URI]...
//          Port 0 is allowed: the OS picks a free port; the issuer in the READY line tells you which.
//          --access-ttl    access token lifetime (default 3600). Tests use small values such as 35.
//          --refresh-ttl   refresh token lifetime (default 1209600 = 14 days); every rotated refresh
//                          token gets a fresh lifetime of this length.
//          --redirect-uri  extra exact redirect URI for portcullis-cli (repeatable). Not needed for
//                          loopback callbacks: see "Redirect URIs" below.
// Binds:   127.0.0.1 only.   Issuer: http://127.0.0.1:<port>
//
// stdout protocol (one line each):
//   READY <issuer>                    once listening and able to serve requests
//   TOKEN <grant_type> <http status>  after EVERY request to the token endpoint (POST /token) has been
//                                     answered, e.g. `TOKEN authorization_code 200`,
//                                     `TOKEN refresh_token 200`, `TOKEN refresh_token 400`,
//                                     `TOKEN refresh_token 500` (injected failure). <grant_type> is
//                                     `-` when the request had none.
//   FAILING <n>                       after a `fail-token <n>` command took effect
//   DELAYING <ms>                     after a `delay-token <ms>` command took effect
//   HOLDING                           after a `hold-token` command took effect
//   HELD <grant_type>                 when the held token request has arrived (it waits for release)
//   RELEASED                          after a `release-token` command took effect
//   REVOKED                           after a `revoke-all` command took effect
//   REVOKED-USER <login>              after a `revoke-user <login>` command took effect
//   TAMPERING <what>                  after a `tamper-id-token <what>` command took effect
//   STRIPPING                         after a `strip-access-token` command took effect
//   DECLINING <n>                     after a `decline-authorizations <n>` command took effect
//   DECLINED                          when an authorization request was declined that way
// stdin line commands (EOF on stdin is ignored, so stdin may be closed):
//   fail-token <n>  the next <n> token-endpoint requests are answered 500 with content-type text/html
//                   and body `<html><body>Internal Server Error</body></html>` WITHOUT reaching the
//                   provider (nothing is consumed or rotated); each still prints `TOKEN <gt> 500`.
//                   Replaces any previous count; `fail-token 0` cancels.
//   fail-token <n> <status>
//                   the same with another status (e.g. 403, 404: a WAF or a CDN in front of the
//                   provider); each prints `TOKEN <gt> <status>`.
//   delay-token <ms>
//                   the next token-endpoint request waits <ms> before the provider handles it (so a
//                   refresh rotates only after the wait). `delay-token 0` cancels.
//   hold-token      the next token-endpoint request waits, before the provider handles it, until
//                   `release-token` (so a test can act while a refresh is surely in flight).
//   release-token   lets the held request (or, if none arrived yet, the next one) go on.
//   tamper-id-token nonce|aud|signature
//                   the next successful token-endpoint response carries a forged `id_token`: its
//                   claims with `nonce` (or `aud`) replaced by a wrong value and signed with the
//                   provider's own key (same kid), or (`signature`) the true claims signed with a
//                   fresh key under the provider's kid. For the relying party's ID token checks.
//   strip-access-token
//                   the next successful token-endpoint response (after the provider handled it, so a
//                   refresh token HAS rotated) goes out without its `access_token` field: a malformed
//                   answer (RFC 6749 section 5.1 requires it), for the client's "fail closed" checks.
//   decline-authorizations <n>
//                   the next <n> authorization requests (GET /auth) are declined as a person clicking
//                   "Cancel" on the sign-in page would: a redirect to the request's redirect_uri with
//                   error=access_denied, its state and iss (what oidc-provider's own abort answers),
//                   without a login. The redirect_uri must be a registered one of the client (else
//                   the request goes to the provider, which shows its error page). `0` cancels.
//   revoke-all      destroy every grant, refresh token, access token and authorization code the
//                   provider holds. Afterwards: refresh -> 400 {"error":"invalid_grant",...};
//                   introspection of any previously issued access token -> {"active":false}.
//                   Browser sessions are kept (a new login is still possible).
//   revoke-user <login>
//                   the same for ONE account: destroy every grant, refresh token, access token,
//                   authorization code and device code whose accountId (= introspected `sub` = the
//                   login typed on the sign-in page; <login> is the rest of the line, trimmed, matched
//                   exactly and case-sensitively) is <login>, plus anything else belonging to one of
//                   its grants. Other accounts' tokens keep working. Prints REVOKED-USER <login> even
//                   when nothing matched (stderr says how many of each were destroyed).
//   quit            exit(0)
// Diagnostics go to stderr, including oidc-provider's own NOTICE/WARNING lines ("Unsupported runtime"
// on Node 20 and the devInteractions warning are harmless).
//
// Endpoints (all advertised in <issuer>/.well-known/openid-configuration):
//   authorization_endpoint         <issuer>/auth
//   token_endpoint                 <issuer>/token
//   introspection_endpoint         <issuer>/token/introspection
//   revocation_endpoint            <issuer>/token/revocation
//   device_authorization_endpoint  <issuer>/device/auth
//   jwks_uri                       <issuer>/jwks     (ID tokens are RS256)
//
// Clients:
//   portcullis-cli   public (token_endpoint_auth_method none), application_type native,
//                    grant types authorization_code, refresh_token,
//                    urn:ietf:params:oauth:grant-type:device_code; response_types code;
//                    PKCE REQUIRED, S256 only; scopes openid offline_access registry:read.
//   registry-server / registry-secret   confidential (client_secret_basic); no grants, only for
//                    introspection (it may introspect any token) and revocation of its own tokens.
//
// Redirect URIs: portcullis-cli is registered with `http://127.0.0.1/callback` as a native client, so
//   per RFC 8252 section 7.3 ANY port is accepted: `http://127.0.0.1:<any port>/callback` (path must be
//   exactly /callback, host exactly 127.0.0.1, no query). The redirect_uri sent to the token endpoint
//   must equal the one sent to the authorization endpoint. --redirect-uri adds further exact URIs.
//   The redirect carries `code`, `state` and `iss` (RFC 9207, = issuer) query parameters; errors come
//   back as `error`/`error_description` (e.g. a request without PKCE -> error=invalid_request).
//
// Login and consent: the built-in dev interactions. The login page (title "Sign-in") has a form with
//   inputs `login` and `password` and a submit button; any login/password is accepted and the login
//   becomes the `sub`. Consent is AUTO-GRANTED for portcullis-cli (every requested scope and resource),
//   so after "Sign-in" the browser is redirected straight to the redirect URI. The consent page
//   (title "Authorize", button "Continue") only appears if the authorization request carries
//   `prompt=consent`.
//
// Refresh tokens: ALWAYS issued to portcullis-cli by the authorization_code (and device_code) grant,
//   with or without offline_access. ROTATED on every successful refresh: the response carries a new
//   refresh_token and the old one is consumed. Presenting a consumed refresh token again fails with
//   400 invalid_grant AND revokes the whole grant (the newest refresh token and all access tokens of
//   that login die too) - standard refresh-token-reuse detection. So two concurrent refreshes with the
//   same refresh token kill the login; so does replaying an authorization code (codes live 60 s).
//   A refresh whose `resource` was not granted fails with invalid_target AFTER oidc-provider has
//   already consumed the presented refresh token (it rotates first), which also ends the login.
//
// Resource indicators (RFC 8707): any http://127.0.0.1[:port][/path] or http://localhost[...] resource
//   is accepted (others -> invalid_target); access tokens are OPAQUE, audience (`aud` in
//   introspection) = the resource string, scope = requested ∩ {registry:read}, TTL = --access-ttl.
//   If the authorization request has no `resource`, the default resource `http://127.0.0.1/registry`
//   is granted. At the token endpoint (authorization_code and refresh_token) `resource` is optional;
//   when omitted the granted resource is used; when given it must be one that was granted at the
//   authorization endpoint (else 400 invalid_target).
//
// Example (PKCE verifier V, challenge C = BASE64URL(SHA256(V))):
//   browser -> <issuer>/auth?response_type=code&client_id=portcullis-cli
//              &redirect_uri=http://127.0.0.1:<cb>/callback&scope=openid+offline_access+registry:read
//              &state=S&code_challenge=C&code_challenge_method=S256&resource=http://127.0.0.1/registry
//   curl -s -d grant_type=authorization_code -d code=<code> -d code_verifier=V -d client_id=portcullis-cli \
//     -d redirect_uri=http://127.0.0.1:<cb>/callback -d resource=http://127.0.0.1/registry <issuer>/token
//   -> {"access_token":"...","expires_in":3600,"id_token":"...","refresh_token":"...",
//       "scope":"registry:read","token_type":"Bearer"}
//   curl -s -d grant_type=refresh_token -d refresh_token=<rt> -d client_id=portcullis-cli <issuer>/token

import http from "node:http";
import readline from "node:readline";
import * as jose from "jose";
import Provider, { errors, interactionPolicy } from "oidc-provider";

// oidc-provider prints its "NOTICE" lines with console.info (stdout); stdout is reserved for the line
// protocol, so send console.log/console.info to stderr.
console.log = console.error;
console.info = console.error;

const USAGE =
  "usage: node registry-idp.mjs <port> [--access-ttl SECONDS] [--refresh-ttl SECONDS] [--redirect-uri URI]...";

function usage(msg) {
  if (msg) console.error(`registry-idp: ${msg}`);
  console.error(USAGE);
  process.exit(2);
}

function positiveInt(name, value) {
  if (value === undefined || !/^\d+$/.test(value) || Number(value) < 1) usage(`${name} needs a positive integer`);
  return Number(value);
}

let portArg;
let accessTtl = 3600;
let refreshTtl = 14 * 24 * 60 * 60;
const extraRedirectUris = [];
{
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === "--access-ttl") accessTtl = positiveInt(arg, argv[++i]);
    else if (arg === "--refresh-ttl") refreshTtl = positiveInt(arg, argv[++i]);
    else if (arg === "--redirect-uri") {
      const uri = argv[++i];
      if (uri === undefined || !URL.canParse(uri)) usage("--redirect-uri needs an absolute URI");
      extraRedirectUris.push(uri);
    } else if (portArg === undefined && /^\d+$/.test(arg) && Number(arg) <= 65535) portArg = Number(arg);
    else usage(`unexpected argument: ${arg}`);
  }
  if (portArg === undefined) usage("missing <port>");
}

const HOST = "127.0.0.1";
const CLI_CLIENT_ID = "portcullis-cli";
const REGISTRY_CLIENT_ID = "registry-server";
const REGISTRY_CLIENT_SECRET = "registry-secret";
const DEFAULT_RESOURCE = "http://127.0.0.1/registry";
const RESOURCE_SCOPES = ["registry:read"];
const DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code";
const FAIL_BODY = "<html><body>Internal Server Error</body></html>";

// ---------------------------------------------------------------------------------------------
// Storage: a plain in-memory adapter (instead of the package's LRU one) so `revoke-all` can
// enumerate and destroy everything.
const stores = new Map(); // model name -> Map(id -> { payload, expiresAt })

function storeFor(model) {
  let store = stores.get(model);
  if (!store) {
    store = new Map();
    stores.set(model, store);
  }
  return store;
}

class MapAdapter {
  constructor(model) {
    this.store = storeFor(model);
  }

  async upsert(id, payload, expiresIn) {
    const expiresAt = typeof expiresIn === "number" ? Date.now() + expiresIn * 1000 : Infinity;
    this.store.set(id, { payload, expiresAt });
  }

  async find(id) {
    const entry = this.store.get(id);
    if (!entry) return undefined;
    if (entry.expiresAt <= Date.now()) {
      this.store.delete(id);
      return undefined;
    }
    return entry.payload;
  }

  async #findBy(field, value) {
    for (const [id, entry] of this.store) {
      if (entry.payload[field] === value) return this.find(id);
    }
    return undefined;
  }

  findByUid(uid) {
    return this.#findBy("uid", uid);
  }

  findByUserCode(userCode) {
    return this.#findBy("userCode", userCode);
  }

  async consume(id) {
    const entry = this.store.get(id);
    if (entry) entry.payload.consumed = Math.floor(Date.now() / 1000);
  }

  async destroy(id) {
    this.store.delete(id);
  }

  async revokeByGrantId(grantId) {
    for (const [model, store] of stores) {
      if (model === "Grant" || model === "Session" || model === "Interaction") continue;
      for (const [id, entry] of store) {
        if (entry.payload.grantId === grantId) store.delete(id);
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------

function isAcceptedResource(resource) {
  let url;
  try {
    url = new URL(resource);
  } catch {
    return false;
  }
  return url.protocol === "http:" && (url.hostname === "127.0.0.1" || url.hostname === "localhost");
}

async function generateSigningJwks() {
  const { privateKey } = await jose.generateKeyPair("RS256", { extractable: true });
  const jwk = await jose.exportJWK(privateKey);
  jwk.kid = `rs256-${(await jose.calculateJwkThumbprint(jwk)).slice(0, 16)}`;
  jwk.alg = "RS256";
  jwk.use = "sig";
  return { keys: [jwk] };
}

// Auto-consent for portcullis-cli: make sure the grant covers everything requested, so the
// consent prompt's "scopes missing" checks pass and no consent page is shown.
async function loadExistingGrant(ctx) {
  const { oidc } = ctx;
  const { client, session, provider } = oidc;
  const grantId = oidc.result?.consent?.grantId || session.grantIdFor(client.clientId);
  let grant = grantId ? await provider.Grant.find(grantId) : undefined;
  if (client.clientId !== CLI_CLIENT_ID) return grant;

  if (!grant || grant.accountId !== session.accountId) {
    grant = new provider.Grant({ clientId: client.clientId, accountId: session.accountId });
  }
  const oidcScopes = [...oidc.requestParamOIDCScopes];
  if (oidcScopes.length) grant.addOIDCScope(oidcScopes.join(" "));
  for (const [indicator, resourceServer] of Object.entries(oidc.resourceServers)) {
    const scopes = [...oidc.requestParamScopes].filter((s) => resourceServer.scopes.has(s));
    if (scopes.length) grant.addResourceScope(indicator, scopes.join(" "));
  }
  await grant.save();
  return grant;
}

function createProvider(issuer, jwks) {
  // Native clients always get the consent prompt in oidc-provider (check "native_client_prompt");
  // drop that check so consent is auto-granted by loadExistingGrant above.
  const policy = interactionPolicy.base();
  policy.get("consent").checks.remove("native_client_prompt");

  const provider = new Provider(issuer, {
    adapter: MapAdapter,
    clients: [
      {
        client_id: CLI_CLIENT_ID,
        application_type: "native",
        token_endpoint_auth_method: "none",
        grant_types: ["authorization_code", "refresh_token", DEVICE_CODE_GRANT],
        response_types: ["code"],
        redirect_uris: [`http://${HOST}/callback`, ...extraRedirectUris],
        scope: ["openid", "offline_access", ...RESOURCE_SCOPES].join(" "),
      },
      {
        client_id: REGISTRY_CLIENT_ID,
        client_secret: REGISTRY_CLIENT_SECRET,
        token_endpoint_auth_method: "client_secret_basic",
        grant_types: [],
        response_types: [],
        redirect_uris: [],
      },
    ],
    jwks,
    scopes: ["openid", "offline_access", ...RESOURCE_SCOPES],
    responseTypes: ["code"],
    cookies: { keys: ["portcullis-registry-idp-cookie-key"] },
    pkce: { required: () => true },
    interactions: { policy },
    loadExistingGrant,
    issueRefreshToken: async (_ctx, client, source) => {
      if (client.clientId === CLI_CLIENT_ID) return client.grantTypeAllowed("refresh_token");
      return client.grantTypeAllowed("refresh_token") && source.scopes.has("offline_access");
    },
    rotateRefreshToken: true,
    expiresWithSession: async () => false,
    features: {
      devInteractions: { enabled: true },
      introspection: { enabled: true },
      revocation: { enabled: true },
      deviceFlow: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: async (_ctx, _client, oneOf) => (oneOf ? oneOf[0] : DEFAULT_RESOURCE),
        useGrantedResource: async () => true,
        getResourceServerInfo: async (_ctx, resourceIndicator) => {
          if (!isAcceptedResource(resourceIndicator)) {
            throw new errors.InvalidTarget(
              "resource must be an http://127.0.0.1[:port] or http://localhost[:port] URL",
            );
          }
          return {
            scope: RESOURCE_SCOPES.join(" "),
            audience: resourceIndicator,
            accessTokenTTL: accessTtl,
            accessTokenFormat: "opaque",
          };
        },
      },
    },
    ttl: {
      AccessToken: accessTtl,
      AuthorizationCode: 60,
      DeviceCode: 600,
      IdToken: 3600,
      Interaction: 3600,
      RefreshToken: refreshTtl,
      Grant: Math.max(refreshTtl, 14 * 24 * 60 * 60),
      Session: 14 * 24 * 60 * 60,
    },
  });
  provider.on("server_error", (_ctx, err) => console.error("registry-idp: server_error:", err));
  provider.on("grant.error", (_ctx, err) =>
    console.error("registry-idp: grant.error:", err?.message, err?.error_description ?? ""),
  );
  provider.on("grant.success", (ctx) =>
    console.error(`registry-idp: grant.success ${ctx.oidc?.params?.grant_type ?? ""}`),
  );
  return provider;
}

// ---------------------------------------------------------------------------------------------

let failRemaining = 0;
let tamperNext = null; // "nonce" | "aud" | "signature": forge the next response's id_token
let failStatus = 500;
let delayNextMs = 0;
let declineRemaining = 0;
let stripNext = false;
// `hold-token`: the promise the next token request waits on, and its resolver.
let hold = null;
let releaseHeld = null;
let providerCallback = (_req, res) => {
  res.statusCode = 503;
  res.end("starting\n");
};

async function readBody(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return Buffer.concat(chunks);
}

async function handle(req, res) {
  const { pathname, searchParams } = new URL(req.url, "http://127.0.0.1");
  if (declineRemaining > 0 && req.method === "GET" && pathname === "/auth" && isRegisteredRedirect(searchParams)) {
    declineRemaining -= 1;
    const back = new URL(searchParams.get("redirect_uri"));
    back.searchParams.set("error", "access_denied");
    back.searchParams.set("error_description", "End-User aborted interaction");
    if (searchParams.has("state")) back.searchParams.set("state", searchParams.get("state"));
    back.searchParams.set("iss", issuer);
    res.writeHead(303, { location: back.toString(), "cache-control": "no-store" });
    res.end();
    process.stdout.write("DECLINED\n");
    return;
  }
  if (req.method !== "POST" || pathname !== "/token") return providerCallback(req, res);

  // Token endpoint: read the body ourselves to learn the grant_type, then either fail the request or
  // hand the already-read body to oidc-provider (it falls back to req.body when the stream is consumed).
  const body = await readBody(req);
  let grantType = "-";
  if (/^application\/x-www-form-urlencoded/i.test(req.headers["content-type"] ?? "")) {
    grantType = new URLSearchParams(body.toString("utf8")).get("grant_type") || "-";
  }
  grantType = grantType.replace(/\s/g, "_");
  res.on("finish", () => process.stdout.write(`TOKEN ${grantType} ${res.statusCode}\n`));

  if (delayNextMs > 0) {
    const ms = delayNextMs;
    delayNextMs = 0;
    console.error(`registry-idp: delaying a token request by ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, ms));
  }
  if (hold) {
    const { released } = hold;
    hold = null;
    process.stdout.write(`HELD ${grantType}\n`);
    await released;
  }
  if (failRemaining > 0) {
    failRemaining -= 1;
    console.error(`registry-idp: injected ${failStatus} for token request (${failRemaining} more to fail)`);
    res.writeHead(failStatus, {
      "content-type": "text/html; charset=utf-8",
      "cache-control": "no-store",
      "content-length": Buffer.byteLength(FAIL_BODY),
    });
    res.end(FAIL_BODY);
    return;
  }
  if (tamperNext) {
    const what = tamperNext;
    tamperNext = null;
    forgeIdTokenIn(res, what);
  }
  if (stripNext) {
    stripNext = false;
    stripAccessTokenIn(res);
  }
  req.body = body;
  return providerCallback(req, res);
}

// Rewrites the JSON body that oidc-provider (Koa) ends `res` with: `rewrite(json)` resolves to the
// new body's object, or null to send the body as it was. Koa sets the headers with setHeader and
// sends them with end(body), so the length can still be corrected.
function rewriteJsonIn(res, rewrite) {
  const end = res.end.bind(res);
  res.end = (chunk, ...rest) => {
    let json;
    try {
      json = JSON.parse(Buffer.isBuffer(chunk) ? chunk.toString("utf8") : String(chunk));
    } catch {
      return end(chunk, ...rest);
    }
    Promise.resolve(rewrite(json)).then(
      (rewritten) => {
        if (rewritten === null) return end(chunk, ...rest);
        const body = JSON.stringify(rewritten);
        if (!res.headersSent) res.setHeader("content-length", Buffer.byteLength(body));
        end(body);
      },
      (err) => {
        console.error("registry-idp: rewriting a response failed:", err);
        end(chunk, ...rest);
      },
    );
    return res;
  };
}

// The id_token forged (`tamper-id-token`).
function forgeIdTokenIn(res, what) {
  rewriteJsonIn(res, async (json) => {
    if (!json.id_token) return null;
    const forged = await forgeIdToken(json.id_token, what);
    console.error(`registry-idp: forged the id_token (${what})`);
    return { ...json, id_token: forged };
  });
}

// A successful answer without its access_token (`strip-access-token`).
function stripAccessTokenIn(res) {
  rewriteJsonIn(res, (json) => {
    if (res.statusCode !== 200 || !json.access_token) return null;
    const { access_token: _dropped, ...stripped } = json;
    console.error("registry-idp: sent a token response without access_token");
    return stripped;
  });
}

async function forgeIdToken(idToken, what) {
  const header = jose.decodeProtectedHeader(idToken);
  const claims = jose.decodeJwt(idToken);
  let key = await jose.importJWK(signingJwks.keys[0], "RS256");
  if (what === "nonce") claims.nonce = "not-the-nonce-you-sent";
  else if (what === "aud") claims.aud = "someone-else";
  else key = (await jose.generateKeyPair("RS256")).privateKey;
  return new jose.SignJWT(claims).setProtectedHeader({ alg: header.alg, kid: header.kid, typ: header.typ }).sign(key);
}

// Whether an authorization request names portcullis-cli and one of its redirect URIs (as the
// provider would accept them: a loopback /callback on any port, or an extra one).
function isRegisteredRedirect(params) {
  const uri = params.get("redirect_uri");
  if (params.get("client_id") !== CLI_CLIENT_ID || uri === null || !URL.canParse(uri)) return false;
  if (extraRedirectUris.includes(uri)) return true;
  const url = new URL(uri);
  return url.protocol === "http:" && url.hostname === "127.0.0.1" && url.pathname === "/callback" && url.search === "";
}

const server = http.createServer((req, res) => {
  handle(req, res).catch((err) => {
    console.error("registry-idp: request failed:", err);
    if (!res.headersSent) res.statusCode = 500;
    res.end();
  });
});
server.on("error", (err) => {
  console.error("registry-idp: listen error:", err.message);
  process.exit(1);
});
await new Promise((resolve) => server.listen(portArg, HOST, resolve));
const { address, port } = server.address();
const issuer = `http://${HOST}:${port}`;
console.error(
  `registry-idp: bound ${address}:${port}, access TTL ${accessTtl}s, refresh TTL ${refreshTtl}s` +
    (extraRedirectUris.length ? `, extra redirect URIs ${extraRedirectUris.join(" ")}` : ""),
);

const signingJwks = await generateSigningJwks();
const provider = createProvider(issuer, structuredClone(signingJwks));
providerCallback = provider.callback();
process.stdout.write(`READY ${issuer}\n`);

function revokeAll() {
  const grants = [...storeFor("Grant").keys()];
  const counts = {};
  for (const model of ["RefreshToken", "AccessToken", "AuthorizationCode", "DeviceCode", "Grant"]) {
    counts[model] = storeFor(model).size;
    storeFor(model).clear();
  }
  console.error(
    `registry-idp: revoke-all destroyed ${Object.entries(counts)
      .map(([m, n]) => `${n} ${m}`)
      .join(", ")} (grants: ${grants.length})`,
  );
  process.stdout.write("REVOKED\n");
}

// Every entry of that account: oidc-provider keeps `accountId` in the payload of Grant, AccessToken,
// RefreshToken, AuthorizationCode and (once approved) DeviceCode; entries are also matched by the
// grantId of one of the account's grants.
function revokeUser(login) {
  const grantIds = new Set();
  for (const [id, entry] of storeFor("Grant")) {
    if (entry.payload.accountId === login) grantIds.add(id);
  }
  const counts = {};
  for (const model of ["RefreshToken", "AccessToken", "AuthorizationCode", "DeviceCode", "Grant"]) {
    const store = storeFor(model);
    let n = 0;
    for (const [id, entry] of store) {
      const { accountId, grantId } = entry.payload;
      if (accountId === login || grantIds.has(id) || (grantId !== undefined && grantIds.has(grantId))) {
        store.delete(id);
        n += 1;
      }
    }
    counts[model] = n;
  }
  console.error(
    `registry-idp: revoke-user ${login} destroyed ${Object.entries(counts)
      .map(([m, n]) => `${n} ${m}`)
      .join(", ")}`,
  );
  process.stdout.write(`REVOKED-USER ${login}\n`);
}

const rl = readline.createInterface({ input: process.stdin, terminal: false });
rl.on("line", (line) => {
  const [cmd, ...rest] = line.trim().split(/\s+/);
  if (!cmd) return;
  if (cmd === "fail-token" && (rest.length === 1 || rest.length === 2) && rest.every((r) => /^\d+$/.test(r))) {
    failRemaining = Number(rest[0]);
    failStatus = rest.length === 2 ? Number(rest[1]) : 500;
    process.stdout.write(`FAILING ${failRemaining}\n`);
  } else if (cmd === "delay-token" && rest.length === 1 && /^\d+$/.test(rest[0])) {
    delayNextMs = Number(rest[0]);
    process.stdout.write(`DELAYING ${delayNextMs}\n`);
  } else if (cmd === "hold-token" && rest.length === 0) {
    let release;
    const released = new Promise((resolve) => (release = resolve));
    hold = { released, release };
    releaseHeld = release;
    process.stdout.write("HOLDING\n");
  } else if (cmd === "release-token" && rest.length === 0) {
    releaseHeld?.();
    releaseHeld = null;
    process.stdout.write("RELEASED\n");
  } else if (cmd === "tamper-id-token" && rest.length === 1 && ["nonce", "aud", "signature"].includes(rest[0])) {
    tamperNext = rest[0];
    process.stdout.write(`TAMPERING ${tamperNext}\n`);
  } else if (cmd === "strip-access-token" && rest.length === 0) {
    stripNext = true;
    process.stdout.write("STRIPPING\n");
  } else if (cmd === "decline-authorizations" && rest.length === 1 && /^\d+$/.test(rest[0])) {
    declineRemaining = Number(rest[0]);
    process.stdout.write(`DECLINING ${declineRemaining}\n`);
  } else if (cmd === "revoke-all" && rest.length === 0) {
    revokeAll();
  } else if (cmd === "revoke-user" && rest.length > 0) {
    revokeUser(line.trim().slice(cmd.length).trim());
  } else if (cmd === "quit") {
    process.exit(0);
  } else {
    console.error(`registry-idp: unknown command: ${line.trim()} (expected fail-token N [STATUS] | delay-token MS | hold-token | release-token | tamper-id-token nonce|aud|signature | strip-access-token | decline-authorizations N | revoke-all | revoke-user LOGIN | quit)`);
  }
});

process.on("SIGTERM", () => process.exit(0));
process.on("SIGINT", () => process.exit(0));
