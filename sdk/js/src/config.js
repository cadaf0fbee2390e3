/**
 * Parsing an identity's policy config against a schema, refusing unknown keys.
 *
 * Describe the config with the {@link t} builders and {@link parseConfig} checks every key and
 * type, as the Rust SDK's `serde` with `deny_unknown_fields` does: a misspelt key is an error,
 * never a silently ignored rule.
 *
 * ```js
 * const Config = t.object({ teams: t.list(t.string()), ttl_seconds: t.optional(t.u32()) });
 * const config = parseConfig('{"teams": ["a"]}', Config); // { teams: ['a'], ttl_seconds: undefined }
 * ```
 * @module
 */

/** Why a config was refused. Throw it from `validateConfig` with a message telling the tenant
 * what to fix. */
export class ConfigError extends Error {
  /** @param {string} message */
  constructor(message) {
    super(message);
    this.name = 'ConfigError';
  }
}

/**
 * A schema: reads a JSON value at `path`, returns the checked value or throws ConfigError.
 * @typedef {{ read: (value: unknown, path: string) => any, optional?: boolean, fallback?: () => any }} Schema
 */

/** @param {unknown} v */
function describe(v) {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'string') return `string ${JSON.stringify(v)}`;
  if (typeof v === 'number') return `number \`${v}\``;
  if (typeof v === 'boolean') return `boolean \`${v}\``;
  return 'an object';
}

/** @param {string} path @param {string} message */
function fail(path, message) {
  return new ConfigError(`invalid config: ${message} at \`${path}\``);
}

/** Schema builders for {@link parseConfig}. */
export const t = {
  /** A string. @returns {Schema} */
  string: () => ({
    read(v, path) {
      if (typeof v !== 'string') throw fail(path, `expected a string, found ${describe(v)}`);
      return v;
    },
  }),
  /** A boolean. @returns {Schema} */
  boolean: () => ({
    read(v, path) {
      if (typeof v !== 'boolean') throw fail(path, `expected a boolean, found ${describe(v)}`);
      return v;
    },
  }),
  /** Any number. @returns {Schema} */
  number: () => ({
    read(v, path) {
      if (typeof v !== 'number') throw fail(path, `expected a number, found ${describe(v)}`);
      return v;
    },
  }),
  /** An integer in `[min, max]` (default: the safe integers). @returns {Schema} */
  integer: (min = Number.MIN_SAFE_INTEGER, max = Number.MAX_SAFE_INTEGER) => ({
    read(v, path) {
      if (!Number.isInteger(v)) throw fail(path, `expected an integer, found ${describe(v)}`);
      if (v < min || v > max) throw fail(path, `invalid value ${v}, expected an integer in ${min}..=${max}`);
      return v;
    },
  }),
  /** An unsigned 32-bit integer (a TTL, say). @returns {Schema} */
  u32: () => t.integer(0, 2 ** 32 - 1),
  /** Any JSON value, unchecked. @returns {Schema} */
  any: () => ({ read: (v) => v }),
  /** A list of `item`. @param {Schema} item @returns {Schema} */
  list: (item) => ({
    read(v, path) {
      if (!Array.isArray(v)) throw fail(path, `expected a list, found ${describe(v)}`);
      return v.map((x, i) => item.read(x, `${path}[${i}]`));
    },
  }),
  /** An object with any keys, each value an `item`. @param {Schema} item @returns {Schema} */
  map: (item) => ({
    read(v, path) {
      if (v === null || typeof v !== 'object' || Array.isArray(v)) {
        throw fail(path, `expected an object, found ${describe(v)}`);
      }
      return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, item.read(x, `${path}.${k}`)]));
    },
  }),
  /** `inner`, or absent/null (read as `undefined`). @param {Schema} inner @returns {Schema} */
  optional: (inner) => ({
    optional: true,
    read: (v, path) => (v === null || v === undefined ? undefined : inner.read(v, path)),
  }),
  /** `inner`, or `fallback()` when absent. @param {Schema} inner @param {() => any} fallback @returns {Schema} */
  withDefault: (inner, fallback) => ({ optional: true, fallback, read: (v, path) => inner.read(v, path) }),
  /**
   * An object with exactly these fields: unknown keys are refused, missing ones too unless
   * their schema is optional.
   * @param {Record<string, Schema>} fields
   * @returns {Schema}
   */
  object: (fields) => ({
    read(v, path) {
      if (v === null || typeof v !== 'object' || Array.isArray(v)) {
        throw fail(path, `expected an object, found ${describe(v)}`);
      }
      const names = Object.keys(fields);
      const unknown = Object.keys(v).find((k) => !Object.hasOwn(fields, k));
      if (unknown !== undefined) {
        const expected = names.map((n) => `\`${n}\``).join(', ');
        throw fail(path, `unknown field \`${unknown}\`, expected one of ${expected}`);
      }
      const out = {};
      for (const name of names) {
        const schema = fields[name];
        if (Object.hasOwn(v, name)) out[name] = schema.read(v[name], `${path}.${name}`);
        else if (schema.fallback) out[name] = schema.fallback();
        else if (schema.optional) out[name] = undefined;
        else throw fail(path, `missing field \`${name}\``);
      }
      return out;
    },
  }),
};

/**
 * Parses the JSON `text` against `schema`. An empty string is read as `{}`.
 * @param {string} text
 * @param {Schema} schema
 * @returns {any}
 * @throws {ConfigError} naming the key, for invalid JSON, an unknown or missing key, or a value
 *   of the wrong type
 */
export function parseConfig(text, schema) {
  let value;
  try {
    value = JSON.parse(text && text.trim() ? text : '{}');
  } catch (error) {
    throw new ConfigError(`invalid config: ${error.message}`);
  }
  return schema.read(value, 'config');
}
