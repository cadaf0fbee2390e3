//! `builtin:cel` on a real server: the `team-scopes` example written as CEL
//! (`policies/cel/cases.yaml`) allows and denies exactly as the Rust `team-scopes` module
//! (`policies/team-scopes/cases.yaml`'s config) on the same tokens, with its decisions in the
//! log with their fuel; a bad expression is refused when the identity is saved, with its line
//! and column.

use serde_json::{Value, json};
use tollgate_tests::fixtures::{self, module};
use tollgate_tests::jwt::payload;
use tollgate_tests::server::{DevIssuer, Server, TempDir, quickstart};

/// The top-level `config` of a cases file.
fn cases_config(path: &str) -> Value {
    let text = std::fs::read_to_string(fixtures::root().join(path)).unwrap();
    let yaml: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).unwrap();
    serde_json::to_value(&yaml["config"]).unwrap()
}

const SCOPES: [&str; 4] = ["team-a.read", "team-a.deploy", "infra.admin", "team-b.read"];

#[tokio::test]
async fn cel_decides_as_the_rust_team_scopes_policy_does() {
    let dir = TempDir::new("cel");
    let issuer = DevIssuer::start(&dir.path().join("dev"));
    let server = Server::start(&dir.path().join("data"));
    let acme = quickstart(&server, &issuer, "acme").await;
    let (status, uploaded) = server
        .upload_policy("acme", &acme.key, module("team_scopes"), "application/wasm")
        .await;
    assert_eq!(status, 201, "{uploaded}");
    let identity = |policy: &str, config: Value| json!({"issuer": "dev", "policy": policy, "config": config, "scopes": SCOPES});
    let rust = identity(
        uploaded["digest"].as_str().unwrap(),
        cases_config("policies/team-scopes/cases.yaml"),
    );
    let cel = identity("builtin:cel", cases_config("policies/cel/cases.yaml"));
    for (id, body) in [("rust", rust), ("cel", cel)] {
        let (status, answer) = server.put_identity("acme", id, &acme.key, body).await;
        assert_eq!(status, 200, "{id}: {answer}\n{}", server.log());
    }

    let mut compared = 0;
    for namespace in [
        "team-a-prod",
        "team-a-infra-ops",
        "team-ab",
        "team-attacker",
        "team-b-web",
        "default",
    ] {
        let token = issuer.token(&acme.audience, namespace, "app", &[]);
        for requested in ["", "team-a.read team-b.read", "team-b.read", "infra.admin"] {
            let extra: Vec<(&str, &str)> = if requested.is_empty() {
                vec![]
            } else {
                vec![("scope", requested)]
            };
            let outcome = |(status, body): (u16, Value)| -> (u16, Option<(Value, Value)>) {
                let granted = body["access_token"].as_str().map(|t| {
                    let claims = payload(t);
                    (claims["scope"].clone(), claims["team"].clone())
                });
                (status, granted)
            };
            let by_rust = outcome(
                server
                    .exchange(&acme.identity("rust"), &token, &extra)
                    .await,
            );
            let by_cel = outcome(server.exchange(&acme.identity("cel"), &token, &extra).await);
            assert_eq!(by_cel, by_rust, "{namespace}, scope `{requested}`");
            compared += 1;
        }
    }
    assert_eq!(compared, 24);
    // Both allowed and denied exchanges were among them, and the log has CEL's with fuel.
    let decisions = server.decisions("acme", &acme.key).await;
    let cel: Vec<&Value> = decisions
        .iter()
        .filter(|d| d["identity"] == "cel")
        .collect();
    assert!(cel.iter().any(|d| d["allowed"] == true) && cel.iter().any(|d| d["allowed"] == false));
    assert!(
        cel.iter().all(|d| d["fuel_used"].as_i64().unwrap() > 0),
        "{cel:?}"
    );
    assert!(
        cel.iter()
            .all(|d| d["policy_digest"].as_str().unwrap().starts_with("sha256:"))
    );

    // A bad expression is refused when the identity is saved, with its line and column.
    let bad = json!({"issuer": "dev", "policy": "builtin:cel", "config": {"condition": "assertion.sub ==\n  && true"}});
    let (status, answer) = server.put_identity("acme", "bad", &acme.key, bad).await;
    assert_eq!(status, 422, "{answer}");
    let message = answer["message"].as_str().unwrap();
    assert!(message.contains("condition: line 2, column 3"), "{message}");
    let (status, policies) = server
        .admin(
            reqwest::Method::GET,
            "/v1/tenants/acme/policies",
            Some(&acme.key),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(policies["builtin"], json!(["builtin:rules", "builtin:cel"]));
}
