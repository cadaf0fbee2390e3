//! The three issuer modes end to end, key rotation, outages and the refetch rate limit.

use super::server::TestServer;
use super::*;
use crate::policy::request::{ExchangeContext, build_request};
use axum::http::StatusCode;
use std::time::Duration;

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Valid claims for a live issuer at the real current time.
fn live_claims(issuer: &str) -> Value {
    let now = now();
    let mut claims = claims();
    let map = claims.as_object_mut().unwrap();
    map.insert("iss".into(), issuer.into());
    map.insert("iat".into(), (now - 10).into());
    map.insert("nbf".into(), (now - 10).into());
    map.insert("exp".into(), (now + 600).into());
    claims
}

fn discovery_issuer(server: &TestServer) -> IssuerConfig {
    IssuerConfig {
        cache_key: "acme/cluster".to_owned(),
        issuer_url: server.base().to_owned(),
        source: IssuerSource::Discovery {
            allow_external_jwks_uri: false,
        },
    }
}

fn insecure(refetch_interval: Duration, jwks_max_age: Duration) -> Verifier {
    Verifier::new(VerifySettings {
        allow_insecure: true,
        refetch_interval,
        jwks_max_age,
        fetch_timeout: Duration::from_millis(500),
        ..VerifySettings::default()
    })
    .unwrap()
}

fn jwks(keys: &[&TestKey]) -> Value {
    json!({ "keys": keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>() })
}

#[tokio::test]
async fn static_jwks_accepts_every_allowed_algorithm() {
    let keys = [
        TestKey::rsa("rs256", Algorithm::RS256),
        TestKey::rsa("rs384", Algorithm::RS384),
        TestKey::rsa("rs512", Algorithm::RS512),
        TestKey::rsa("ps256", Algorithm::PS256),
        TestKey::ec("es256", Algorithm::ES256),
        TestKey::ec("es384", Algorithm::ES384),
        TestKey::ed("ed"),
    ];
    let issuer = static_issuer(&keys.iter().collect::<Vec<_>>());
    verifier().validate_issuer(&issuer).unwrap();
    for key in &keys {
        let verified = check(&issuer, &key.sign(&claims())).await;
        assert_eq!(verified.as_ref(), Ok(&claims()), "{}", key.kid);
    }
}

#[tokio::test]
async fn static_jwks_expire() {
    let key = TestKey::ec("k", Algorithm::ES256);
    let mut issuer = static_issuer(&[&key]);
    issuer.source = IssuerSource::StaticJwks {
        jwks: jwks(&[&key]),
        expires_at: NOW,
    };
    assert_eq!(
        check(&issuer, &key.sign(&claims())).await,
        Err(VerifyError::StaticKeysExpired)
    );
}

#[tokio::test]
async fn discovery_happy_path_and_claims_feed_the_policy_request() {
    let key = TestKey::rsa("k1", Algorithm::RS256);
    let server = TestServer::start(jwks(&[&key])).await;
    let issuer = discovery_issuer(&server);
    let verifier = insecure(Duration::from_secs(30), Duration::from_secs(3600));
    verifier.validate_issuer(&issuer).unwrap();
    let claims = live_claims(server.base());
    let token = key.sign(&claims);
    for _ in 0..3 {
        let verified = verifier.verify(&issuer, &token, &audiences(), now()).await;
        assert_eq!(verified.as_ref(), Ok(&claims));
    }
    assert_eq!(server.jwks_hits(), 1, "keys are cached");
    let request = build_request(&claims, ExchangeContext::default(), "{}").unwrap();
    assert_eq!(request.token.kubernetes.unwrap().namespace, "prod");
}

#[tokio::test]
async fn discovery_issuer_must_match_exactly() {
    let key = TestKey::rsa("k1", Algorithm::RS256);
    let server = TestServer::start(jwks(&[&key])).await;
    let base = server.base().to_owned();
    for (doc_issuer, jwks_uri) in [
        (format!("{base}/"), format!("{base}/keys")),
        (base.to_uppercase(), format!("{base}/keys")),
        (format!("{base}/other"), format!("{base}/keys")),
    ] {
        server.set(|b| b.discovery = Some(json!({ "issuer": doc_issuer, "jwks_uri": jwks_uri })));
        let verifier = insecure(Duration::ZERO, Duration::from_secs(3600));
        let result = verifier
            .verify(
                &discovery_issuer(&server),
                &key.sign(&live_claims(&base)),
                &audiences(),
                now(),
            )
            .await;
        assert!(
            matches!(result, Err(VerifyError::Discovery(_))),
            "{doc_issuer}: {result:?}"
        );
    }
    assert_eq!(server.jwks_hits(), 0);
}

