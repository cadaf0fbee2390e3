//! Registered claims: exact issuer, integer times, validity window, lifetime and audience.

use super::*;
use VerifyError::*;

fn rsa() -> TestKey {
    TestKey::rsa("k1", Algorithm::RS256)
}

#[tokio::test]
async fn issuer_must_match_exactly() {
    let key = rsa();
    let issuer = static_issuer(&[&key]);
    for iss in [
        "https://k8s.example/",
        "https://K8S.example",
        "HTTPS://k8s.example",
        "https://k8s.example.evil",
        "https://k8s.exampl",
        "https://k8s.example/x",
        " https://k8s.example",
        "",
    ] {
        assert_eq!(
            check(&issuer, &key.sign(&claims_with("iss", Some(json!(iss))))).await,
            Err(Issuer),
            "{iss}"
        );
    }
    assert_eq!(
        check(&issuer, &key.sign(&claims_with("iss", None))).await,
        Err(MissingClaim("iss"))
    );
    assert_eq!(
        check(
            &issuer,
            &key.sign(&claims_with("iss", Some(json!([ISSUER]))))
        )
        .await,
        Err(NotAString("iss"))
    );
    assert_eq!(
        check(&issuer, &key.sign(&claims_with("sub", Some(json!(5))))).await,
        Err(NotAString("sub"))
    );
    assert_eq!(
        check(&issuer, &key.sign(&claims_with("sub", None))).await,
        Err(MissingClaim("sub"))
    );
}

#[tokio::test]
async fn time_claims_must_be_integers_in_range() {
    let key = rsa();
    let issuer = static_issuer(&[&key]);
    let bad_exp = [
        json!("1800003600"),
        json!(1_800_003_600.0),
        json!(1.8000036e9),
        json!(true),
        json!(null),
        json!(-1),
        json!(u64::MAX),
        json!(i64::MAX),
        json!(253_402_300_800_i64),
        json!([1_800_003_600]),
    ];
    for exp in bad_exp {
        let token = key.sign(&claims_with("exp", Some(exp.clone())));
        assert_eq!(check(&issuer, &token).await, Err(BadTime("exp")), "{exp}");
    }
    let huge = key.sign_raw(
        &key.header().to_string(),
        &claims().to_string().replace("1800003600", "1e400"),
    );
    assert!(matches!(check(&issuer, &huge).await, Err(Malformed(_))));
    assert_eq!(
        check(&issuer, &key.sign(&claims_with("exp", None))).await,
        Err(MissingClaim("exp"))
    );
    assert_eq!(
        check(&issuer, &key.sign(&claims_with("iat", Some(json!("1"))))).await,
        Err(BadTime("iat"))
    );
    assert_eq!(
        check(&issuer, &key.sign(&claims_with("nbf", Some(json!(1.5))))).await,
        Err(BadTime("nbf"))
    );
}

#[tokio::test]
async fn validity_window_with_leeway() {
    let key = rsa();
    let issuer = static_issuer(&[&key]);
    let at = |claim: &str, t: i64| key.sign(&claims_with(claim, Some(json!(t))));
    assert_eq!(check(&issuer, &at("exp", NOW - 61)).await, Err(Expired));
    assert_eq!(check(&issuer, &at("exp", NOW - 60)).await, Err(Expired));
    check(&issuer, &at("exp", NOW - 59)).await.unwrap();
    assert_eq!(check(&issuer, &at("nbf", NOW + 61)).await, Err(NotYetValid));
    check(&issuer, &at("nbf", NOW + 60)).await.unwrap();
    assert_eq!(
        check(&issuer, &at("iat", NOW + 61)).await,
        Err(IssuedInFuture)
    );
    check(&issuer, &at("iat", NOW + 60)).await.unwrap();
}

