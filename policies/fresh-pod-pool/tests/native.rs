//! The freshness and pool checks run natively, exactly as the component does.

use fresh_pod_pool::FreshPodPool;
use tollgate_policy::{KubernetesClaims, ObjectRef, Request, evaluate_json, validate_json};

const CONFIG: &str = r#"{"node_pool": "pool-a", "max_age_seconds": 300,
    "max_lifetime_seconds": 3600, "scopes": ["registry.push"]}"#;
const IAT: i64 = 1_700_000_000;

fn request(pod: Option<&str>, node: Option<&str>) -> Request {
    let mut r = Request::default();
    r.token.subject = "system:serviceaccount:prod:app".into();
    r.token.issued_at = Some(IAT);
    r.token.expires_at = IAT + 3600;
    r.exchange.now = IAT + 60;
    r.token.kubernetes = Some(KubernetesClaims {
        namespace: "prod".into(),
        service_account: ObjectRef::new("app", "sa-uid"),
        pod: pod.map(|p| ObjectRef::new(p, "pod-uid")),
        node: node.map(|n| ObjectRef::new(n, "node-uid")),
        ..Default::default()
    });
    r
}

fn bound() -> Request {
    request(Some("api-7d9f8b6c5-x2x9z"), Some("pool-a-x8k2p"))
}

fn code(request: &Request) -> Option<String> {
    evaluate_json::<FreshPodPool>(CONFIG, request)
        .denial_code()
        .map(str::to_owned)
}

#[test]
fn fresh_bound_tokens_from_the_pool_are_allowed() {
    let d = evaluate_json::<FreshPodPool>(CONFIG, &bound());
    assert_eq!(d.grant().expect("allowed").scopes, ["registry.push"]);
    // Limits are inclusive.
    let mut r = bound();
    r.exchange.now = IAT + 300;
    assert!(evaluate_json::<FreshPodPool>(CONFIG, &r).is_allow());
    // Node names may be fully qualified.
    let r = request(Some("api-1"), Some("pool-a-x8k2p.ec2.internal"));
    assert!(evaluate_json::<FreshPodPool>(CONFIG, &r).is_allow());
}

#[test]
fn unbound_tokens_are_denied() {
    assert_eq!(
        code(&request(None, Some("pool-a-1"))).as_deref(),
        Some("not-pod-bound")
    );
    assert_eq!(
        code(&request(Some("api-1"), None)).as_deref(),
        Some("not-node-bound")
    );
    let mut r = bound();
    r.token.kubernetes = None;
    assert_eq!(code(&r).as_deref(), Some("not-pod-bound"));
}

#[test]
fn nodes_outside_the_pool_are_denied() {
    for node in [
        "pool-b-1",
        "pool-ab-1",
        "pool-a",
        "pool-a-",
        "xpool-a-1",
        "gke-pool-a-1",
        "pool-a-1/evil",
        "pool-a-1:evil",
        "POOL-A-1",
    ] {
        let r = request(Some("api-1"), Some(node));
        assert_eq!(code(&r).as_deref(), Some("node-pool"), "node `{node}`");
    }
}

#[test]
fn old_or_undated_tokens_are_stale() {
    let mut r = bound();
    r.exchange.now = IAT + 301;
    assert_eq!(code(&r).as_deref(), Some("stale"));
    let mut r = bound();
    r.token.issued_at = None;
    assert_eq!(code(&r).as_deref(), Some("stale"));
    // An absurd `iat` in the past does not overflow into a small age.
    let mut r = bound();
    r.token.issued_at = Some(i64::MIN);
    assert_eq!(code(&r).as_deref(), Some("stale"));
}

#[test]
fn long_lived_tokens_are_denied() {
    let mut r = bound();
    r.token.expires_at = IAT + 3601;
    assert_eq!(code(&r).as_deref(), Some("long-lived"));
    // A year-long token issued a minute ago is fresh but still refused.
    let mut r = bound();
    r.token.expires_at = IAT + 365 * 24 * 3600;
    assert_eq!(code(&r).as_deref(), Some("long-lived"));
    let mut r = bound();
    r.token.expires_at = i64::MAX;
    assert_eq!(code(&r).as_deref(), Some("long-lived"));
    // A future `iat` close to a far `exp` does not hide a long remaining lifetime.
    let mut r = bound();
    r.token.issued_at = Some(IAT + 10 * 365 * 24 * 3600);
    r.token.expires_at = IAT + 10 * 365 * 24 * 3600 + 60;
    assert_eq!(code(&r).as_deref(), Some("long-lived"));
}

#[test]
fn unparsable_config_denies() {
    let d = evaluate_json::<FreshPodPool>(r#"{"node_pool": "pool-a"}"#, &bound());
    assert_eq!(d.denial_code(), Some("config"));
}

#[test]
fn validation_rejects_bad_configs() {
    assert!(validate_json::<FreshPodPool>(CONFIG).is_ok());
    let config = |pool: &str, age: i64, lifetime: i64| {
        format!(
            r#"{{"node_pool": {}, "max_age_seconds": {age}, "max_lifetime_seconds": {lifetime}}}"#,
            serde_json::to_string(pool).unwrap()
        )
    };
    assert!(validate_json::<FreshPodPool>(&config("gke-prod-pool-1", 60, 600)).is_ok());
    let cases = [
        (config("", 300, 3600), "`node_pool` is empty"),
        (config("pool-*", 300, 3600), "metacharacter"),
        (config("pool-?", 300, 3600), "metacharacter"),
        (config("pool-[ab]", 300, 3600), "metacharacter"),
        (config("{pool-a,pool-b}", 300, 3600), "metacharacter"),
        (config("pool\\", 300, 3600), "metacharacter"),
        (config("pool/a", 300, 3600), "not a node name prefix"),
        (
            config("pool-a", 0, 3600),
            "`max_age_seconds` must be positive",
        ),
        (
            config("pool-a", -5, 3600),
            "`max_age_seconds` must be positive",
        ),
        (
            config("pool-a", 300, 0),
            "`max_lifetime_seconds` must be positive",
        ),
        (
            r#"{"node_pool": "pool-a", "max_age_seconds": 300}"#.into(),
            "missing field `max_lifetime_seconds`",
        ),
        (
            r#"{"node_pool": "a", "max_age_seconds": 1, "max_lifetime_seconds": 1,
                "scopes": ["a b"]}"#
                .into(),
            "invalid scope",
        ),
        (
            r#"{"node_pool": "a", "max_age_seconds": 1, "max_lifetime_seconds": 1,
                "max_age": 5}"#
                .into(),
            "unknown field `max_age`",
        ),
    ];
    for (config, want) in cases {
        let error = validate_json::<FreshPodPool>(&config).unwrap_err();
        assert!(error.contains(want), "{config}: {error}");
    }
}
