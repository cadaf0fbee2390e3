/**
 * `team-scopes` in JavaScript: grants each team's scopes to the namespaces the team owns.
 *
 * The same policy as `policies/team-scopes` (Rust), passing the same cases. The config maps
 * namespace prefixes to teams; the longest prefix that matches the token's namespace picks the
 * team, whose scopes are granted with an issued-token claim `team`:
 *
 * ```json
 * {"teams": [{"prefix": "team-a-", "team": "team-a", "scopes": ["team-a.read"]}], "ttl_seconds": 600}
 * ```
 *
 * When the workload asks for scopes, only the ones the team may have are granted. Denial codes:
 * `not-kubernetes` (no `kubernetes.io` claim), `no-team` (no prefix matches the namespace),
 * `scope` (none of the requested scopes belongs to the team).
 * @module
 */

import { ConfigError, Decision, Grant, t } from '../../../sdk/js/src/index.js';

/** The config's schema: unknown keys are refused. */
export const Config = t.object({
  teams: t.list(t.object({ prefix: t.string(), team: t.string(), scopes: t.list(t.string()) })),
  ttl_seconds: t.optional(t.u32()),
});

/** OAuth scopes are joined with spaces in the issued token: a scope must not contain one. */
const validScope = (scope) => scope !== '' && !/\s/u.test(scope);

/**
 * The team owning `namespace`: the longest prefix that leaves a non-empty rest.
 * @param {{teams: {prefix: string, team: string, scopes: string[]}[]}} config
 * @param {string} namespace
 */
export function teamFor(config, namespace) {
  let best;
  for (const team of config.teams) {
    if (namespace.length > team.prefix.length && namespace.startsWith(team.prefix)) {
      if (best === undefined || team.prefix.length > best.prefix.length) best = team;
    }
  }
  return best;
}

/** Maps namespace prefixes to teams and their scopes. */
export const teamScopes = {
  config: Config,

  /** Rejects an empty team list, empty or duplicate prefixes, prefixes that do not end at a
   * `-` boundary, unnamed teams, teams without scopes and a zero TTL. */
  validateConfig(config) {
    if (config.teams.length === 0) throw new ConfigError('`teams` is empty: it would match nothing');
    const seen = new Set();
    config.teams.forEach((team, index) => {
      const { prefix } = team;
      if (prefix === '') throw new ConfigError(`\`teams[${index}].prefix\` is empty`);
      // Namespaces are DNS labels: `-` is the only separator a prefix can end on. Without it,
      // `team-a` would also hand team-a's scopes to whoever creates `team-attacker`.
      if (!prefix.endsWith('-') || prefix === '-') {
        throw new ConfigError(`\`teams[${index}].prefix\` \`${prefix}\` must end with \`-\` (like \`team-a-\`)`);
      }
      if (seen.has(prefix)) throw new ConfigError(`duplicate prefix \`${prefix}\``);
      seen.add(prefix);
      if (team.team === '') throw new ConfigError(`\`teams[${index}].team\` is empty`);
      if (team.scopes.length === 0) throw new ConfigError(`team \`${team.team}\` has no scopes`);
      const bad = team.scopes.find((s) => !validScope(s));
      if (bad !== undefined) {
        throw new ConfigError(
          `team \`${team.team}\` has an invalid scope \`${bad}\`: scopes are non-empty and contain no whitespace`,
        );
      }
    });
    if (config.ttl_seconds === 0) throw new ConfigError('`ttl_seconds` must be positive');
  },

  /** Grants the scopes of the team owning the token's namespace. */
  evaluate(config, request) {
    const namespace = request.token.namespace();
    if (namespace === undefined) return Decision.deny('not-kubernetes', 'token has no `kubernetes.io` claim');
    const team = teamFor(config, namespace);
    if (team === undefined) return Decision.deny('no-team', `no team prefix matches namespace \`${namespace}\``);
    const requested = request.exchange.requestedScopes;
    const scopes = team.scopes.filter((s) => requested.length === 0 || requested.includes(s));
    if (scopes.length === 0) {
      return Decision.deny('scope', `none of the requested scopes belongs to team \`${team.team}\``);
    }
    const grant = new Grant().withScopes(scopes).withClaim('team', team.team);
    if (config.ttl_seconds !== undefined) grant.withTtlSeconds(config.ttl_seconds);
    return Decision.allow(grant);
  },
};
