//! Changing a policy without fear, on a real server: named versions that identities follow,
//! a bundle's cases run at upload, an identity's own cases gating each version, rollback,
//! shadow candidates, replay of recorded traffic, promotion, and tenant isolation of all of it.

use reqwest::Method;
use serde_json::{Value, json};
use tollgate::policy::bundle;
use tollgate_tests::fixtures::{self, module};
use tollgate_tests::jwt::payload;
use tollgate_tests::server::{DevIssuer, Server, TempDir, Tenant, quickstart};

/// `module` with `policies/rules/cases.yaml` inside it.
fn bundled_with_rules_cases(module: Vec<u8>) -> Vec<u8> {
    let cases =
        std::fs::read_to_string(fixtures::root().join("policies/rules/cases.yaml")).unwrap();
    bundle::bundle(&module, &cases).unwrap()
}

async fn upload(server: &Server, tenant: &Tenant, bytes: Vec<u8>, name: &str) -> (u16, Value) {
    let path = format!("/v1/tenants/{}/policies?name={name}", tenant.name);
    let request = server
        .at(Method::POST, &path)
        .bearer_auth(&tenant.key)
        .header("content-type", "application/wasm")
        .body(bytes);
    Server::send(request).await
}

/// The rules config of the quickstart, and cases of the identity's own on it.
fn gated_identity(policy: &str) -> Value {
    json!({
        "issuer": "dev", "policy": policy,
        "config": {"namespaces": ["prod"], "grant": {"scopes": ["registry.pull"]}},
        "scopes": ["registry.pull"],
        "cases": [
            {"name": "prod may pull", "expect": "allow", "scopes": ["registry.pull"],
             "token": {"sub": "system:serviceaccount:prod:deployer",
                       "kubernetes.io": {"namespace": "prod", "serviceaccount": {"name": "deployer", "uid": "u1"}}}},
            {"name": "dev may not", "expect": "deny", "code": "namespace",
             "token": {"sub": "system:serviceaccount:dev:deployer",
                       "kubernetes.io": {"namespace": "dev", "serviceaccount": {"name": "deployer", "uid": "u2"}}}},
        ],
    })
}

/// The digest an exchange's token names as its policy (`None` when refused).
async fn exchanged_policy(
    server: &Server,
    tenant: &Tenant,
    id: &str,
    token: &str,
) -> Option<Value> {
    let (status, body) = server.exchange(&tenant.identity(id), token, &[]).await;
    (status == 200).then(|| payload(body["access_token"].as_str().unwrap())["policy"].clone())
}

