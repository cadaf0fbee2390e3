"""Unit tests of the Python ``team-scopes``, on the host's Python (no WebAssembly)."""

import json

from team_scopes import TeamScopes
from tollgate_policy import Exchange, KubernetesClaims, ObjectRef, Request, Token
from tollgate_policy import evaluate_json, validate_json

CONFIG = json.dumps(
    {
        "teams": [
            {"prefix": "team-a-", "team": "team-a", "scopes": ["team-a.read", "team-a.deploy"]},
            {"prefix": "team-a-infra-", "team": "infra", "scopes": ["infra.admin"]},
            {"prefix": "team-b-", "team": "team-b", "scopes": ["team-b.read"]},
        ],
        "ttl_seconds": 600,
    }
)


def request(namespace=None, scopes=()):
    kubernetes = None
    if namespace is not None:
        kubernetes = KubernetesClaims(namespace, ObjectRef("app", "u1"))
    return Request(
        token=Token(subject=f"system:serviceaccount:{namespace}:app", kubernetes=kubernetes),
        exchange=Exchange(requested_scopes=list(scopes), now=1700000000),
    )


def test_a_team_namespace_gets_its_scopes_and_claim():
    decision = evaluate_json(TeamScopes, CONFIG, request("team-a-prod"))
    assert decision.is_allow()
    assert decision.grant.scopes == ["team-a.read", "team-a.deploy"]
    assert decision.grant.ttl_seconds == 600
    assert decision.grant.claim("team") == "team-a"


def test_the_longest_prefix_wins():
    decision = evaluate_json(TeamScopes, CONFIG, request("team-a-infra-ops"))
    assert decision.grant.scopes == ["infra.admin"]
    assert decision.grant.claim("team") == "infra"


def test_requested_scopes_are_intersected():
    decision = evaluate_json(TeamScopes, CONFIG, request("team-a-prod", ["team-a.read", "x"]))
    assert decision.grant.scopes == ["team-a.read"]
    decision = evaluate_json(TeamScopes, CONFIG, request("team-a-prod", ["team-b.read"]))
    assert decision.denial_code() == "scope"


def test_prefixes_end_at_a_dash():
    for namespace in ["team-ab", "team-attacker", "team-a-"]:
        assert evaluate_json(TeamScopes, CONFIG, request(namespace)).denial_code() == "no-team"


def test_a_token_without_kubernetes_claims_is_denied():
    assert evaluate_json(TeamScopes, CONFIG, request()).denial_code() == "not-kubernetes"


def test_bad_configs_are_rejected_with_a_reason():
    team = {"prefix": "team-a-", "team": "a", "scopes": ["x"]}
    for config, message in [
        ({"teams": []}, "empty"),
        ({"teams": [team, dict(team, team="b")]}, "duplicate prefix"),
        ({"teams": [dict(team, prefix="")]}, "empty"),
        ({"teams": [dict(team, prefix="team-a")]}, "must end with `-`"),
        ({"teams": [team], "ttl": 60}, "unknown field"),
        ({"teams": [dict(team, extra=1)]}, "unknown field `extra`"),
        ({"teams": [dict(team, scopes=["a b"])]}, "invalid scope"),
        ({"teams": [team], "ttl_seconds": 0}, "positive"),
        ({"teams": [team], "ttl_seconds": "60"}, "expected an integer"),
        ({}, "missing field `teams`"),
    ]:
        error = validate_json(TeamScopes, json.dumps(config))
        assert error is not None and message in error, (config, error)
    assert validate_json(TeamScopes, CONFIG) is None


def test_an_unparsable_config_is_a_config_denial():
    assert evaluate_json(TeamScopes, "{", request("team-a-prod")).denial_code() == "config"
