//! TokenReview mode: the API server decides; any doubt is a denial.

use super::server::TestServer;
use super::*;
use crate::policy::request::{ExchangeContext, build_request};
use axum::http::StatusCode;

const REVIEWER: &str = "reviewer-secret";

fn review_issuer(server: &TestServer) -> IssuerConfig {
    IssuerConfig {
        cache_key: "acme/cluster".to_owned(),
        issuer_url: ISSUER.to_owned(),
        source: IssuerSource::TokenReview {
            api_server: server.base().to_owned(),
            ca_pem: None,
            reviewer_token: REVIEWER.to_owned(),
            any_issuer: false,
        },
    }
}

fn answer() -> Value {
    json!({
        "apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
        "status": {
            "authenticated": true,
            "audiences": [AUDIENCE],
            "user": {
                "username": "system:serviceaccount:prod:deployer",
                "uid": "sa-uid-1",
                "groups": ["system:serviceaccounts", "system:serviceaccounts:prod"],
                "extra": {
                    "authentication.kubernetes.io/pod-name": ["deployer-7d9f"],
                    "authentication.kubernetes.io/pod-uid": ["pod-uid-1"],
                    "authentication.kubernetes.io/node-name": ["node-a"],
                    "authentication.kubernetes.io/node-uid": ["node-uid-1"],
                    "authentication.kubernetes.io/credential-id": ["JTI=9f1c"],
                },
            },
        },
    })
}

/// The review answer with `status.<path>` replaced.
fn answer_with(path: &[&str], value: Value) -> Value {
    let mut answer = answer();
    let mut target = &mut answer["status"];
    for key in &path[..path.len() - 1] {
        target = &mut target[*key];
    }
    target[path[path.len() - 1]] = value;
    answer
}

async fn reviewed(
    server: &TestServer,
    answer: (StatusCode, Value),
    token: &str,
) -> Result<Value, VerifyError> {
    server.set(|b| b.review = Some(answer));
    check(&review_issuer(server), token).await
}

#[tokio::test]
async fn authenticated_review_yields_projected_claims() {
    // The cluster's own key is unknown to Tollgate: only the API server vouches.
    let key = TestKey::rsa("cluster", Algorithm::RS256);
    let server = TestServer::start(Value::Null).await;
    let issuer = review_issuer(&server);
    verifier().validate_issuer(&issuer).unwrap();
    let token = key.sign(&claims());
    let verified = reviewed(&server, (StatusCode::CREATED, answer()), &token)
        .await
        .unwrap();
    assert_eq!(verified, claims());
    let (auth, body) = server
        .shared
        .behaviour
        .lock()
        .unwrap()
        .last_review
        .clone()
        .unwrap();
    assert_eq!(auth, format!("Bearer {REVIEWER}"));
    assert_eq!(
        body,
        json!({
            "apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
            "spec": { "token": token, "audiences": [AUDIENCE] },
        })
    );
    let request = build_request(&verified, ExchangeContext::default(), "{}").unwrap();
    let k8s = request.token.kubernetes.unwrap();
    assert_eq!(k8s.pod.unwrap().name, "deployer-7d9f");
    assert_eq!(k8s.node.unwrap().uid, "node-uid-1");
    assert_eq!(k8s.service_account.uid, "sa-uid-1");
}

#[tokio::test]
async fn pod_and_node_come_from_the_review_when_the_token_has_none() {
    let key = TestKey::rsa("cluster", Algorithm::RS256);
    let server = TestServer::start(Value::Null).await;
    let token = key.sign(&claims_with("kubernetes.io", None));
    let verified = reviewed(&server, (StatusCode::CREATED, answer()), &token)
        .await
        .unwrap();
    assert_eq!(verified["kubernetes.io"], claims()["kubernetes.io"]);
}

#[tokio::test]
async fn pod_and_node_come_from_the_token_when_the_review_has_no_extras() {
    let key = TestKey::rsa("cluster", Algorithm::RS256);
    let server = TestServer::start(Value::Null).await;
    let mut bare = answer();
    bare["status"]["user"]
        .as_object_mut()
        .unwrap()
        .remove("extra");
    bare["status"]["user"]
        .as_object_mut()
        .unwrap()
        .remove("uid");
    let verified = reviewed(&server, (StatusCode::CREATED, bare), &key.sign(&claims()))
        .await
        .unwrap();
    assert_eq!(verified, claims());
}

