"""Unit tests of the Python SDK on the host's Python."""

import json
from dataclasses import dataclass, field
from typing import Dict, List, Optional

import pytest

from tollgate_policy import (
    ConfigError,
    Decision,
    Grant,
    KubernetesClaims,
    ObjectRef,
    Request,
    Token,
    glob,
    glob_match,
    parse_config,
)


def test_globs_never_cross_separators():
    assert glob_match("team-a*", "team-a-prod")
    assert not glob_match("team-a*", "team-attacker:sa")
    assert not glob_match("system:serviceaccount:prod:*", "system:serviceaccount:prod:a:b")
    assert glob_match("system:serviceaccount:prod:**", "system:serviceaccount:prod:a:b")
    assert glob_match("prod:app", "prod:app") and not glob_match("prod:app", "prod:app\n")
    assert glob_match("a?c", "abc") and not glob_match("a?c", "a/c")
    assert glob_match("[a-c]x", "bx") and not glob_match("[!a-c]x", "bx")
    assert not glob_match("[!a]", ":")
    assert glob_match("{prod,staging}-*", "staging-1") and not glob_match("{a,b}", "c")
    assert glob_match("\\*", "*") and not glob_match("\\*", "x")
    assert glob_match("[]a]", "]") and glob_match("[a-]", "-")
    assert glob_match("a.b", "a.b") and not glob_match("a.b", "axb")
    assert glob_match("a,b}", "a,b}")


def test_invalid_globs_match_nothing_and_fail_validation():
    for bad in ["[abc", "{a,b", "{a,{b}}", "abc\\", "[z-a]", "[]", "x" * 1025]:
        with pytest.raises(glob.GlobError):
            glob.validate(bad)
        assert not glob_match(bad, bad)
    glob.validate("x" * 1024)


def test_the_regex_agrees_with_the_rust_translation():
    # The same pattern the Rust SDK's test translates: `[a-c-]` is a range and a literal dash.
    assert glob.matches("[a-c-]", "-") and glob.matches("[a-c-]", "b")
    assert glob.matches("{x,y*}", "yes") and not glob.matches("{x,y*}", "y:")


@dataclass
class Inner:
    name: str
    tags: List[str] = field(default_factory=list)


@dataclass
class Config:
    inner: List[Inner]
    limit: Optional[int] = None
    labels: Dict[str, str] = field(default_factory=dict)
    strict: bool = False


def test_config_parsing_refuses_unknown_keys_and_wrong_types():
    config = parse_config('{"inner": [{"name": "a"}], "limit": 3, "labels": {"k": "v"}}', Config)
    assert config == Config([Inner("a")], 3, {"k": "v"})
    assert parse_config('{"inner": [], "limit": null}', Config).limit is None
    for text, message in [
        ('{"inner": [], "limt": 1}', "unknown field `limt`"),
        ('{"inner": [{"name": "a", "x": 1}]}', "unknown field `x`, expected one of `name`, `tags` at `config.inner[0]`"),
        ("{}", "missing field `inner`"),
        ('{"inner": [{"name": 1}]}', "expected a string"),
        ('{"inner": [], "limit": true}', "expected an integer"),
        ('{"inner": [], "strict": 1}', "expected a boolean"),
        ('{"inner": {}}', "expected a list"),
        ("[", "invalid config"),
    ]:
        with pytest.raises(ConfigError) as error:
            parse_config(text, Config)
        assert message in str(error.value), (text, str(error.value))
    with pytest.raises(ConfigError, match="missing field"):
        parse_config("", Config)


def test_request_accessors():
    payload = {"kubernetes.io": {"pod": {"name": "api-1"}}, "a/b": {"m~n": [1, {"x": True}]}}
    token = Token(
        claims_json=json.dumps(payload),
        kubernetes=KubernetesClaims("prod", ObjectRef("app", "sa-1"), pod=ObjectRef("api-1", "p")),
        issued_at=100,
    )
    request = Request(token=token)
    request.exchange.now = 160
    assert token.namespace() == "prod" and token.pod_name() == "api-1"
    assert token.node_name() is None
    assert token.claim("/kubernetes.io/pod/name") == "api-1"
    assert token.claim("/a~1b/m~0n/1/x") is True
    assert token.claim("/a~1b/m~0n/01") is None and token.claim("/missing") is None
    assert token.claim("") == payload and token.claim("no-slash") is None
    assert request.token_age() == 60
    assert Token().namespace() is None and Request().token_age() is None


def test_grants_and_denials():
    grant = Grant().with_scope("a").with_scopes(["b", "c"]).with_ttl_seconds(60)
    grant.with_claim("team", "x").with_claim("n", [1, {"k": None}])
    assert grant.scopes == ["a", "b", "c"] and grant.ttl_seconds == 60
    assert grant.claims == [("team", '"x"'), ("n", '[1,{"k":null}]')]
    assert grant.claim("n") == [1, {"k": None}]
    with pytest.raises(ValueError):
        Grant().with_ttl_seconds(-1)
    with pytest.raises(ValueError):
        Grant().with_claim("x", float("nan"))
    allow, deny = Decision.allow(grant), Decision.deny("namespace", "no")
    assert allow.is_allow() and allow.denial_code() is None
    assert not deny.is_allow() and deny.denial_code() == "namespace" and deny.grant is None
