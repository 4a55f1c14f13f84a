#!/usr/bin/env node
// Drives a REAL headless Chromium (puppeteer-core, no bundled browser) through an authorization code
// login at registry-idp.mjs (oidc-provider dev interactions) until it lands on the redirect URI.
//
// Usage:   node browser-login.mjs <authorize-url> [--user NAME]
//          <authorize-url>  the full URL printed by `portcullis login ... --no-browser`
//          --user NAME      login name typed into the provider's login form (default "alice"); it becomes
//                           the token's `sub`. The password field gets a fixed dummy value.
// Browser: executable from env CHROMIUM, else /usr/bin/chromium; headless, --no-sandbox, --disable-gpu,
//          throw-away profile. Only loopback hosts (127.0.0.1, localhost, [::1]) may be contacted; every
//          other request (e.g. the login page's Google Fonts @import) is aborted.
//
// Steps: open <authorize-url>; on the login page (form with input[name=login]) fill login + password and
//        submit; on a consent page (form with input[name=prompt][value=consent]) click "Continue"; repeat
//        until the top-level URL is the redirect URI (the authorize URL's redirect_uri, compared without
//        query/fragment), then wait for that page (served by the CLI under test) to finish loading.
//
// stdout protocol: exactly one JSON line, then exit.
//   success (exit 0): {"ok":true,"url":<final URL without query/fragment>,"title":<page title>,
//                      "text":<first 200 chars of document.body.innerText>,"elapsedMs":<n>}
//   failure (exit 1): {"ok":false,"error":<message>,"url":<last URL without query or null>,
//                      "title":..,"text":..,"elapsedMs":<n>}
//     This includes landing on the redirect URI with an OAuth error response (`?error=...`); then
//     "oauthError" holds the error code. Overall timeout: 60 s.
// Diagnostics (each step, browser console errors) go to stderr. The authorization code / query
// string is never printed on stdout.

import fs from "node:fs";
import puppeteer from "puppeteer-core";

const started = Date.now();
const OVERALL_TIMEOUT_MS = 57_000; // + up to 2 s collecting page info = JSON line within 60 s
const PASSWORD = "portcullis-test-password";
const LOOPBACK_HOSTS = new Set(["127.0.0.1", "localhost", "[::1]"]);

let browser;
let page;
let done = false;
let lastNavigationFailure = null;
let timer;

function stripQuery(u) {
  try {
    const url = new URL(u);
    url.search = "";
    url.hash = "";
    return url.href;
  } catch {
    return u ?? null;
  }
}

function log(msg) {
  console.error(`browser-login: [${Date.now() - started} ms] ${msg}`);
}

function withTimeout(promise, ms, fallback) {
  return Promise.race([promise, new Promise((resolve) => setTimeout(() => resolve(fallback), ms).unref())]);
}

async function pageInfo() {
  if (!page) return { url: null, title: null, text: null };
  const url = stripQuery(page.url());
  // title()/evaluate() wait for an execution context, which never comes while a navigation hangs.
  const [title, text] = await withTimeout(
    Promise.all([
      page.title(),
      page.evaluate(() => (document.body ? document.body.innerText : "")).then((t) => t.slice(0, 200)),
    ]).catch(() => [null, null]),
    2000,
    [null, null],
  );
  return { url, title, text };
}

async function finish(ok, extra) {
  if (done) return;
  done = true;
  clearTimeout(timer);
  const info = ok ? extra : { ...(await pageInfo().catch(() => ({}))), ...extra };
  const line = JSON.stringify({ ok, ...info, elapsedMs: Date.now() - started });
  await new Promise((resolve) => process.stdout.write(`${line}\n`, resolve));
  await withTimeout(browser?.close().catch(() => {}), 5000);
  try {
    browser?.process()?.kill("SIGKILL"); // no-op when close() worked
  } catch {
    // ignore
  }
  process.exit(ok ? 0 : 1);
}

function fail(error, extra = {}) {
  return finish(false, { error: String(error), ...extra });
}

// ---------------------------------------------------------------------------------------------