/// A hostile API server vouching with control characters in what only it says (here a pod
/// name for a token that names none): the claims it produced are refused like a token's own.
#[tokio::test]
async fn control_characters_in_a_review_answer_are_refused() {
    let key = TestKey::rsa("cluster", Algorithm::RS256);
    let server = TestServer::start(Value::Null).await;
    let token = key.sign(&claims_with("kubernetes.io", None));
    for (path, value) in [
        (
            ["user", "extra", "authentication.kubernetes.io/pod-name"],
            json!(["api-1\nFAKE"]),
        ),
        (
            ["user", "extra", "authentication.kubernetes.io/node-uid"],
            json!(["n\u{1b}[2J"]),
        ),
    ] {
        let hostile = answer_with(&path, value);
        assert_eq!(
            reviewed(&server, (StatusCode::CREATED, hostile), &token).await,
            Err(VerifyError::ControlCharacter),
            "{path:?}"
        );
    }
}

#[tokio::test]
async fn any_doubt_is_a_denial() {
    let key = TestKey::rsa("cluster", Algorithm::RS256);
    let server = TestServer::start(Value::Null).await;
    let token = key.sign(&claims());
    let denials = [
        answer_with(&["authenticated"], json!(false)),
        answer_with(&["authenticated"], json!("true")),
        answer_with(&["audiences"], json!(["https://other.example"])),
        answer_with(&["audiences"], json!([])),
        answer_with(
            &["user", "username"],
            json!("system:serviceaccount:prod:other"),
        ),
        answer_with(
            &["user", "username"],
            json!("system:serviceaccount:staging:deployer"),
        ),
        answer_with(&["user", "username"], json!("alice")),
        answer_with(
            &["user", "username"],
            json!("system:serviceaccount:prod:a:b"),
        ),
        answer_with(&["user", "uid"], json!("sa-uid-2")),
        answer_with(
            &["user", "extra", "authentication.kubernetes.io/pod-name"],
            json!(["evil"]),
        ),
        answer_with(
            &["user", "extra", "authentication.kubernetes.io/pod-name"],
            json!(["a", "b"]),
        ),
        answer_with(
            &["user", "extra", "authentication.kubernetes.io/node-uid"],
            json!(["x"]),
        ),
        json!({ "kind": "TokenReview" }),
    ];
    for answer in denials {
        let result = reviewed(&server, (StatusCode::CREATED, answer.clone()), &token).await;
        assert!(
            matches!(result, Err(VerifyError::TokenReviewDenied(_))),
            "{answer}: {result:?}"
        );
    }
    for status in [
        StatusCode::INTERNAL_SERVER_ERROR,
        StatusCode::SERVICE_UNAVAILABLE,
        StatusCode::TOO_MANY_REQUESTS,
        StatusCode::UNAUTHORIZED,
        StatusCode::FORBIDDEN,
    ] {
        let result = reviewed(&server, (status, answer()), &token).await;
        assert!(
            matches!(result, Err(VerifyError::TokenReview(_))),
            "{status}: {result:?}"
        );
    }
}

#[tokio::test]
async fn unreachable_api_server_is_a_denial() {
    let key = TestKey::rsa("cluster", Algorithm::RS256);
    let server = TestServer::start(Value::Null).await;
    let issuer = review_issuer(&server);
    drop(server);
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let result = check(&issuer, &key.sign(&claims())).await;
    assert!(
        matches!(result, Err(VerifyError::TokenReview(_))),
        "{result:?}"
    );
}

#[tokio::test]
async fn slow_api_server_is_a_denial() {
    let key = TestKey::rsa("cluster", Algorithm::RS256);
    let server = TestServer::start(Value::Null).await;
    server.set(|b| {
        b.review = Some((StatusCode::CREATED, answer()));
        b.delay = Some(std::time::Duration::from_secs(3));
    });
    let verifier = Verifier::new(VerifySettings {
        allow_insecure: true,
        fetch_timeout: std::time::Duration::from_millis(300),
        ..VerifySettings::default()
    })
    .unwrap();
    let result = verifier
        .verify(
            &review_issuer(&server),
            &key.sign(&claims()),
            &audiences(),
            NOW,
        )
        .await;
    assert_eq!(
        result,
        Err(VerifyError::TokenReview("request timed out".to_owned()))
    );
}

