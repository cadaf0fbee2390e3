/**
 * Writing Tollgate trust policies in JavaScript.
 *
 * A trust policy decides which verified workloads may assume an identity, and with what grant.
 * Tollgate runs it as a sandboxed WebAssembly component (world `tollgate:policy/trust-policy`),
 * built from JavaScript with componentize-js. The host has already authenticated the subject
 * token (signature, issuer, lifetime, audience): a policy only *authorizes*.
 *
 * ```js
 * import { Decision, Grant, t, globMatch } from 'tollgate-policy';
 * export const oneNamespace = {
 *   config: t.object({ namespace: t.string(), scopes: t.list(t.string()) }),
 *   evaluate(config, request) {
 *     const ns = request.token.namespace();
 *     return ns !== undefined && globMatch(config.namespace, ns)
 *       ? Decision.allow(new Grant().withScopes(config.scopes))
 *       : Decision.deny('namespace', 'namespace is not allowed');
 *   },
 * };
 * ```
 *
 * The component's entry module wires the host in and exports the world's two functions (see
 * `component.js` in `policies/team-scopes-js`). The same policy runs in node for unit tests:
 * call {@link evaluateJson} and {@link validateJson} with a {@link Request}.
 * @module
 */

import { globMatches } from './glob.js';
import { ConfigError, parseConfig } from './config.js';

export { ConfigError, parseConfig, t } from './config.js';
export { GlobError, MAX_PATTERN_LEN, globMatches, globToRegExp, validateGlob } from './glob.js';

/** Log levels of `tollgate:policy/host`. */
export const Level = Object.freeze({
  /** Detail for the policy author. */
  DEBUG: 'debug',
  /** Normal operation. */
  INFO: 'info',
  /** Something the tenant should look at. */
  WARN: 'warn',
});

/** The host's functions: stand-ins until {@link useHost} installs the component's imports. */
const host = {
  /** @param {string} level @param {string} message */
  log(level, message) {
    console.error(`[policy ${level}] ${message}`);
  },
  globMatch: globMatches,
};

/**
 * Installs the functions of `tollgate:policy/host`. The component's entry module calls it with
 * its imports; node tests need not (stderr and the JavaScript glob matcher stand in).
 * @param {{ log: (level: string, message: string) => void, globMatch: (pattern: string, text: string) => boolean }} imports
 */
export function useHost(imports) {
  host.log = imports.log;
  host.globMatch = imports.globMatch;
  // The component is built without WASI stdio (componentize-js `--disable stdio`): `console`
  // writes to the decision log instead.
  const levels = { debug: 'debug', log: 'info', info: 'info', warn: 'warn', error: 'warn' };
  for (const [method, level] of Object.entries(levels)) {
    try {
      globalThis.console[method] = (...args) => imports.log(level, args.map(String).join(' '));
    } catch {
      // A read-only console keeps its own behaviour.
    }
  }
}

/**
 * Appends a line to the decision log (the host bounds how much a decision may log: 16 KiB with
 * stdout and stderr).
 * @param {'debug'|'info'|'warn'} level
 * @param {string} message
 */
export function log(level, message) {
  host.log(level, String(message));
}

/**
 * Whether `text` matches the glob `pattern` (see `glob.js` for the dialect). Inside the sandbox
 * the host compiles and caches each pattern. An invalid pattern matches nothing: reject it in
 * `validateConfig` with `validateGlob`.
 * @param {string} pattern
 * @param {string} text
 * @returns {boolean}
 */
export function globMatch(pattern, text) {
  return host.globMatch(pattern, text);
}

/** @param {bigint|number|undefined|null} v */
const num = (v) => (v === undefined || v === null ? undefined : Number(v));

/** A Kubernetes object named in a projected token. */
export class ObjectRef {
  /** @param {string} name @param {string} [uid] */
  constructor(name = '', uid = '') {
    /** The object's name, for example `deployer`. */
    this.name = name;
    /** The object's UID; unlike the name, it changes when the object is recreated. */
    this.uid = uid;
  }
}

/** @param {any} o */
const objectRef = (o) => (o === undefined || o === null ? undefined : new ObjectRef(o.name, o.uid));

