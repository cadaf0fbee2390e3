// Unit tests of the JavaScript `team-scopes`, with node's test runner (no WebAssembly).
import assert from 'node:assert/strict';
import test from 'node:test';

import { Request, evaluateJson, validateJson } from '../../../sdk/js/src/index.js';
import { teamScopes } from '../src/team-scopes.js';

const CONFIG = JSON.stringify({
  teams: [
    { prefix: 'team-a-', team: 'team-a', scopes: ['team-a.read', 'team-a.deploy'] },
    { prefix: 'team-a-infra-', team: 'infra', scopes: ['infra.admin'] },
    { prefix: 'team-b-', team: 'team-b', scopes: ['team-b.read'] },
  ],
  ttl_seconds: 600,
});

const request = (namespace, scopes = []) =>
  new Request({
    token: namespace === undefined ? {} : { kubernetes: { namespace, serviceAccount: { name: 'app', uid: 'u1' } } },
    exchange: { requestedScopes: scopes, now: 1700000000n },
  });

const decide = (namespace, scopes) => evaluateJson(teamScopes, CONFIG, request(namespace, scopes));

test('a team namespace gets its scopes and claim', () => {
  const { grant } = decide('team-a-prod');
  assert.deepEqual(grant.scopes, ['team-a.read', 'team-a.deploy']);
  assert.equal(grant.ttlSeconds, 600);
  assert.equal(grant.claim('team'), 'team-a');
});

test('the longest prefix wins', () => {
  const { grant } = decide('team-a-infra-ops');
  assert.deepEqual(grant.scopes, ['infra.admin']);
  assert.equal(grant.claim('team'), 'infra');
});

test('requested scopes are intersected', () => {
  assert.deepEqual(decide('team-a-prod', ['team-a.read', 'x']).grant.scopes, ['team-a.read']);
  assert.equal(decide('team-a-prod', ['team-b.read']).denialCode(), 'scope');
});

test('prefixes end at a dash', () => {
  for (const ns of ['team-ab', 'team-attacker', 'team-a-']) assert.equal(decide(ns).denialCode(), 'no-team');
});

test('a token without kubernetes claims is denied', () => {
  assert.equal(decide(undefined).denialCode(), 'not-kubernetes');
});

test('bad configs are rejected with a reason', () => {
  const team = { prefix: 'team-a-', team: 'a', scopes: ['x'] };
  for (const [config, message] of [
    [{ teams: [] }, 'empty'],
    [{ teams: [team, { ...team, team: 'b' }] }, 'duplicate prefix'],
    [{ teams: [{ ...team, prefix: '' }] }, 'empty'],
    [{ teams: [{ ...team, prefix: 'team-a' }] }, 'must end with `-`'],
    [{ teams: [team], ttl: 60 }, 'unknown field'],
    [{ teams: [{ ...team, extra: 1 }] }, 'unknown field `extra`'],
    [{ teams: [{ ...team, scopes: ['a b'] }] }, 'invalid scope'],
    [{ teams: [team], ttl_seconds: 0 }, 'positive'],
    [{ teams: [team], ttl_seconds: '60' }, 'expected an integer'],
    [{}, 'missing field `teams`'],
  ]) {
    const error = validateJson(teamScopes, JSON.stringify(config));
    assert.ok(error?.includes(message), `${JSON.stringify(config)}: ${error}`);
  }
  assert.equal(validateJson(teamScopes, CONFIG), undefined);
});

test('an unparsable config is a config denial', () => {
  assert.equal(evaluateJson(teamScopes, '{', request('team-a-prod')).denialCode(), 'config');
});
