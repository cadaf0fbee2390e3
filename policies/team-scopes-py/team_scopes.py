"""``team-scopes`` in Python: grants each team's scopes to the namespaces the team owns.

The same policy as ``policies/team-scopes`` (Rust), passing the same cases. The config maps
namespace prefixes to teams; the longest prefix that matches the token's namespace picks the
team, whose scopes are granted with an issued-token claim ``team``::

    {"teams": [{"prefix": "team-a-", "team": "team-a", "scopes": ["team-a.read"]}],
     "ttl_seconds": 600}

When the workload asks for scopes, only the ones the team may have are granted. Denial codes:
``not-kubernetes`` (no ``kubernetes.io`` claim), ``no-team`` (no prefix matches the namespace),
``scope`` (none of the requested scopes belongs to the team).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional

from tollgate_policy import ConfigError, Decision, Grant, Policy, Request


@dataclass
class Team:
    """One team: the namespaces it owns and what it may be granted."""

    #: A namespace prefix such as ``team-a-``; it must end with ``-``, so that ``team-a-`` owns
    #: ``team-a-prod`` but never ``team-ab`` or ``team-attacker``.
    prefix: str
    #: The team's name, issued as the ``team`` claim.
    team: str
    #: The scopes the team's workloads receive.
    scopes: List[str]


@dataclass
class TeamScopesConfig:
    """Namespace prefixes mapped to teams and the scopes each team may receive."""

    #: The teams; the longest prefix matching the namespace picks one.
    teams: List[Team]
    #: A cap on the issued token's lifetime (default: the identity's).
    ttl_seconds: Optional[int] = None

    def team_for(self, namespace: str) -> Optional[Team]:
        """The team owning ``namespace``: the longest prefix that leaves a non-empty rest."""
        owners = [
            t for t in self.teams if len(namespace) > len(t.prefix) and namespace.startswith(t.prefix)
        ]
        return max(owners, key=lambda t: len(t.prefix), default=None)


def _valid_scope(scope: str) -> bool:
    """OAuth scopes are joined with spaces in the issued token: a scope must not contain one."""
    return scope != "" and not any(c.isspace() for c in scope)


class TeamScopes(Policy[TeamScopesConfig]):
    """Maps namespace prefixes to teams and their scopes."""

    Config = TeamScopesConfig

    def validate_config(self, config: TeamScopesConfig) -> None:
        """Rejects an empty team list, empty or duplicate prefixes, prefixes that do not end at
        a ``-`` boundary, unnamed teams, teams without scopes and a zero TTL."""
        if not config.teams:
            raise ConfigError("`teams` is empty: it would match nothing")
        seen = set()
        for index, team in enumerate(config.teams):
            prefix = team.prefix
            if not prefix:
                raise ConfigError(f"`teams[{index}].prefix` is empty")
            # Namespaces are DNS labels: `-` is the only separator a prefix can end on. Without
            # it, `team-a` would also hand team-a's scopes to whoever creates `team-attacker`.
            if not prefix.endswith("-") or prefix == "-":
                raise ConfigError(
                    f"`teams[{index}].prefix` `{prefix}` must end with `-` (like `team-a-`)"
                )
            if prefix in seen:
                raise ConfigError(f"duplicate prefix `{prefix}`")
            seen.add(prefix)
            if not team.team:
                raise ConfigError(f"`teams[{index}].team` is empty")
            if not team.scopes:
                raise ConfigError(f"team `{team.team}` has no scopes")
            bad = next((s for s in team.scopes if not _valid_scope(s)), None)
            if bad is not None:
                raise ConfigError(
                    f"team `{team.team}` has an invalid scope `{bad}`: scopes are non-empty "
                    "and contain no whitespace"
                )
        if config.ttl_seconds is not None and not 0 <= config.ttl_seconds < 2**32:
            raise ConfigError("`ttl_seconds` must fit in 32 bits")
        if config.ttl_seconds == 0:
            raise ConfigError("`ttl_seconds` must be positive")

    def evaluate(self, config: TeamScopesConfig, request: Request) -> Decision:
        """Grants the scopes of the team owning the token's namespace."""
        namespace = request.token.namespace()
        if namespace is None:
            return Decision.deny("not-kubernetes", "token has no `kubernetes.io` claim")
        team = config.team_for(namespace)
        if team is None:
            return Decision.deny("no-team", f"no team prefix matches namespace `{namespace}`")
        requested = request.exchange.requested_scopes
        scopes = [s for s in team.scopes if not requested or s in requested]
        if not scopes:
            return Decision.deny(
                "scope", f"none of the requested scopes belongs to team `{team.team}`"
            )
        grant = Grant().with_scopes(scopes).with_claim("team", team.team)
        if config.ttl_seconds is not None:
            grant.with_ttl_seconds(config.ttl_seconds)
        return Decision.allow(grant)