const argv = process.argv.slice(2);
let authorizeUrl;
let user = "alice";
for (let i = 0; i < argv.length; i++) {
  if (argv[i] === "--user") {
    user = argv[++i];
    if (!user) await fail("usage: node browser-login.mjs <authorize-url> [--user NAME]");
  } else if (authorizeUrl === undefined) {
    authorizeUrl = argv[i];
  } else {
    await fail(`unexpected argument: ${argv[i]}`);
  }
}
if (!authorizeUrl || !URL.canParse(authorizeUrl)) {
  await fail("usage: node browser-login.mjs <authorize-url> [--user NAME]");
}

const redirectUri = new URL(authorizeUrl).searchParams.get("redirect_uri");
if (!redirectUri || !URL.canParse(redirectUri)) {
  await fail("authorize URL has no absolute redirect_uri parameter");
}
const target = stripQuery(redirectUri);

timer = setTimeout(() => {
  fail("timed out after 60 s");
}, OVERALL_TIMEOUT_MS);

const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";
if (!fs.existsSync(executablePath)) {
  await fail(`Chromium not found at ${executablePath} (set CHROMIUM=/path/to/chromium)`);
}

function atTarget() {
  return stripQuery(page.url()) === target;
}

async function clickAndWait(selector) {
  await Promise.all([
    page.waitForNavigation({ waitUntil: "load" }),
    page.click(selector),
  ]);
}

async function run() {
  browser = await puppeteer.launch({
    executablePath,
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run", "--no-default-browser-check"],
    protocolTimeout: OVERALL_TIMEOUT_MS,
  });
  log(`launched ${await browser.version()}`);
  page = await browser.newPage();
  page.setDefaultTimeout(OVERALL_TIMEOUT_MS);
  page.on("requestfailed", (request) => {
    if (request.isNavigationRequest() && request.frame() === page.mainFrame()) {
      lastNavigationFailure = `${request.failure()?.errorText ?? "failed"} loading ${stripQuery(request.url())}`;
      log(`navigation failed: ${lastNavigationFailure}`);
    }
  });
  page.on("console", (msg) => {
    if (msg.type() === "error") log(`console error: ${msg.text()}`);
  });

  await page.setRequestInterception(true);
  page.on("request", (request) => {
    if (request.isInterceptResolutionHandled()) return;
    let host = null;
    try {
      host = new URL(request.url()).host.replace(/:\d+$/, "");
    } catch {
      // ignore
    }
    const url = request.url();
    if (url.startsWith("data:") || url.startsWith("about:") || LOOPBACK_HOSTS.has(host)) {
      request.continue();
    } else {
      log(`blocked non-loopback request to ${stripQuery(url)}`);
      request.abort("blockedbyclient");
    }
  });

  log(`goto authorize URL (redirect URI ${target})`);
  const response = await page.goto(authorizeUrl, { waitUntil: "load" });
  log(`loaded ${stripQuery(page.url())} (HTTP ${response?.status()})`);

  for (let step = 0; step < 10 && !atTarget(); step++) {
    if (await page.$("form input[name=login]")) {
      log(`login page: signing in as ${JSON.stringify(user)}`);
      await page.type("input[name=login]", user);
      if (await page.$("input[name=password]")) await page.type("input[name=password]", PASSWORD);
      await clickAndWait("form button[type=submit]");
    } else if (await page.$("form input[name=prompt][value=consent]")) {
      log("consent page: clicking Continue");
      await clickAndWait("form button[type=submit]");
    } else if (page.url().startsWith("chrome-error:")) {
      throw new Error(`navigation failed: ${lastNavigationFailure ?? "unknown network error"}`);
    } else {
      const info = await pageInfo();
      throw new Error(
        `unexpected page ${info.url} (title ${JSON.stringify(info.title)}): ${JSON.stringify(info.text)}`,
      );
    }
    log(`now at ${stripQuery(page.url())}`);
  }
  if (!atTarget()) throw new Error("did not reach the redirect URI after 10 steps");

  // We are on the redirect URI; make sure its page has finished loading.
  await page.waitForFunction(() => document.readyState === "complete");
  const landed = new URL(page.url());
  const info = await pageInfo();
  const oauthError = landed.searchParams.get("error");
  if (oauthError) {
    const description = landed.searchParams.get("error_description");
    return fail(`authorization server redirected with error=${oauthError}${description ? ` (${description})` : ""}`, {
      oauthError,
    });
  }
  if (!landed.searchParams.get("code")) log("warning: redirect URI reached without a code parameter");
  return finish(true, info);
}

run().catch((err) => fail(err?.message ?? err));
