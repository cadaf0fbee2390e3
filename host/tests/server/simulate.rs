//! Simulate answers exactly what the exchange would issue: both call the same decision, so for
//! the same token and request they agree on the decision, the scopes, the ttl and the audience
//! (and, when refused, on the code the decision log records). A token with a trailing newline
//! gets the same refusal from both.

use reqwest::Method;
use serde_json::{Value, json};
use tollgate_tests::jwt::payload;
use tollgate_tests::server::{DevIssuer, Server, TempDir, Tenant, quickstart};

/// A case: its name, the token, the exchange's extra form parameters, simulate's request.
type Case<'a> = (&'a str, &'a str, Vec<(&'a str, &'a str)>, Value);

/// What an exchange issued, or the code its refusal was recorded with.
#[derive(Debug, PartialEq)]
enum Outcome {
    Allowed {
        scopes: Vec<String>,
        ttl: i64,
        audience: String,
    },
    Denied(String),
}

async fn exchanged(
    server: &Server,
    tenant: &Tenant,
    token: &str,
    extra: &[(&str, &str)],
) -> Outcome {
    let (status, body) = server
        .exchange(&tenant.identity("shaped"), token, extra)
        .await;
    if status == 200 {
        let claims = payload(body["access_token"].as_str().unwrap());
        return Outcome::Allowed {
            scopes: claims["scope"]
                .as_str()
                .unwrap()
                .split_whitespace()
                .map(str::to_owned)
                .collect(),
            ttl: claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
            audience: claims["aud"].as_str().unwrap().to_owned(),
        };
    }
    let recorded = server.decisions(&tenant.name, &tenant.key).await;
    match recorded.first() {
        Some(newest) if newest["allowed"] == false => {
            Outcome::Denied(newest["code"].as_str().unwrap().to_owned())
        }
        // Refused before the identity was looked up: nothing is recorded.
        _ => Outcome::Denied("invalid-token".into()),
    }
}

async fn simulated(server: &Server, tenant: &Tenant, token: &str, request: Value) -> Outcome {
    let mut body = request;
    body["token"] = json!(token);
    let path = format!("/v1/tenants/{}/identities/shaped/simulate", tenant.name);
    let (status, answer) = server
        .admin(Method::POST, &path, Some(&tenant.key), Some(body))
        .await;
    assert_eq!(status, 200, "{answer}");
    match answer["decision"].as_str() {
        Some("allow") => Outcome::Allowed {
            scopes: serde_json::from_value(answer["scopes"].clone()).unwrap(),
            ttl: answer["ttl_seconds"].as_i64().unwrap(),
            audience: answer["audience"].as_str().unwrap().to_owned(),
        },
        _ => Outcome::Denied(answer["code"].as_str().unwrap().to_owned()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulate_answers_what_the_exchange_issues() {
    let dir = TempDir::new("simulate-agrees");
    let issuer = DevIssuer::start(&dir.path().join("dev"));
    let server = Server::start(&dir.path().join("data"));
    let acme = quickstart(&server, &issuer, "acme").await;
    // The policy grants more scopes and a longer ttl than the identity allows: the issued token
    // carries the intersection, for the identity's ttl (the drift simulate once had: it
    // reported `a,b` for 5000 s where the exchange issues `a` for 600 s).
    let identity = json!({
        "issuer": "dev",
        "config": {"namespaces": ["prod"], "grant": {"scopes": ["a", "b", "c"], "ttl_seconds": 5000}},
        "scopes": ["a", "c"], "ttl_seconds": 600, "max_ttl_seconds": 3600,
        "token_audiences": ["https://one.example", "https://two.example"],
    });
    let (status, body) = server
        .put_identity("acme", "shaped", &acme.key, identity)
        .await;
    assert_eq!(status, 200, "{body}");
    let prod = issuer.token(&acme.audience, "prod", "deployer", &[]);
    let dev = issuer.token(&acme.audience, "dev", "deployer", &[]);
    let cases: Vec<Case> = vec![
        ("everything granted", &prod, vec![], json!({})),
        (
            "narrowed scope",
            &prod,
            vec![("scope", "c")],
            json!({"scopes": ["c"]}),
        ),
        (
            "scope the identity lacks",
            &prod,
            vec![("scope", "b")],
            json!({"scopes": ["b"]}),
        ),
        (
            "second audience",
            &prod,
            vec![("resource", "https://two.example")],
            json!({"audience": "https://two.example"}),
        ),
        (
            "unknown audience",
            &prod,
            vec![("resource", "https://three.example")],
            json!({"audience": "https://three.example"}),
        ),
        ("policy denies", &dev, vec![], json!({})),
    ];
    for (case, token, form, request) in cases {
        let issued = exchanged(&server, &acme, token, &form).await;
        let answered = simulated(&server, &acme, token, request).await;
        assert_eq!(issued, answered, "{case}");
    }
    assert_eq!(
        exchanged(&server, &acme, &prod, &[]).await,
        Outcome::Allowed {
            scopes: vec!["a".into(), "c".into()],
            ttl: 600,
            audience: "https://one.example".into(),
        }
    );
    // A token file written by `kubectl create token ... > f` ends in a newline.
    let newline = format!("{prod}\n");
    let issued = exchanged(&server, &acme, &newline, &[]).await;
    let answered = simulated(&server, &acme, &newline, json!({})).await;
    assert_eq!(issued, answered, "trailing newline");
}