/** The verified subject token: the host has checked signature, issuer, lifetime and audience. */
export class Token {
  /**
   * @param {object} [fields] the WIT record's fields (camelCase, as jco names them)
   */
  constructor(fields = {}) {
    const f = /** @type {any} */ (fields);
    /** The `iss` claim. @type {string} */
    this.issuer = f.issuer ?? '';
    /** The `sub` claim, for example `system:serviceaccount:prod:deployer`. @type {string} */
    this.subject = f.subject ?? '';
    /** The `aud` claim, always a list. @type {string[]} */
    this.audiences = [...(f.audiences ?? [])];
    /** `iat`, seconds since the Unix epoch. @type {number|undefined} */
    this.issuedAt = num(f.issuedAt);
    /** `nbf`, seconds since the Unix epoch. @type {number|undefined} */
    this.notBefore = num(f.notBefore);
    /** `exp`, seconds since the Unix epoch. @type {number} */
    this.expiresAt = num(f.expiresAt) ?? 0;
    /** The `jti` claim. @type {string|undefined} */
    this.jwtId = f.jwtId ?? undefined;
    const k = f.kubernetes;
    /** The typed `kubernetes.io` claim, if the token is a Kubernetes token. */
    this.kubernetes =
      k === undefined || k === null
        ? undefined
        : {
            namespace: k.namespace,
            serviceAccount: objectRef(k.serviceAccount) ?? new ObjectRef(),
            pod: objectRef(k.pod),
            node: objectRef(k.node),
            secret: objectRef(k.secret),
          };
    /** The whole verified payload as JSON. @type {string} */
    this.claimsJson = f.claimsJson ?? '{}';
  }

  /** The parsed payload. @returns {any} */
  claims() {
    return JSON.parse(this.claimsJson || '{}');
  }

  /**
   * The claim at a JSON pointer (RFC 6901) such as `/kubernetes.io/pod/name`, or `undefined`.
   * @param {string} pointer
   * @returns {any}
   */
  claim(pointer) {
    let value;
    try {
      value = this.claims();
    } catch {
      return undefined;
    }
    if (pointer === '') return value;
    if (!pointer.startsWith('/')) return undefined;
    for (let token of pointer.slice(1).split('/')) {
      token = token.replaceAll('~1', '/').replaceAll('~0', '~');
      if (Array.isArray(value)) {
        if (!/^(0|[1-9][0-9]*)$/.test(token)) return undefined;
        value = value[Number(token)];
      } else if (value !== null && typeof value === 'object') {
        value = Object.hasOwn(value, token) ? value[token] : undefined;
      } else {
        return undefined;
      }
      if (value === undefined) return undefined;
    }
    return value;
  }

  /** The namespace of a Kubernetes token. @returns {string|undefined} */
  namespace() {
    return this.kubernetes?.namespace;
  }

  /** The pod name of a pod-bound token. @returns {string|undefined} */
  podName() {
    return this.kubernetes?.pod?.name;
  }

  /** The node name of a node-bound token. @returns {string|undefined} */
  nodeName() {
    return this.kubernetes?.node?.name;
  }
}

/** What the workload asked for, and when. */
export class Exchange {
  /** @param {object} [fields] the WIT record's fields */
  constructor(fields = {}) {
    const f = /** @type {any} */ (fields);
    /** The tenant that owns the identity. @type {string} */
    this.tenant = f.tenant ?? '';
    /** The identity being assumed. @type {string} */
    this.identity = f.identity ?? '';
    /** Audiences asked for. @type {string[]} */
    this.requestedAudiences = [...(f.requestedAudiences ?? [])];
    /** Scopes asked for (empty: whatever the policy grants). @type {string[]} */
    this.requestedScopes = [...(f.requestedScopes ?? [])];
    /** The caller's address, when known. @type {string|undefined} */
    this.clientAddress = f.clientAddress ?? undefined;
    /** The current time in seconds since the Unix epoch: use it instead of a clock. @type {number} */
    this.now = num(f.now) ?? 0;
  }
}

/** Everything a policy decides on. */
export class Request {
  /** @param {object} [fields] `{token, exchange, config}` as plain objects or WIT records */
  constructor(fields = {}) {
    const f = /** @type {any} */ (fields);
    /** The verified subject token. */
    this.token = f.token instanceof Token ? f.token : new Token(f.token);
    /** The exchange the workload asked for. */
    this.exchange = f.exchange instanceof Exchange ? f.exchange : new Exchange(f.exchange);
    /** The identity's policy config, as JSON text. @type {string} */
    this.config = f.config ?? '{}';
  }

  /** Seconds since the token was issued, if it carries `iat`. @returns {number|undefined} */
  tokenAge() {
    return this.token.issuedAt === undefined ? undefined : this.exchange.now - this.token.issuedAt;
  }
}

/** What an allowed workload receives: `new Grant()` and the chained `with*` builders. */
export class Grant {
  constructor() {
    /** Scopes granted. @type {string[]} */
    this.scopes = [];
    /** A cap on the issued token's lifetime, in seconds. @type {number|undefined} */
    this.ttlSeconds = undefined;
    /** Extra claims, as [name, JSON text] pairs. @type {[string, string][]} */
    this.claims = [];
  }

  /** Adds one scope. @param {string} scope @returns {Grant} */
  withScope(scope) {
    this.scopes.push(String(scope));
    return this;
  }

  /** Adds several scopes. @param {Iterable<string>} scopes @returns {Grant} */
  withScopes(scopes) {
    for (const s of scopes) this.scopes.push(String(s));
    return this;
  }

