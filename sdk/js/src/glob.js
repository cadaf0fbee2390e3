/**
 * The glob dialect shared by the host and every SDK (Contract 1, "Glob semantics").
 *
 * A pattern matches the *whole* string. `*` matches any run of characters and `?` one
 * character, but neither crosses a separator (`:` or `/`); `**` matches anything, separators
 * included. `[abc]`, `[a-z]` and `[!abc]` (or `[^abc]`) are classes (a negated class never
 * matches a separator), `{a,b}` is an alternation (not nested) and `\` escapes the next
 * character. Patterns are at most 1,024 bytes (UTF-8).
 *
 * A port of the Rust SDK's parser (`policy-guest/src/glob/parse.rs`). `globMatch` asks the
 * host inside the sandbox and uses {@link globMatches} outside it.
 * @module
 */

/** Longest pattern accepted, in UTF-8 bytes. */
export const MAX_PATTERN_LEN = 1024;

/** Why a pattern is not a valid glob. */
export class GlobError extends Error {
  /**
   * @param {string} pattern the offending pattern
   * @param {string} reason what is wrong with it
   */
  constructor(pattern, reason) {
    super(`invalid glob \`${pattern}\`: ${reason}`);
    /** The offending pattern. */
    this.pattern = pattern;
    /** What is wrong with it. */
    this.reason = reason;
  }
}

const SYNTAX = new Set('^$\\.*+?()[]{}|/'.split(''));

/** @param {string} c */
function escape(c) {
  return SYNTAX.has(c) ? `\\${c}` : c;
}

/** @param {string} c */
function escapeInClass(c) {
  return SYNTAX.has(c) || c === '-' ? `\\${c}` : c;
}

/** @param {string} s */
function utf8Length(s) {
  let n = 0;
  for (const c of s) {
    const code = c.codePointAt(0);
    n += code < 0x80 ? 1 : code < 0x800 ? 2 : code < 0x10000 ? 3 : 4;
  }
  return n;
}

/**
 * @param {string[]} chars
 * @param {number} i index after the `[`
 * @returns {[string, number]} the class's source and the index after its `]`
 */
function readClass(chars, i) {
  const negated = chars[i] === '!' || chars[i] === '^';
  if (negated) i += 1;
  const ranges = [];
  for (;;) {
    if (i >= chars.length) throw new Error('unclosed `[` class');
    const low = chars[i++];
    if (low === ']' && ranges.length > 0) break;
    let high = low;
    if (chars[i] === '-' && i + 1 < chars.length && chars[i + 1] !== ']') {
      high = chars[i + 1];
      i += 2;
    }
    if (high.codePointAt(0) < low.codePointAt(0)) throw new Error('reversed range in `[` class');
    ranges.push([low, high]);
  }
  const body = ranges
    .map(([lo, hi]) => (lo === hi ? escapeInClass(lo) : `${escapeInClass(lo)}-${escapeInClass(hi)}`))
    .join('');
  return [negated ? `[^${body}:/]` : `[${body}]`, i];
}

/** @param {string} pattern */
function parse(pattern) {
  const chars = Array.from(pattern);
  const out = [];
  /** @type {string[][] | null} */
  let alternation = null;
  let i = 0;
  while (i < chars.length) {
    const c = chars[i++];
    let node;
    if (c === '*' && chars[i] === '*') {
      while (chars[i] === '*') i += 1;
      node = '[^]*';
    } else if (c === '*') {
      node = '[^:/]*';
    } else if (c === '?') {
      node = '[^:/]';
    } else if (c === '[') {
      [node, i] = readClass(chars, i);
    } else if (c === '{') {
      if (alternation) throw new Error('nested `{` alternation');
      alternation = [[]];
      continue;
    } else if (c === ',' && alternation) {
      alternation.push([]);
      continue;
    } else if (c === '}' && alternation) {
      out.push(`(?:${alternation.map((b) => b.join('')).join('|')})`);
      alternation = null;
      continue;
    } else if (c === '\\') {
      if (i >= chars.length) throw new Error('ends with a lone `\\`');
      node = escape(chars[i++]);
    } else {
      node = escape(c);
    }
    if (alternation) alternation[alternation.length - 1].push(node);
    else out.push(node);
  }
  if (alternation) throw new Error('unclosed `{`');
  return out.join('');
}

/**
 * The pattern as an anchored regular expression (flags `u`); throws {@link GlobError}.
 * @param {string} pattern
 * @returns {RegExp}
 */
export function globToRegExp(pattern) {
  if (utf8Length(pattern) > MAX_PATTERN_LEN) throw new GlobError(pattern, 'longer than 1024 bytes');
  try {
    return new RegExp(`^(?:${parse(pattern)})$`, 'u');
  } catch (error) {
    throw new GlobError(pattern, error.message);
  }
}

/**
 * Throws {@link GlobError} unless `pattern` is a valid glob.
 * @param {string} pattern
 */
export function validateGlob(pattern) {
  globToRegExp(pattern);
}

const cache = new Map();

/**
 * Whether the whole of `text` matches `pattern`, evaluated in JavaScript (no host call). An
 * invalid pattern matches nothing.
 * @param {string} pattern
 * @param {string} text
 * @returns {boolean}
 */
export function globMatches(pattern, text) {
  let re = cache.get(pattern);
  if (re === undefined) {
    try {
      re = globToRegExp(pattern);
    } catch {
      re = null;
    }
    if (cache.size >= 1024) cache.clear();
    cache.set(pattern, re);
  }
  return re !== null && re.test(text);
}