#[tokio::test]
async fn rotated_key_is_accepted_after_one_refetch() {
    let old = TestKey::rsa("old", Algorithm::RS256);
    let new = TestKey::ec("new", Algorithm::ES256);
    let server = TestServer::start(jwks(&[&old])).await;
    let issuer = discovery_issuer(&server);
    let verifier = insecure(Duration::from_millis(200), Duration::from_secs(3600));
    let claims = live_claims(server.base());
    verifier
        .verify(&issuer, &old.sign(&claims), &audiences(), now())
        .await
        .unwrap();
    server.set(|b| b.jwks = jwks(&[&old, &new]));
    tokio::time::sleep(Duration::from_millis(250)).await;
    let verified = verifier
        .verify(&issuer, &new.sign(&claims), &audiences(), now())
        .await;
    assert_eq!(verified, Ok(claims.clone()));
    assert_eq!(server.jwks_hits(), 2);
    verifier
        .verify(&issuer, &old.sign(&claims), &audiences(), now())
        .await
        .unwrap();
    assert_eq!(server.jwks_hits(), 2);
}

#[tokio::test]
async fn random_kid_flood_refetches_once_per_interval() {
    let key = TestKey::rsa("k1", Algorithm::RS256);
    let server = TestServer::start(jwks(&[&key])).await;
    let issuer = discovery_issuer(&server);
    let verifier = insecure(Duration::from_secs(1), Duration::from_secs(3600));
    let claims = live_claims(server.base());
    verifier
        .verify(&issuer, &key.sign(&claims), &audiences(), now())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let attacker = TestKey::rsa("unused", Algorithm::RS256);
    let mut tasks = Vec::new();
    for i in 0..200 {
        let mut header = attacker.header();
        header["kid"] = format!("random-{i}").into();
        let token = attacker.sign_raw(&header.to_string(), &claims.to_string());
        let (verifier, issuer) = (verifier.clone(), issuer.clone());
        tasks.push(tokio::spawn(async move {
            verifier.verify(&issuer, &token, &audiences(), now()).await
        }));
    }
    for task in tasks {
        assert!(matches!(
            task.await.unwrap(),
            Err(VerifyError::UnknownKid(_))
        ));
    }
    assert_eq!(server.jwks_hits(), 2, "one initial fetch, one refetch");
    // Valid tokens are not slowed down or refused by the flood.
    verifier
        .verify(&issuer, &key.sign(&claims), &audiences(), now())
        .await
        .unwrap();
}

#[tokio::test]
async fn cached_keys_keep_working_while_the_issuer_is_down() {
    let key = TestKey::rsa("k1", Algorithm::RS256);
    let server = TestServer::start(jwks(&[&key])).await;
    let issuer = discovery_issuer(&server);
    // Keys are "old" at once and refetching is always allowed: every call tries the issuer.
    let verifier = insecure(Duration::ZERO, Duration::ZERO);
    let claims = live_claims(server.base());
    let token = key.sign(&claims);
    verifier
        .verify(&issuer, &token, &audiences(), now())
        .await
        .unwrap();
    for outage in [
        StatusCode::SERVICE_UNAVAILABLE,
        StatusCode::INTERNAL_SERVER_ERROR,
        StatusCode::TOO_MANY_REQUESTS,
    ] {
        server.set(|b| b.fail_with = Some(outage));
        let verified = verifier.verify(&issuer, &token, &audiences(), now()).await;
        assert_eq!(verified.as_ref(), Ok(&claims), "{outage}");
    }
    server.set(|b| {
        b.fail_with = None;
        b.delay = Some(Duration::from_secs(2));
    });
    let verified = verifier.verify(&issuer, &token, &audiences(), now()).await;
    assert_eq!(verified.as_ref(), Ok(&claims), "timeout");
    // An unknown key is still refused, and the known one still works afterwards.
    let other = TestKey::rsa("k2", Algorithm::RS256);
    let refused = verifier
        .verify(&issuer, &other.sign(&claims), &audiences(), now())
        .await;
    assert!(
        matches!(refused, Err(VerifyError::UnknownKid(_))),
        "{refused:?}"
    );
    verifier
        .verify(&issuer, &token, &audiences(), now())
        .await
        .unwrap();
}

