// Unit tests of the JavaScript SDK, with node's test runner (`node --test sdk/js/test/`).
import assert from 'node:assert/strict';
import test from 'node:test';

import {
  ConfigError, Decision, Grant, GlobError, Request, Token, exportPolicy, globMatch,
  parseConfig, t, validateGlob,
} from '../src/index.js';

test('globs never cross separators', () => {
  assert.ok(globMatch('team-a*', 'team-a-prod'));
  assert.ok(!globMatch('team-a*', 'team-attacker:sa'));
  assert.ok(!globMatch('system:serviceaccount:prod:*', 'system:serviceaccount:prod:a:b'));
  assert.ok(globMatch('system:serviceaccount:prod:**', 'system:serviceaccount:prod:a:b'));
  assert.ok(globMatch('prod:app', 'prod:app') && !globMatch('prod:app', 'prod:app\n'));
  assert.ok(globMatch('a?c', 'abc') && !globMatch('a?c', 'a/c'));
  assert.ok(globMatch('[a-c]x', 'bx') && !globMatch('[!a-c]x', 'bx') && !globMatch('[!a]', ':'));
  assert.ok(globMatch('{prod,staging}-*', 'staging-1') && !globMatch('{a,b}', 'c'));
  assert.ok(globMatch('\\*', '*') && !globMatch('\\*', 'x'));
  assert.ok(globMatch('[]a]', ']') && globMatch('[a-]', '-') && globMatch('[a-c-]', '-'));
  assert.ok(globMatch('a.b', 'a.b') && !globMatch('a.b', 'axb') && globMatch('a,b}', 'a,b}'));
  assert.ok(globMatch('**', 'a\nb') && globMatch('?', '\u{1F600}'));
});

test('invalid globs match nothing and fail validation', () => {
  for (const bad of ['[abc', '{a,b', '{a,{b}}', 'abc\\', '[z-a]', '[]', 'x'.repeat(1025)]) {
    assert.throws(() => validateGlob(bad), GlobError, bad);
    assert.ok(!globMatch(bad, bad));
  }
  validateGlob('x'.repeat(1024));
});

test('config parsing refuses unknown keys and wrong types', () => {
  const schema = t.object({
    inner: t.list(t.object({ name: t.string(), tags: t.withDefault(t.list(t.string()), () => []) })),
    limit: t.optional(t.u32()),
    labels: t.optional(t.map(t.string())),
    strict: t.optional(t.boolean()),
  });
  assert.deepEqual(parseConfig('{"inner": [{"name": "a"}], "limit": 3}', schema), {
    inner: [{ name: 'a', tags: [] }], limit: 3, labels: undefined, strict: undefined,
  });
  for (const [text, message] of [
    ['{"inner": [], "limt": 1}', 'unknown field `limt`'],
    ['{"inner": [{"name": "a", "x": 1}]}', 'unknown field `x`, expected one of `name`, `tags` at `config.inner[0]`'],
    ['{}', 'missing field `inner`'],
    ['', 'missing field `inner`'],
    ['{"inner": [{"name": 1}]}', 'expected a string'],
    ['{"inner": [], "limit": 1.5}', 'expected an integer'],
    ['{"inner": [], "limit": -1}', 'expected an integer in 0..=4294967295'],
    ['{"inner": [], "strict": 1}', 'expected a boolean'],
    ['{"inner": {}}', 'expected a list'],
    ['[', 'invalid config'],
  ]) {
    assert.throws(() => parseConfig(text, schema), (e) => e instanceof ConfigError && e.message.includes(message), text);
  }
});

test('request accessors', () => {
  const payload = { 'kubernetes.io': { pod: { name: 'api-1' } }, 'a/b': { 'm~n': [1, { x: true }] } };
  const request = new Request({
    token: {
      claimsJson: JSON.stringify(payload),
      issuedAt: 100n,
      expiresAt: 200n,
      kubernetes: { namespace: 'prod', serviceAccount: { name: 'app', uid: 'sa' }, pod: { name: 'api-1', uid: 'p' } },
    },
    exchange: { now: 160n, requestedScopes: ['a'] },
  });
  const token = request.token;
  assert.equal(token.namespace(), 'prod');
  assert.equal(token.podName(), 'api-1');
  assert.equal(token.nodeName(), undefined);
  assert.equal(token.expiresAt, 200);
  assert.equal(token.claim('/kubernetes.io/pod/name'), 'api-1');
  assert.equal(token.claim('/a~1b/m~0n/1/x'), true);
  assert.equal(token.claim('/a~1b/m~0n/01'), undefined);
  assert.equal(token.claim('/missing'), undefined);
  assert.deepEqual(token.claim(''), payload);
  assert.equal(request.tokenAge(), 60);
  assert.equal(new Token().namespace(), undefined);
  assert.equal(new Request().tokenAge(), undefined);
});

test('grants, denials and the WIT shapes of the export', () => {
  const grant = new Grant().withScope('a').withScopes(['b']).withTtlSeconds(60).withClaim('n', [1, { k: null }]);
  assert.deepEqual(grant.scopes, ['a', 'b']);
  assert.deepEqual(grant.claims, [['n', '[1,{"k":null}]']]);
  assert.deepEqual(grant.claim('n'), [1, { k: null }]);
  assert.throws(() => grant.withTtlSeconds(-1), RangeError);
  assert.throws(() => grant.withClaim('f', () => 1), TypeError);
  assert.ok(Decision.allow(grant).isAllow());
  assert.equal(Decision.deny('namespace', 'no').denialCode(), 'namespace');

  const policy = {
    config: t.object({ scope: t.string() }),
    validateConfig(config) {
      if (config.scope === '') throw new ConfigError('`scope` is empty');
    },
    evaluate: (config) => Decision.allow(new Grant().withScope(config.scope)),
  };
  const world = exportPolicy(policy);
  const wit = { token: { expiresAt: 1n }, exchange: { now: 0n }, config: '{"scope": "x"}' };
  assert.deepEqual(world.evaluate(wit), { tag: 'allow', val: { scopes: ['x'], ttlSeconds: undefined, claims: [] } });
  assert.deepEqual(world.evaluate({ ...wit, config: '{}' }).tag, 'deny');
  assert.equal(world.evaluate({ ...wit, config: '{}' }).val.code, 'config');
  assert.equal(world.validateConfig('{"scope": "x"}'), undefined);
  assert.throws(() => world.validateConfig('{"scope": ""}'), (e) => e === '`scope` is empty');
});
