//! The rules run natively, exactly as the component does.

use rules::Rules;
use tollgate_policy::{KubernetesClaims, ObjectRef, Request, evaluate_json, validate_json};

fn request(namespace: &str, sa: &str, pod: Option<&str>) -> Request {
    let mut r = Request::default();
    r.token.subject = format!("system:serviceaccount:{namespace}:{sa}");
    r.token.audiences = vec!["tollgate".into()];
    r.token.issued_at = Some(1_700_000_000);
    r.exchange.now = 1_700_000_100;
    r.token.kubernetes = Some(KubernetesClaims {
        namespace: namespace.into(),
        service_account: ObjectRef::new(sa, "uid-1"),
        pod: pod.map(|p| ObjectRef::new(p, "pod-uid")),
        ..Default::default()
    });
    r.token.claims_json = format!(r#"{{"kubernetes.io":{{"namespace":"{namespace}"}}}}"#);
    r
}

#[test]
fn anchored_globs_do_not_cross_separators() {
    let cfg = r#"{"subjects": ["system:serviceaccount:team-a*:app"]}"#;
    assert!(evaluate_json::<Rules>(cfg, &request("team-a1", "app", None)).is_allow());
    let evil = request("team-attacker", "app", None);
    // `team-a*` matches `team-attacker` as a namespace, but not across the `:` into a longer subject.
    let cfg = r#"{"subjects": ["system:serviceaccount:prod:app"]}"#;
    assert!(!evaluate_json::<Rules>(cfg, &request("prod", "app-evil", None)).is_allow());
    let cfg = r#"{"namespaces": ["team-a"]}"#;
    assert_eq!(
        evaluate_json::<Rules>(cfg, &evil).denial_code(),
        Some("namespace")
    );
}

#[test]
fn every_key_must_match() {
    let cfg = r#"{"namespaces": ["prod"], "pod": {"required": true, "names": ["api-*"]},
                  "grant": {"scopes": ["registry.pull"], "ttl_seconds": 900}}"#;
    let d = evaluate_json::<Rules>(cfg, &request("prod", "app", Some("api-1")));
    let grant = d.grant().expect("allowed");
    assert_eq!(grant.scopes, ["registry.pull"]);
    assert_eq!(grant.ttl_seconds, Some(900));
    let d = evaluate_json::<Rules>(cfg, &request("prod", "app", None));
    assert_eq!(d.denial_code(), Some("pod"));
    let d = evaluate_json::<Rules>(cfg, &request("prod", "app", Some("worker-1")));
    assert_eq!(d.denial_code(), Some("pod"));
}

#[test]
fn validation_rejects_unbound_unknown_and_bad_globs() {
    assert!(validate_json::<Rules>(r#"{"namespaces": ["prod"]}"#).is_ok());
    let unbound = validate_json::<Rules>(r#"{"audiences": ["x"]}"#).unwrap_err();
    assert!(unbound.contains("binds nothing"), "{unbound}");
    let unknown = validate_json::<Rules>(r#"{"namespace": ["prod"]}"#).unwrap_err();
    assert!(unknown.contains("unknown field `namespace`"), "{unknown}");
    let bad = validate_json::<Rules>(r#"{"namespaces": ["prod["]}"#).unwrap_err();
    assert!(bad.contains("invalid glob"), "{bad}");
    let empty = validate_json::<Rules>(r#"{"namespaces": []}"#).unwrap_err();
    assert!(empty.contains("empty"), "{empty}");
}
