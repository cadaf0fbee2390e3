//! The team mapping runs natively, exactly as the component does.

use team_scopes::TeamScopes;
use tollgate_policy::{KubernetesClaims, ObjectRef, Request, evaluate_json, validate_json};

const CONFIG: &str = r#"{
    "teams": [
        {"prefix": "team-a-", "team": "team-a", "scopes": ["team-a.read", "team-a.deploy"]},
        {"prefix": "team-a-infra-", "team": "infra", "scopes": ["infra.admin"]},
        {"prefix": "team-b-", "team": "team-b", "scopes": ["team-b.read"]}
    ],
    "ttl_seconds": 600
}"#;

fn request(namespace: &str, requested: &[&str]) -> Request {
    let mut r = Request::default();
    r.token.subject = format!("system:serviceaccount:{namespace}:app");
    r.token.kubernetes = Some(KubernetesClaims {
        namespace: namespace.into(),
        service_account: ObjectRef::new("app", "uid-1"),
        ..Default::default()
    });
    r.exchange.requested_scopes = requested.iter().map(|s| s.to_string()).collect();
    r
}

fn claim<'a>(decision: &'a tollgate_policy::Decision, name: &str) -> Option<&'a str> {
    let grant = decision.grant()?;
    let (_, value) = grant.claims.iter().find(|(n, _)| n == name)?;
    Some(value.as_str())
}

#[test]
fn grants_the_team_scopes_and_claim() {
    let d = evaluate_json::<TeamScopes>(CONFIG, &request("team-a-prod", &[]));
    let grant = d.grant().expect("allowed");
    assert_eq!(grant.scopes, ["team-a.read", "team-a.deploy"]);
    assert_eq!(grant.ttl_seconds, Some(600));
    assert_eq!(claim(&d, "team"), Some(r#""team-a""#));
}

#[test]
fn longest_prefix_wins() {
    let d = evaluate_json::<TeamScopes>(CONFIG, &request("team-a-infra-ops", &[]));
    assert_eq!(d.grant().expect("allowed").scopes, ["infra.admin"]);
    assert_eq!(claim(&d, "team"), Some(r#""infra""#));
    // The order of the list does not matter.
    let reversed = r#"{"teams": [
        {"prefix": "team-a-infra-", "team": "infra", "scopes": ["infra.admin"]},
        {"prefix": "team-a-", "team": "team-a", "scopes": ["team-a.read"]}]}"#;
    let d = evaluate_json::<TeamScopes>(reversed, &request("team-a-infra-ops", &[]));
    assert_eq!(claim(&d, "team"), Some(r#""infra""#));
    let d = evaluate_json::<TeamScopes>(reversed, &request("team-a-infra", &[]));
    assert_eq!(claim(&d, "team"), Some(r#""team-a""#));
}

#[test]
fn prefixes_do_not_leak_into_neighbouring_namespaces() {
    for namespace in [
        "team-ab",
        "team-attacker",
        "team-a",
        "team-a-",
        "xteam-a-prod",
        "TEAM-A-prod",
        "",
    ] {
        let d = evaluate_json::<TeamScopes>(CONFIG, &request(namespace, &[]));
        assert_eq!(d.denial_code(), Some("no-team"), "namespace `{namespace}`");
    }
}

#[test]
fn non_kubernetes_tokens_are_denied() {
    let mut r = request("team-a-prod", &[]);
    r.token.kubernetes = None;
    // A subject that looks like a service account is not a namespace binding.
    let d = evaluate_json::<TeamScopes>(CONFIG, &r);
    assert_eq!(d.denial_code(), Some("not-kubernetes"));
}

#[test]
fn requested_scopes_are_intersected() {
    let r = request("team-a-prod", &["team-a.read", "team-b.read", "admin"]);
    let d = evaluate_json::<TeamScopes>(CONFIG, &r);
    assert_eq!(d.grant().expect("allowed").scopes, ["team-a.read"]);
    // Asking only for another team's scopes is denied rather than silently widened.
    let r = request("team-a-prod", &["team-b.read"]);
    let d = evaluate_json::<TeamScopes>(CONFIG, &r);
    assert_eq!(d.denial_code(), Some("scope"));
    // Scope matching is exact: no prefixes, no globs.
    let r = request("team-a-prod", &["team-a.*", "team-a.rea"]);
    let d = evaluate_json::<TeamScopes>(CONFIG, &r);
    assert_eq!(d.denial_code(), Some("scope"));
}

#[test]
fn unparsable_config_denies() {
    let d = evaluate_json::<TeamScopes>(r#"{"teams": "team-a-"}"#, &request("team-a-x", &[]));
    assert_eq!(d.denial_code(), Some("config"));
}

#[test]
fn validation_rejects_bad_configs() {
    assert!(validate_json::<TeamScopes>(CONFIG).is_ok());
    let cases = [
        (r#"{"teams": []}"#, "empty"),
        (r#"{}"#, "missing field `teams`"),
        (
            r#"{"teams": [{"prefix": "", "team": "a", "scopes": ["x"]}]}"#,
            "prefix` is empty",
        ),
        (
            r#"{"teams": [{"prefix": "team-a", "team": "a", "scopes": ["x"]}]}"#,
            "must end with `-`",
        ),
        (
            r#"{"teams": [{"prefix": "a-", "team": "a", "scopes": ["x"]},
                          {"prefix": "a-", "team": "b", "scopes": ["y"]}]}"#,
            "duplicate prefix `a-`",
        ),
        (
            r#"{"teams": [{"prefix": "a-", "team": "", "scopes": ["x"]}]}"#,
            "team` is empty",
        ),
        (
            r#"{"teams": [{"prefix": "a-", "team": "a", "scopes": []}]}"#,
            "no scopes",
        ),
        (
            r#"{"teams": [{"prefix": "a-", "team": "a", "scopes": ["read admin"]}]}"#,
            "invalid scope",
        ),
        (
            r#"{"teams": [{"prefix": "a-", "team": "a", "scopes": ["x"]}], "ttl_seconds": 0}"#,
            "must be positive",
        ),
        (
            r#"{"teams": [{"prefix": "a-", "team": "a", "scopes": ["x"], "scope": ["y"]}]}"#,
            "unknown field `scope`",
        ),
        (
            r#"{"teams": [{"prefix": "a-", "team": "a", "scopes": ["x"]}], "ttl": 5}"#,
            "unknown field `ttl`",
        ),
    ];
    for (config, want) in cases {
        let error = validate_json::<TeamScopes>(config).unwrap_err();
        assert!(error.contains(want), "{config}: {error}");
    }
}
