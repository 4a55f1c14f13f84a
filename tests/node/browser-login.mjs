#!/usr/bin/env node
// Drives a REAL headless Chromium (puppeteer-core, no bundled browser) through a login at
// registry-idp.mjs (oidc-provider dev interactions), either an authorization code login that ends on the
// redirect URI, or a device authorization grant (RFC 8628) login that ends on the provider's
// "Sign-in Success" page.
//
// Usage:   node browser-login.mjs <authorize-url> [--user NAME]                        (code flow)
//          node browser-login.mjs --device <verification-uri-complete> [--user NAME]   (device flow)
//          node browser-login.mjs --device <verification-uri> --user-code CODE [--user NAME]
//          <authorize-url>  the full URL printed by `portcullis login ... --no-browser`
//          --device URL     the device authorization response's verification_uri_complete
//                           (<issuer>/device?user_code=...), or its verification_uri (<issuer>/device)
//                           together with --user-code
//          --user-code CODE the device authorization response's user_code (e.g. ABCD-EFGH); typed into
//                           the provider's "Enter the code" page when the code is not pre-filled, and
//                           compared (ignoring case and separators) with the code the confirmation page
//                           shows. Optional with a verification_uri_complete.
//          --user NAME      login name typed into the provider's login form (default "alice"); it becomes
//                           the token's `sub`. The password field gets a fixed dummy value.
// Browser: executable from env CHROMIUM, else /usr/bin/chromium; headless, --no-sandbox, --disable-gpu,
//          throw-away profile. Only loopback hosts (127.0.0.1, localhost, [::1]) may be contacted; every
//          other request (e.g. the provider pages' Google Fonts @import) is aborted.
//
// Pages handled (both modes; the loop acts on whatever page is showing, at most 10 steps):
//   login page        (form with input[name=login])              fill login + password, submit
//   consent page      (form with input[name=prompt][value=consent]) click "Continue"
//   gateway consent   (form with button[name=decision][value=allow], Portcullis's embedded
//                     authorization server asking about an unlisted client)  click "Allow"
//   device pages only:
//   user code page    (title "Sign-in", form with text input[name=user_code]) type the code if the input
//                     is empty, click "Continue"; if the page shows an error (p.red, e.g. "The code you
//                     entered is incorrect. Try again", "The Sign-in request was interrupted") -> failure
//   confirmation page (title "Device Login Confirmation", form with input[name=confirm][value=yes]) check
//                     the displayed code, click "Continue" (never "[ Abort ]")
//   oidc-provider's self-submitting "Submitting Callback" page (what verification_uri_complete returns) is
//   waited through, as is every document that has not finished loading.
// Done when:
//   code flow:   the top-level URL is the redirect URI (the authorize URL's redirect_uri, compared
//                without query/fragment) and that page (served by the CLI under test) has loaded.
//   device flow: the page title is "Sign-in Success" (oidc-provider's default deviceFlow.successSource:
//                "Your sign-in was successful, you can now close this page."), normally at
//                <issuer>/device/<interaction uid> after the login. The device code is then approved:
//                the CLI's next token request (grant_type urn:ietf:params:oauth:grant-type:device_code)
//                gets the tokens.
//
// stdout protocol: exactly one JSON line, then exit.
//   success (exit 0): {"ok":true,"url":<final URL without query/fragment>,"title":<page title>,
//                      "text":<first 200 chars of document.body.innerText>,"elapsedMs":<n>}
//   failure (exit 1): {"ok":false,"error":<message>,"url":<last URL without query or null>,
//                      "title":..,"text":..,"elapsedMs":<n>}
//     Code flow: this includes landing on the redirect URI with an OAuth error response (`?error=...`);
//     then "oauthError" holds the error code. Overall timeout: 60 s.
// Diagnostics (each step, browser console errors) go to stderr. The authorization code / query
// string is never printed on stdout.

import fs from "node:fs";
import puppeteer from "puppeteer-core";