#[tokio::test]
async fn versions_are_tested_at_upload_followed_by_identities_and_rolled_back() {
    let dir = TempDir::new("versions");
    let issuer = DevIssuer::start(&dir.path().join("dev"));
    let server = Server::start(&dir.path().join("data"));
    let acme = quickstart(&server, &issuer, "acme").await;
    let token = issuer.token(&acme.audience, "prod", "deployer", &[]);

    let (status, v1) = upload(&server, &acme, module("rules"), "gate").await;
    assert_eq!((status, v1["version"].clone()), (201, json!(1)), "{v1}");
    let v1_digest = v1["digest"].clone();

    // A module that fails the cases it carries is refused, naming them, and is no version.
    let (status, refused) = upload(
        &server,
        &acme,
        bundled_with_rules_cases(module("pod_claims")),
        "gate",
    )
    .await;
    let message = refused["message"].as_str().unwrap_or_default();
    assert_eq!(status, 422, "{refused}");
    assert!(message.contains("cases fail: "), "{message}");
    let history = server
        .admin(
            Method::GET,
            "/v1/tenants/acme/policies/gate",
            Some(&acme.key),
            None,
        )
        .await
        .1;
    assert_eq!(
        history["versions"].as_array().unwrap().len(),
        1,
        "{history}"
    );

    // An identity following the name, one pinned to version 1; both run version 1.
    for (id, policy) in [("follower", "gate"), ("pinned", "gate@1")] {
        let (status, body) = server
            .put_identity("acme", id, &acme.key, gated_identity(policy))
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["resolved_policy"], v1_digest, "{body}");
    }
    let (status, body) = server
        .put_identity("acme", "bad", &acme.key, gated_identity("gate@9"))
        .await;
    assert_eq!(status, 422, "{body}");
    // The identity's own cases are run when it is saved.
    let mut wrong = gated_identity("gate");
    wrong["cases"][1]["expect"] = json!("allow");
    let (status, body) = server.put_identity("acme", "wrong", &acme.key, wrong).await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("dev may not"),
        "{body}"
    );

    // Version 2 rejects the follower's config: the follower stays on version 1, and says so.
    let (status, v2) = upload(&server, &acme, module("team_scopes"), "gate").await;
    assert_eq!((status, v2["version"].clone()), (201, json!(2)), "{v2}");
    assert_eq!(v2["followers"][0]["outcome"], "kept", "{v2}");
    assert_eq!(
        exchanged_policy(&server, &acme, "follower", &token).await,
        Some(v1_digest.clone())
    );

    // Version 3 (rules again, with its cases inside: another digest) passes them: it switches.
    let (status, v3) = upload(
        &server,
        &acme,
        bundled_with_rules_cases(module("rules")),
        "gate",
    )
    .await;
    assert_eq!(status, 201, "{v3}");
    assert!(v3["cases_passed"].as_u64().unwrap() > 20, "{v3}");
    assert_eq!(v3["followers"][0]["outcome"], "switched", "{v3}");
    assert_eq!(
        exchanged_policy(&server, &acme, "follower", &token).await,
        Some(v3["digest"].clone())
    );
    assert_eq!(
        exchanged_policy(&server, &acme, "pinned", &token).await,
        Some(v1_digest.clone())
    );

    // Rollback to version 1 is a version 4 running version 1's module: the old decisions again.
    let (status, rolled) = server
        .admin(
            Method::POST,
            "/v1/tenants/acme/policies/gate/rollback",
            Some(&acme.key),
            Some(json!({"version": 1})),
        )
        .await;
    assert_eq!(status, 200, "{rolled}");
    assert_eq!(
        (rolled["version"].clone(), rolled["restores"].clone()),
        (json!(4), json!(1))
    );
    assert_eq!(
        exchanged_policy(&server, &acme, "follower", &token).await,
        Some(v1_digest.clone())
    );

    // Every change of the follower's policy, and the one it refused, is in its decision log.
    let changes: Vec<(Value, Value)> = server
        .decisions("acme", &acme.key)
        .await
        .into_iter()
        .filter(|d| d["event"] == "policy-change" && d["identity"] == "follower")
        .map(|d| (d["code"].clone(), d["policy_digest"].clone()))
        .collect();
    assert_eq!(
        changes,
        [
            (json!("policy-changed"), v1_digest),
            (json!("policy-changed"), v3["digest"].clone()),
            (json!("policy-change-refused"), v2["digest"].clone()),
        ],
        "newest first"
    );

    // Another tenant sees none of it, and cannot name it.
    let globex = quickstart(&server, &issuer, "globex").await;
    let (status, _) = server
        .admin(
            Method::GET,
            "/v1/tenants/acme/policies/gate",
            Some(&globex.key),
            None,
        )
        .await;
    assert_eq!(status, 403);
    let (status, body) = server
        .put_identity("globex", "x", &globex.key, gated_identity("gate"))
        .await;
    assert_eq!(status, 422, "{body}");
}

/// The identity of the shadow and replay test: `team-*` namespaces, or a narrower candidate.
fn team_identity(namespaces: &[&str]) -> Value {
    json!({"issuer": "dev", "policy": "builtin:rules", "scopes": ["registry.pull"],
           "config": {"namespaces": namespaces, "grant": {"scopes": ["registry.pull"]}}})
}

