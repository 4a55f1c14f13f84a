// A Portcullis authenticator (world `portcullis:auth/authenticator@0.2.0`)
// written in JavaScript and built with componentize-js.
//
// It admits a request whose API-key header (default `x-api-key`) equals a
// secret from the gateway's store (default `workload:<workload>:api-key`),
// and then sets `x-api-client: js` toward the upstream. The gateway removes
// the key header itself (it is listed in the manifest's `consumes`).
//
// Binding conventions of componentize-js used below:
// - an export interface is an exported object named after it (camelCase);
// - record fields and resource methods are camelCase (`configJson`);
// - `result<T, E>` of an export: return T for ok, throw for err;
// - `result<T, E>` of an import: returns T, throws on err (the E value is the
//   thrown error's `payload`);
// - variants are `{ tag, val }`, enums are their names as strings, and an
//   `option` is the value or `undefined`.

import { get as getSecret } from 'portcullis:auth/secrets@0.2.0';
import { log } from 'portcullis:auth/log@0.2.0';

const CONFIG_KEYS = new Set(['header', 'secret']);
const HEADER_NAME = /^[A-Za-z0-9_-]+$/;
const CLIENT_HEADER = 'x-api-client';

/** Set by `init`; every instance calls `init` before any request. */
let config = null;

export const lifecycle = {
  init(settings) {
    let parsed;
    try {
      parsed = JSON.parse(settings.configJson);
    } catch (e) {
      throw `config is not valid JSON: ${e.message}`;
    }
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
      throw 'config must be a JSON object';
    }
    for (const key of Object.keys(parsed)) {
      if (!CONFIG_KEYS.has(key)) {
        throw `unknown config key \`${key}\` (expected \`header\` or \`secret\`)`;
      }
    }

    const header = parsed.header ?? 'x-api-key';
    if (typeof header !== 'string') {
      throw '`header` must be a string';
    }
    if (!HEADER_NAME.test(header)) {
      throw `\`header\` must be a header name of letters, digits, \`-\` and \`_\`, not ${JSON.stringify(header)}`;
    }
    if (header.toLowerCase() === CLIENT_HEADER) {
      throw `\`header\` cannot be \`${CLIENT_HEADER}\`: this component produces it`;
    }

    const secret = parsed.secret ?? `workload:${settings.workload}:api-key`;
    if (typeof secret !== 'string' || secret.length === 0) {
      throw '`secret` must be a non-empty string';
    }

    config = {
      header: header.toLowerCase(),
      secret,
      subject: `js-api-key:${settings.workload}`,
    };
    return { consumes: [config.header], forwards: [], produces: [CLIENT_HEADER] };
  },
};

export const authenticate = {
  authenticate(request) {
    if (config === null) {
      return deny(500, 'not_configured', 'the component was not initialised');
    }

    const values = request.header(config.header);
    if (values.length === 0) {
      return refuse('debug', `no \`${config.header}\` header`,
        401, 'missing_key', `send the API key in the \`${config.header}\` header`);
    }
    if (values.length > 1) {
      return refuse('info', `${values.length} \`${config.header}\` headers`,
        400, 'several_keys', `send exactly one \`${config.header}\` header`);
    }

    let expected;
    try {
      expected = getSecret(config.secret);
    } catch (e) {
      // The `secret-error` enum: not-granted, not-found or unavailable.
      const reason = typeof e?.payload === 'string' ? e.payload : String(e);
      return refuse('error', `cannot read secret \`${config.secret}\`: ${reason}`,
        503, 'key_unavailable', 'the API key cannot be checked right now');
    }

    if (expected.length === 0 || !constantTimeEqual(values[0], expected)) {
      return refuse('info', `wrong \`${config.header}\` header`,
        401, 'invalid_key', `the \`${config.header}\` header does not hold a valid API key`);
    }

    return {
      tag: 'allow',
      val: {
        identity: { subject: config.subject, issuer: undefined, claimsJson: undefined },
        edits: [{ tag: 'set', val: { name: CLIENT_HEADER, value: 'js' } }],
      },
    };
  },
};

/**
 * Whether `a` and `b` are equal, in time that depends only on their lengths:
 * the XOR of every pair of UTF-16 code units is folded with OR, without an
 * early exit. Strings of different lengths are unequal (the length of the
 * expected key is not a secret worth hiding).
 */
function constantTimeEqual(a, b) {
  if (a.length !== b.length) {
    return false;
  }
  let diff = 0;
  for (let i = 0; i < a.length; i++) {
    diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
  }
  return diff === 0;
}

/** Logs the refusal once (never the presented key) and returns the deny verdict. */
function refuse(level, why, status, error, message) {
  log(level, `refused with ${status}: ${why}`);
  return deny(status, error, message);
}

function deny(status, error, message) {
  const headers = [{ name: 'content-type', value: 'application/json' }];
  if (status === 401) {
    headers.push({ name: 'www-authenticate', value: `ApiKey header="${config.header}"` });
  }
  return {
    tag: 'deny',
    val: { status, headers, body: JSON.stringify({ error, message }) },
  };
}