const started = Date.now();
const OVERALL_TIMEOUT_MS = 57_000; // + up to 2 s collecting page info = JSON line within 60 s
const MAX_STEPS = 10;
const PASSWORD = "portcullis-test-password";
const LOOPBACK_HOSTS = new Set(["127.0.0.1", "localhost", "[::1]"]);
const DEVICE_SUCCESS_TITLE = "Sign-in Success"; // oidc-provider's default deviceFlow.successSource
const FORM_POST_TITLE = "Submitting Callback"; // oidc-provider's self-submitting form page
const USAGE =
  "usage: node browser-login.mjs <authorize-url> [--user NAME] | " +
  "--device <verification-uri-complete> [--user-code CODE] [--user NAME] | " +
  "--device <verification-uri> --user-code CODE [--user NAME]";

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
      // Query strings are masked: a browser error page shows the URL it failed on, code and all.
      page.evaluate(() => (document.body ? document.body.innerText : "")).then((t) => t.replace(/\?[^\s"']*/g, "?…").slice(0, 200)),
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

// User codes are compared the way oidc-provider normalizes them: case and separators don't matter.
function normalizeUserCode(code) {
  return String(code ?? "").replace(/[^a-z0-9]/gi, "").toUpperCase();
}

// ---------------------------------------------------------------------------------------------
// Command line

const argv = process.argv.slice(2);
let startUrl; // authorize URL (code flow) or verification URI (device flow)
let deviceMode = false;
let userCode; // device flow: from --user-code or the verification_uri_complete's user_code parameter
let user = "alice";
for (let i = 0; i < argv.length; i++) {
  const arg = argv[i];
  if (arg === "--user" || arg === "--user-code" || arg === "--device") {
    const value = argv[++i];
    if (!value) await fail(`${arg} needs a value; ${USAGE}`);
    if (arg === "--user") {
      user = value;
    } else if (arg === "--user-code") {
      userCode = value;
    } else if (startUrl === undefined) {
      deviceMode = true;
      startUrl = value;
    } else {
      await fail(`unexpected argument: ${arg} ${value}`);
    }
  } else if (startUrl === undefined) {
    startUrl = arg;
  } else {
    await fail(`unexpected argument: ${arg}`);
  }
}
if (!startUrl || !URL.canParse(startUrl)) await fail(USAGE);
if (userCode !== undefined && !deviceMode) await fail(`--user-code needs --device; ${USAGE}`);

let target; // code flow: the redirect URI without query
if (deviceMode) {
  userCode ??= new URL(startUrl).searchParams.get("user_code") ?? undefined;
  if (!userCode) await fail(`--device URL has no user_code parameter and --user-code is missing; ${USAGE}`);
} else {
  const redirectUri = new URL(startUrl).searchParams.get("redirect_uri");
  if (!redirectUri || !URL.canParse(redirectUri)) {
    await fail("authorize URL has no absolute redirect_uri parameter");
  }
  target = stripQuery(redirectUri);
}

timer = setTimeout(() => {
  fail("timed out after 60 s");
}, OVERALL_TIMEOUT_MS);

const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";
if (!fs.existsSync(executablePath)) {
  await fail(`Chromium not found at ${executablePath} (set CHROMIUM=/path/to/chromium)`);
}

// ---------------------------------------------------------------------------------------------
// Browser

async function openBrowser() {
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
}

async function clickAndWait(selector) {
  await Promise.all([
    page.waitForNavigation({ waitUntil: "load" }),
    page.click(selector),
  ]);
}

// Wait until the main frame shows a completely loaded document that is not oidc-provider's
// self-submitting form (it posts itself on DOMContentLoaded). Survives navigations in between.
async function settle() {
  await page.waitForFunction(
    (formPostTitle) => document.readyState === "complete" && document.title !== formPostTitle,
    { polling: 50 },
    FORM_POST_TITLE,
  );
}

// ---------------------------------------------------------------------------------------------
// Pages. Each handler: `selector` recognizes the page, `act` does one step (usually submit + wait).

const LOGIN_PAGE = {
  selector: "form input[name=login]",
  async act() {
    log(`login page: signing in as ${JSON.stringify(user)}`);
    await page.type("input[name=login]", user);
    if (await page.$("input[name=password]")) await page.type("input[name=password]", PASSWORD);
    await clickAndWait("form button[type=submit]");
  },
};

const CONSENT_PAGE = {
  selector: "form input[name=prompt][value=consent]",
  async act() {
    log("consent page: clicking Continue");
    await clickAndWait("form button[type=submit]");
  },
};

// The gateway's own consent page (builtin:oauth-server, for a client the policy does not list):
// "Allow access?" with Allow / Deny buttons named `decision`. Clicks Allow.
const GATEWAY_CONSENT_PAGE = {
  selector: "form button[name=decision][value=allow]",
  async act() {
    log("gateway consent page: clicking Allow");
    await clickAndWait("form button[name=decision][value=allow]");
  },
};

// oidc-provider's deviceFlow.userCodeInputSource: also re-rendered with a red message on errors.
const USER_CODE_PAGE = {
  selector: "form input[type=text][name=user_code]",
  async act() {
    const problem = await page.$eval("body", (b) => b.querySelector("p.red")?.innerText ?? null);
    if (problem) throw new Error(`user code page shows an error: ${problem}`);
    const prefilled = await page.$eval("input[type=text][name=user_code]", (el) => el.value);
    if (prefilled) {
      log("user code page: code is pre-filled, clicking Continue");
    } else {
      log("user code page: typing the user code, clicking Continue");
      await page.type("input[type=text][name=user_code]", userCode);
    }
    await clickAndWait('button[type=submit][form="op.deviceInputForm"]');
  },
};

// oidc-provider's deviceFlow.userCodeConfirmSource: "Continue" and "[ Abort ]" both submit its form.
const CONFIRM_PAGE = {
  selector: "form input[name=confirm][value=yes]",
  async act() {
    const shown = await page.$eval("body", (b) => b.querySelector("code")?.innerText ?? "");
    if (normalizeUserCode(shown) !== normalizeUserCode(userCode)) {
      throw new Error(`confirmation page shows user code ${JSON.stringify(shown)}, expected ${JSON.stringify(userCode)}`);
    }
    log(`confirmation page: code ${shown} matches, clicking Continue`);
    await clickAndWait('button[type=submit][form="op.deviceConfirmForm"]:not([name=abort])');
  },
};

// Act on the page showing until isDone(); throws on an unknown page or after MAX_STEPS steps.
async function driveUntil(isDone, handlers, goal) {
  for (let step = 0; step < MAX_STEPS; step++) {
    await settle();
    if (await isDone()) return;
    let handler;
    for (const candidate of handlers) {
      if (await page.$(candidate.selector)) {
        handler = candidate;
        break;
      }
    }
    if (handler) {
      await handler.act();
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
  await settle();
  if (!(await isDone())) throw new Error(`did not reach ${goal} after ${MAX_STEPS} steps`);
}

// ---------------------------------------------------------------------------------------------
// Modes

async function codeFlow() {
  log(`goto authorize URL (redirect URI ${target})`);
  const response = await page.goto(startUrl, { waitUntil: "load" });
  log(`loaded ${stripQuery(page.url())} (HTTP ${response?.status()})`);

  await driveUntil(async () => stripQuery(page.url()) === target, [GATEWAY_CONSENT_PAGE, LOGIN_PAGE, CONSENT_PAGE], "the redirect URI");

  // We are on the redirect URI and its page (served by the CLI under test) has finished loading.
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

async function deviceFlow() {
  log(`goto verification URI ${stripQuery(startUrl)}`);
  const response = await page.goto(startUrl, { waitUntil: "load" });
  log(`loaded ${stripQuery(page.url())} (HTTP ${response?.status()})`);

  await driveUntil(
    async () => (await page.title()) === DEVICE_SUCCESS_TITLE,
    [USER_CODE_PAGE, CONFIRM_PAGE, LOGIN_PAGE, CONSENT_PAGE],
    `the "${DEVICE_SUCCESS_TITLE}" page`,
  );
  return finish(true, await pageInfo());
}

async function run() {
  await openBrowser();
  return deviceMode ? deviceFlow() : codeFlow();
}

run().catch((err) => fail(err?.message ?? err));