#[tokio::test]
async fn shadow_candidates_are_compared_replayed_and_promoted() {
    let dir = TempDir::new("shadow");
    let issuer = DevIssuer::start(&dir.path().join("dev"));
    let server = Server::start(&dir.path().join("data"));
    let acme = quickstart(&server, &issuer, "acme").await;
    let narrowed = json!({"namespaces": ["team-a-*"], "grant": {"scopes": ["registry.pull"]}});
    let mut identity = team_identity(&["team-*"]);
    identity["shadow"] = json!({"policy": "builtin:rules", "config": narrowed});
    let (status, body) = server
        .put_identity("acme", "team", &acme.key, identity)
        .await;
    assert_eq!(status, 200, "{body}");

    // Traffic: the narrowed glob turns exactly the team-b exchanges from allowed to denied.
    let traffic = [
        "team-a-prod",
        "team-b-web",
        "team-a-ops",
        "dev",
        "team-b-api",
        "team-a-prod",
    ];
    let mut narrowed_away = Vec::new();
    for namespace in traffic {
        let token = issuer.token(&acme.audience, namespace, "app", &[]);
        let (status, body) = server.exchange(&acme.identity("team"), &token, &[]).await;
        let expected = if namespace == "dev" { 400 } else { 200 };
        assert_eq!(
            status, expected,
            "{namespace}: the candidate never changes an answer: {body}"
        );
        if namespace.starts_with("team-b-") {
            narrowed_away.push(format!("system:serviceaccount:{namespace}:app"));
        }
    }

    let (status, report) = server
        .admin(
            Method::GET,
            "/v1/tenants/acme/identities/team/shadow",
            Some(&acme.key),
            None,
        )
        .await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(
        (report["evaluated"].clone(), report["disagreed"].clone()),
        (json!(6), json!(2)),
        "{report}"
    );
    let pairs: Vec<(Value, Value, Value)> = report["pairs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["policy"].clone(),
                p["candidate"].clone(),
                p["count"].clone(),
            )
        })
        .collect();
    assert_eq!(
        pairs,
        [
            (json!("allow"), json!("allow"), json!(3)),
            (json!("allow"), json!("deny:namespace"), json!(2)),
            (json!("deny:namespace"), json!("deny:namespace"), json!(1)),
        ]
    );

    // Replay of the recorded traffic with the narrowed config finds the same two, and only them.
    let replay = |key: String, tenant: &'static str| {
        let body = json!({"policy": "builtin:rules", "config": narrowed, "since_seconds": 3600});
        let path = format!("/v1/tenants/{tenant}/identities/team/replay");
        let server = &server;
        async move {
            server
                .admin(Method::POST, &path, Some(&key), Some(body))
                .await
        }
    };
    let (status, replayed) = replay(acme.key.clone(), "acme").await;
    assert_eq!(status, 200, "{replayed}");
    assert_eq!(
        [
            &replayed["replayed"],
            &replayed["unchanged"],
            &replayed["allowed_to_denied"],
            &replayed["denied_to_allowed"]
        ],
        [&json!(6), &json!(4), &json!(2), &json!(0)],
        "{replayed}"
    );
    let changed: Vec<String> = replayed["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["subject"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(changed, narrowed_away);

    // Tenant B can neither read nor replay A's records: 403 on A's paths, nothing of A's under
    // its own identity of the same name.
    let globex = quickstart(&server, &issuer, "globex").await;
    assert_eq!(replay(globex.key.clone(), "acme").await.0, 403);
    let (status, _) = server
        .admin(
            Method::GET,
            "/v1/tenants/acme/identities/team/shadow",
            Some(&globex.key),
            None,
        )
        .await;
    assert_eq!(status, 403);
    let (status, body) = server
        .put_identity("globex", "team", &globex.key, team_identity(&["team-*"]))
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, theirs) = replay(globex.key.clone(), "globex").await;
    assert_eq!(
        (status, theirs["replayed"].clone()),
        (200, json!(0)),
        "{theirs}"
    );

    // Promotion is refused while the identity's own cases fail on the candidate...
    let case = |namespace: &str, expect: &str| {
        json!({"name": format!("{namespace} {expect}"), "expect": expect,
               "token": {"sub": format!("system:serviceaccount:{namespace}:app"),
                         "kubernetes.io": {"namespace": namespace, "serviceaccount": {"name": "app", "uid": "u"}}}})
    };
    let mut identity = team_identity(&["team-*"]);
    identity["shadow"] = json!({"policy": "builtin:rules", "config": narrowed});
    identity["cases"] = json!([case("team-a-prod", "allow"), case("team-b-web", "allow")]);
    let (status, body) = server
        .put_identity("acme", "team", &acme.key, identity.clone())
        .await;
    assert_eq!(status, 200, "{body}");
    let promote = || {
        server.admin(
            Method::POST,
            "/v1/tenants/acme/identities/team/promote",
            Some(&acme.key),
            None,
        )
    };
    let (status, body) = promote().await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("team-b-web allow"),
        "{body}"
    );
    // ...and done once they pass (on both): the narrowed config decides from then on.
    identity["cases"] = json!([case("team-a-prod", "allow"), case("dev", "deny")]);
    let (status, body) = server
        .put_identity("acme", "team", &acme.key, identity)
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, promoted) = promote().await;
    assert_eq!(status, 200, "{promoted}");
    assert!(promoted.get("shadow").is_none(), "{promoted}");
    let token = issuer.token(&acme.audience, "team-b-web", "app", &[]);
    assert_eq!(
        server.exchange(&acme.identity("team"), &token, &[]).await.0,
        400
    );
    let events = server.decisions("acme", &acme.key).await;
    assert!(
        events.iter().any(|d| d["event"] == "policy-change"
            && d["reason"]
                .as_str()
                .unwrap_or_default()
                .starts_with("promoted shadow")),
        "{events:?}"
    );
}