  /** Caps the issued token's lifetime (an integer in 0..2**32). @param {number} ttl @returns {Grant} */
  withTtlSeconds(ttl) {
    if (!Number.isInteger(ttl) || ttl < 0 || ttl >= 2 ** 32) {
      throw new RangeError(`ttlSeconds must be an integer in 0..2**32, not ${ttl}`);
    }
    this.ttlSeconds = ttl;
    return this;
  }

  /** Adds a claim; `value` is serialized to JSON. @param {string} name @param {unknown} value @returns {Grant} */
  withClaim(name, value) {
    const text = JSON.stringify(value);
    if (text === undefined) throw new TypeError(`claim \`${name}\` has no JSON form`);
    this.claims.push([String(name), text]);
    return this;
  }

  /** The value of claim `name`, parsed (the last one set wins). @param {string} name @returns {any} */
  claim(name) {
    let found;
    for (const [key, text] of this.claims) if (key === name) found = JSON.parse(text);
    return found;
  }
}

/** A policy's answer: {@link Decision.allow} or {@link Decision.deny}. */
export class Decision {
  /** @param {Grant|undefined} grant @param {{code: string, message: string}|undefined} denial */
  constructor(grant, denial) {
    /** The grant when allowed. */
    this.grant = grant;
    /** The denial (`{code, message}`) when denied. */
    this.denial = denial;
  }

  /** Allows with `grant`. @param {Grant} grant @returns {Decision} */
  static allow(grant) {
    return new Decision(grant, undefined);
  }

  /**
   * Denies with a short code (1-64 ASCII letters, digits, `-`, `_`, `.`) and a message for the
   * decision log (never shown to the workload).
   * @param {string} code
   * @param {string} [message]
   * @returns {Decision}
   */
  static deny(code, message = '') {
    return new Decision(undefined, { code: String(code), message: String(message) });
  }

  /** Whether this is an allow. @returns {boolean} */
  isAllow() {
    return this.grant !== undefined;
  }

  /** The denial code, if denied. @returns {string|undefined} */
  denialCode() {
    return this.denial?.code;
  }
}

/**
 * A trust policy: a config schema (see `t`), `evaluate`, and optionally `validateConfig`
 * (throw {@link ConfigError} to refuse a config).
 * @typedef {{
 *   config: import('./config.js').Schema,
 *   validateConfig?: (config: any) => void,
 *   evaluate: (config: any, request: Request) => Decision,
 * }} Policy
 */

/**
 * Parses `config` and runs `validateConfig`, as the host's `validate-config` does.
 * @param {Policy} policy
 * @param {string} config
 * @returns {string|undefined} `undefined` when valid, else the message the tenant would see
 */
export function validateJson(policy, config) {
  try {
    const parsed = parseConfig(config, policy.config);
    policy.validateConfig?.(parsed);
  } catch (error) {
    if (error instanceof ConfigError) return error.message;
    throw error;
  }
  return undefined;
}

/**
 * Parses `config` and runs `evaluate`, as the host's `evaluate` does; a config that does not
 * parse is a denial with code `config`.
 * @param {Policy} policy
 * @param {string} config
 * @param {Request} request
 * @returns {Decision}
 */
export function evaluateJson(policy, config, request) {
  let parsed;
  try {
    parsed = parseConfig(config, policy.config);
  } catch (error) {
    if (error instanceof ConfigError) return Decision.deny('config', error.message);
    throw error;
  }
  const decision = policy.evaluate(parsed, request);
  if (!(decision instanceof Decision)) throw new TypeError('evaluate must return a Decision');
  return decision;
}

/** @param {() => any} call */
function guarded(call) {
  try {
    return call();
  } catch (error) {
    log(Level.WARN, `policy threw: ${error?.stack ?? error}`);
    throw error;
  }
}

/**
 * The world's exports for `policy`: `{evaluate, validateConfig}` taking and returning the WIT
 * shapes. An exception escaping the policy is logged (`warn`) and traps the instance: the
 * decision fails closed as `policy-trap`.
 * @param {Policy} policy
 */
export function exportPolicy(policy) {
  return {
    /** @param {any} request the WIT request */
    evaluate(request) {
      const decision = guarded(() => evaluateJson(policy, request.config, new Request(request)));
      if (decision.grant !== undefined) {
        const g = decision.grant;
        return { tag: 'allow', val: { scopes: g.scopes, ttlSeconds: g.ttlSeconds, claims: g.claims } };
      }
      return { tag: 'deny', val: decision.denial };
    },
    /** @param {string} config */
    validateConfig(config) {
      const message = guarded(() => validateJson(policy, config));
      // componentize-js turns a thrown value into `result::err`.
      if (message !== undefined) throw message;
    },
  };
}