#[tokio::test]
async fn unreachable_issuer_without_cached_keys_is_a_fetch_error() {
    let key = TestKey::rsa("k1", Algorithm::RS256);
    let server = TestServer::start(jwks(&[&key])).await;
    server.set(|b| b.fail_with = Some(StatusCode::BAD_GATEWAY));
    let verifier = insecure(Duration::from_secs(60), Duration::from_secs(3600));
    let issuer = discovery_issuer(&server);
    let token = key.sign(&live_claims(server.base()));
    for _ in 0..5 {
        let result = verifier.verify(&issuer, &token, &audiences(), now()).await;
        assert!(
            matches!(
                result,
                Err(VerifyError::Fetch {
                    cause: FetchError::Status(502),
                    ..
                })
            ),
            "{result:?}"
        );
    }
    assert_eq!(
        server
            .shared
            .discovery_hits
            .load(std::sync::atomic::Ordering::SeqCst),
        1,
        "failed fetches are rate limited too"
    );
}

#[tokio::test]
async fn strict_mode_refuses_a_loopback_issuer_before_any_request() {
    let key = TestKey::rsa("k1", Algorithm::RS256);
    let server = TestServer::start(jwks(&[&key])).await;
    let verifier = Verifier::new(VerifySettings::default()).unwrap();
    let issuer = discovery_issuer(&server);
    assert!(matches!(
        verifier.validate_issuer(&issuer),
        Err(VerifyError::IssuerConfig(_))
    ));
    let https = IssuerConfig {
        issuer_url: server.base().replace("http://", "https://"),
        ..issuer
    };
    let result = verifier
        .verify(
            &https,
            &key.sign(&live_claims(&https.issuer_url)),
            &audiences(),
            now(),
        )
        .await;
    assert!(
        matches!(
            result,
            Err(VerifyError::Fetch {
                cause: FetchError::Url(UrlErrorKind::ForbiddenAddress { .. }),
                ..
            })
        ),
        "{result:?}"
    );
    assert_eq!(server.total_hits(), 0);
}

use super::super::address::UrlError as UrlErrorKind;

#[tokio::test]
async fn keys_are_cached_per_issuer_url_too() {
    let key = TestKey::rsa("k1", Algorithm::RS256);
    let server = TestServer::start(jwks(&[&key])).await;
    let other = TestServer::start(json!({ "keys": [] })).await;
    let verifier = insecure(Duration::from_secs(60), Duration::from_secs(3600));
    let issuer = discovery_issuer(&server);
    verifier
        .verify(
            &issuer,
            &key.sign(&live_claims(server.base())),
            &audiences(),
            now(),
        )
        .await
        .unwrap();
    // Same tenant and name, re-pointed at another issuer: the old keys must not carry over.
    let moved = IssuerConfig {
        issuer_url: other.base().to_owned(),
        ..issuer
    };
    let result = verifier
        .verify(
            &moved,
            &key.sign(&live_claims(other.base())),
            &audiences(),
            now(),
        )
        .await;
    assert_eq!(result, Err(VerifyError::NoUsableKeys));
}

#[test]
fn verifier_and_its_futures_are_send() {
    fn assert_send<T: Send + Sync>(_: &T) {}
    fn assert_send_future<T: Send>(_: &T) {}
    let verifier = verifier();
    assert_send(&verifier);
    let issuer = static_issuer(&[]);
    let audiences = audiences();
    let future = verifier.verify(&issuer, "x", &audiences, NOW);
    assert_send_future(&future);
}

#[tokio::test]
async fn claims_are_screened_before_any_fetch() {
    let key = TestKey::rsa("k1", Algorithm::RS256);
    let server = TestServer::start(jwks(&[&key])).await;
    let issuer = discovery_issuer(&server);
    let verifier = insecure(Duration::ZERO, Duration::ZERO);
    let unregistered = live_claims("https://not-registered.example");
    let mut expired = live_claims(server.base());
    expired["exp"] = json!(now() - 3600);
    expired["iat"] = json!(now() - 7200);
    expired["nbf"] = json!(now() - 7200);
    let mut elsewhere = live_claims(server.base());
    elsewhere["aud"] = json!(["https://elsewhere.example"]);
    for (claims, expected) in [
        (unregistered, VerifyError::Issuer),
        (expired, VerifyError::Expired),
        (elsewhere, VerifyError::Audience),
    ] {
        let result = verifier
            .verify(&issuer, &key.sign(&claims), &audiences(), now())
            .await;
        assert_eq!(result, Err(expected));
    }
    assert_eq!(
        server.total_hits(),
        0,
        "no request for a token that cannot pass"
    );
    verifier
        .verify(
            &issuer,
            &key.sign(&live_claims(server.base())),
            &audiences(),
            now(),
        )
        .await
        .unwrap();
    assert!(server.total_hits() > 0);
}