#[tokio::test]
async fn lifetime_is_bounded() {
    let key = rsa();
    let issuer = static_issuer(&[&key]);
    let max = 48 * 3600;
    let mut long = claims();
    long["iat"] = json!(NOW - 10);
    long["exp"] = json!(NOW - 10 + max + 1);
    assert_eq!(
        check(&issuer, &key.sign(&long)).await,
        Err(Lifetime {
            lifetime: max + 1,
            max
        })
    );
    long["exp"] = json!(NOW - 10 + max);
    check(&issuer, &key.sign(&long)).await.unwrap();
    // Without `iat`, the remaining lifetime counts.
    let mut no_iat = claims_with("iat", None);
    no_iat["exp"] = json!(NOW + max + 1);
    assert_eq!(
        check(&issuer, &key.sign(&no_iat)).await,
        Err(Lifetime {
            lifetime: max + 1,
            max
        })
    );
    // An ancient `iat` cannot stretch a token either.
    let mut old = claims();
    old["iat"] = json!(0);
    assert!(matches!(
        check(&issuer, &key.sign(&old)).await,
        Err(Lifetime { .. })
    ));
}

/// A kube-api-access token: `exp` a year out, `kubernetes.io.warnafter` an hour after `iat`.
/// Judged by its warn time: accepted until then, refused after, and never stretched by it.
#[tokio::test]
async fn an_extended_token_is_judged_by_its_warn_time() {
    let key = rsa();
    let issuer = static_issuer(&[&key]);
    let extended = |iat: i64, warnafter: Value| {
        let mut claims = claims();
        claims["iat"] = json!(iat);
        claims["exp"] = json!(iat + 365 * 24 * 3600);
        claims["kubernetes.io"]["warnafter"] = warnafter;
        key.sign(&claims)
    };
    check(&issuer, &extended(NOW - 600, json!(NOW - 600 + 3607)))
        .await
        .unwrap();
    // Past its warn time (and the leeway), it is expired.
    assert_eq!(
        check(&issuer, &extended(NOW - 7200, json!(NOW - 7200 + 3607))).await,
        Err(Expired)
    );
    // Without `warnafter` the year-long lifetime is refused, as before.
    let mut plain = claims();
    plain["iat"] = json!(NOW - 600);
    plain["exp"] = json!(NOW - 600 + 365 * 24 * 3600);
    assert!(matches!(
        check(&issuer, &key.sign(&plain)).await,
        Err(Lifetime { .. })
    ));
    // A `warnafter` past `exp` changes nothing; one that is not a time is refused.
    let mut later = claims();
    later["kubernetes.io"]["warnafter"] = json!(NOW + 10 * 365 * 24 * 3600);
    check(&issuer, &key.sign(&later)).await.unwrap();
    assert_eq!(
        check(&issuer, &extended(NOW - 600, json!("soon"))).await,
        Err(BadTime("kubernetes.io.warnafter"))
    );
}

#[tokio::test]
async fn audience_must_be_accepted() {
    let key = rsa();
    let issuer = static_issuer(&[&key]);
    let with = |aud: Option<Value>| key.sign(&claims_with("aud", aud));
    check(&issuer, &with(Some(json!(AUDIENCE)))).await.unwrap();
    check(&issuer, &with(Some(json!(["other", AUDIENCE]))))
        .await
        .unwrap();
    for (aud, expected) in [
        (Some(json!("other")), Audience),
        (
            Some(json!(["other", "https://sts.example.com/acme/"])),
            Audience,
        ),
        (Some(json!(format!("{AUDIENCE} "))), Audience),
        (Some(json!([])), BadAudience),
        (Some(json!([AUDIENCE, 5])), BadAudience),
        (Some(json!(5)), BadAudience),
        (Some(json!({ "aud": AUDIENCE })), BadAudience),
        (None, MissingClaim("aud")),
    ] {
        assert_eq!(
            check(&issuer, &with(aud.clone())).await,
            Err(expected),
            "{aud:?}"
        );
    }
    let none: Vec<String> = Vec::new();
    let result = verifier()
        .verify(&issuer, &with(Some(json!(AUDIENCE))), &none, NOW)
        .await;
    assert_eq!(result, Err(Audience));
}