#[tokio::test]
async fn token_claims_are_checked_before_asking() {
    let key = TestKey::rsa("cluster", Algorithm::RS256);
    let server = TestServer::start(Value::Null).await;
    server.set(|b| b.review = Some((StatusCode::CREATED, answer())));
    let issuer = review_issuer(&server);
    for (claims, expected) in [
        (
            claims_with("iss", Some(json!("https://k8s.example/"))),
            VerifyError::Issuer,
        ),
        (
            claims_with("exp", Some(json!(NOW - 3600))),
            VerifyError::Expired,
        ),
        (
            claims_with("aud", Some(json!("other"))),
            VerifyError::Audience,
        ),
    ] {
        assert_eq!(check(&issuer, &key.sign(&claims)).await, Err(expected));
    }
    assert_eq!(
        check(&issuer, "not-a-jwt").await.unwrap_err(),
        VerifyError::Malformed("a compact JWS has exactly three segments")
    );
    assert!(
        server
            .shared
            .behaviour
            .lock()
            .unwrap()
            .last_review
            .is_none()
    );
}

#[test]
fn validation_of_token_review_issuers() {
    let verifier = Verifier::new(VerifySettings::default()).unwrap();
    let config = |api_server: &str, ca_pem: Option<&str>, reviewer_token: &str| IssuerConfig {
        cache_key: "acme/c".to_owned(),
        issuer_url: ISSUER.to_owned(),
        source: IssuerSource::TokenReview {
            api_server: api_server.to_owned(),
            ca_pem: ca_pem.map(str::to_owned),
            reviewer_token: reviewer_token.to_owned(),
            any_issuer: false,
        },
    };
    verifier
        .validate_issuer(&config("https://api.cluster.example:6443", None, "t"))
        .unwrap();
    for bad in [
        config("http://api.cluster.example", None, "t"),
        config("https://10.0.0.1:6443", None, "t"),
        config("https://api.cluster.example", Some("not a pem"), "t"),
        config("https://api.cluster.example", None, ""),
        config("https://api.cluster.example", None, "t\r\nX-Evil: 1"),
    ] {
        assert!(
            matches!(
                verifier.validate_issuer(&bad),
                Err(VerifyError::IssuerConfig(_))
            ),
            "{bad:?}"
        );
    }
}

#[test]
fn debug_output_hides_the_reviewer_token() {
    let source = IssuerSource::TokenReview {
        api_server: "https://api".to_owned(),
        ca_pem: None,
        reviewer_token: REVIEWER.to_owned(),
        any_issuer: false,
    };
    let text = format!("{source:?}");
    assert!(!text.contains(REVIEWER), "{text}");
    assert!(text.contains("https://api"));
}

#[test]
fn issuer_source_serde_shape() {
    let source: IssuerSource = serde_json::from_value(json!({
        "mode": "token_review", "api_server": "https://api", "ca_pem": null, "reviewer_token": "t",
    }))
    .unwrap();
    assert!(matches!(source, IssuerSource::TokenReview { .. }));
    let source: IssuerSource = serde_json::from_value(json!({ "mode": "discovery" })).unwrap();
    assert_eq!(
        source,
        IssuerSource::Discovery {
            allow_external_jwks_uri: false
        }
    );
    assert_eq!(
        serde_json::to_value(&source).unwrap(),
        json!({ "mode": "discovery" })
    );
    let source: IssuerSource = serde_json::from_value(
        json!({ "mode": "static_jwks", "jwks": {"keys": []}, "expires_at": 5 }),
    )
    .unwrap();
    assert!(matches!(
        source,
        IssuerSource::StaticJwks { expires_at: 5, .. }
    ));
    for bad in [
        json!({ "mode": "discovery", "jwks_uri": "https://evil" }),
        json!({ "mode": "static_jwks", "jwks": {}, "expires_at": 5, "extra": 1 }),
        json!({ "mode": "none" }),
    ] {
        assert!(
            serde_json::from_value::<IssuerSource>(bad.clone()).is_err(),
            "{bad}"
        );
    }
}
