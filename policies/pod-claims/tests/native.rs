//! Claims derived from pod names, run natively exactly as the component does.

use pod_claims::PodClaims;
use tollgate_policy::{
    Decision, KubernetesClaims, ObjectRef, Request, evaluate_json, validate_json,
};

const CONFIG: &str = r#"{"namespaces": ["prod", "team-*"], "scope_template": "deploy.{workload}"}"#;

fn request(namespace: &str, pod: Option<&str>) -> Request {
    let mut r = Request::default();
    r.token.subject = format!("system:serviceaccount:{namespace}:app");
    r.token.kubernetes = Some(KubernetesClaims {
        namespace: namespace.into(),
        service_account: ObjectRef::new("app", "sa-uid"),
        pod: pod.map(|p| ObjectRef::new(p, "pod-uid")),
        ..Default::default()
    });
    r
}

fn evaluate(namespace: &str, pod: &str) -> Decision {
    evaluate_json::<PodClaims>(CONFIG, &request(namespace, Some(pod)))
}

/// The grant's claims as (name, JSON) pairs, sorted.
fn claims(decision: &Decision) -> Vec<(&str, &str)> {
    let grant = decision.grant().expect("allowed");
    let mut claims: Vec<_> = grant
        .claims
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    claims.sort();
    claims
}

#[test]
fn deployment_pods_name_their_deployment_and_replicaset() {
    let d = evaluate("prod", "api-7d9f8b6c5-x2x9z");
    assert_eq!(d.grant().unwrap().scopes, ["deploy.api"]);
    assert_eq!(
        claims(&d),
        [
            ("replicaset", r#""api-7d9f8b6c5""#),
            ("workload", r#""api""#)
        ]
    );
    // Dashes inside the Deployment's name are kept.
    let d = evaluate("team-a", "billing-api-5f6b9c4d8-k2m7q");
    assert_eq!(d.grant().unwrap().scopes, ["deploy.billing-api"]);
}

#[test]
fn stateful_set_pods_name_their_set_and_ordinal() {
    let d = evaluate("prod", "db-0");
    assert_eq!(d.grant().unwrap().scopes, ["deploy.db"]);
    assert_eq!(claims(&d), [("ordinal", "0"), ("workload", r#""db""#)]);
    let d = evaluate("prod", "kafka-broker-12");
    assert_eq!(
        claims(&d),
        [("ordinal", "12"), ("workload", r#""kafka-broker""#)]
    );
}

#[test]
fn other_names_are_their_own_workload() {
    for pod in [
        "standalone",
        // A DaemonSet pod: `s` never appears in a pod-template hash.
        "log-ds-bcdfg",
        // Leading zeros are not ordinals; vowels are not in the suffix alphabet.
        "db-01",
        "api-7d9f8b6c5-abcde",
        // Ordinals are int32s.
        "db-4294967296",
    ] {
        let d = evaluate("prod", pod);
        assert_eq!(d.grant().unwrap().scopes, [format!("deploy.{pod}")]);
        assert_eq!(claims(&d), [("workload", format!("\"{pod}\"").as_str())]);
    }
    // A 63-character name may hide a truncated ReplicaSet name: it is not split.
    let long = format!("{}-7d9f8b6c5-x2x9z", "a".repeat(47));
    assert_eq!(long.len(), 63);
    assert_eq!(claims(&evaluate("prod", &long))[0].0, "workload");
    assert_eq!(claims(&evaluate("prod", &long)).len(), 1);
}

#[test]
fn tokens_without_a_pod_are_denied() {
    let d = evaluate_json::<PodClaims>(CONFIG, &request("prod", None));
    assert_eq!(d.denial_code(), Some("not-pod-bound"));
    let mut r = request("prod", Some("api-7d9f8b6c5-x2x9z"));
    r.token.kubernetes = None;
    assert_eq!(
        evaluate_json::<PodClaims>(CONFIG, &r).denial_code(),
        Some("not-pod-bound")
    );
}

#[test]
fn namespaces_must_match_a_glob() {
    for namespace in [
        "dev",
        "production",
        "prod-x",
        "xteam-a",
        "team-a:x",
        "team-a/x",
    ] {
        let d = evaluate(namespace, "api-7d9f8b6c5-x2x9z");
        assert_eq!(
            d.denial_code(),
            Some("namespace"),
            "namespace `{namespace}`"
        );
    }
}

#[test]
fn hostile_pod_names_cannot_inject_scopes() {
    for pod in [
        "api deploy.admin",
        "api\tdeploy.admin",
        "API",
        "api_1",
        "{workload}",
        "-api",
        "",
    ] {
        let d = evaluate("prod", pod);
        assert_eq!(d.denial_code(), Some("pod-name"), "pod `{pod:?}`");
    }
}

#[test]
fn validation_rejects_bad_configs() {
    assert!(validate_json::<PodClaims>(CONFIG).is_ok());
    let cases = [
        (
            r#"{"namespaces": [], "scope_template": "deploy.{workload}"}"#,
            "`namespaces` is empty",
        ),
        (
            r#"{"namespaces": ["team-["], "scope_template": "deploy.{workload}"}"#,
            "invalid glob",
        ),
        (
            r#"{"namespaces": ["prod"], "scope_template": "deploy"}"#,
            "does not contain `{workload}`",
        ),
        (
            r#"{"namespaces": ["prod"], "scope_template": "deploy.{workload}.{namespace}"}"#,
            "placeholder other than",
        ),
        (
            r#"{"namespaces": ["prod"], "scope_template": "deploy.{workload} admin"}"#,
            "whitespace",
        ),
        (
            r#"{"namespaces": ["prod"]}"#,
            "missing field `scope_template`",
        ),
        (
            r#"{"namespaces": ["prod"], "scope_template": "{workload}", "scopes": []}"#,
            "unknown field `scopes`",
        ),
    ];
    for (config, want) in cases {
        let error = validate_json::<PodClaims>(config).unwrap_err();
        assert!(error.contains(want), "{config}: {error}");
    }
}
