//! Claims under attack, against the real `tollgate serve` on loopback: `crit`, duplicate
//! keys, claims of the wrong type, missing claims, look-alike issuers and audiences, times out
//! of bounds, another tenant's token and Tollgate's own access token presented as subject
//! tokens. Each is refused with the generic RFC 6749 answer and recorded with its reason; the
//! bounds are shown to let good tokens through.

use tollgate_tests::attack as support;

use serde_json::{Value, json};
use support::{now, rsa_target};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_and_claim_shape_attacks_are_refused() {
    let (target, key) = rsa_target("atk-claims").await;
    let now = now();
    let iss = target.issuer_url.clone();
    let header = key.header().to_string();
    let with = |name: &str, value: Option<Value>| {
        let mut claims = target.claims();
        match value {
            Some(value) => claims[name] = value,
            None => {
                claims.as_object_mut().unwrap().remove(name);
            }
        }
        key.sign(&claims)
    };

    // `crit`: an extension we do not understand must not be ignored.
    for crit in [json!(["exp"]), json!(["b64"]), json!([]), json!("exp")] {
        let mut h = key.header();
        h["b64"] = json!(false);
        h["crit"] = crit.clone();
        let token = key.sign_raw(&h.to_string(), &target.claims().to_string());
        target
            .assert_screened("deployer", &token, &format!("crit {crit}"), "`crit`")
            .await;
    }

    // Duplicate keys, which parsers resolve differently (first wins, last wins).
    let payload = target.claims().to_string();
    let admin = r#""sub":"system:serviceaccount:kube-system:admin","#;
    let duplicates = [
        (
            "dup sub first",
            header.clone(),
            payload.replacen('{', &format!("{{{admin}"), 1),
        ),
        (
            "dup sub last",
            header.clone(),
            format!(
                "{},{}}}",
                &payload[..payload.len() - 1],
                admin.trim_end_matches(',')
            ),
        ),
        (
            "dup iss",
            header.clone(),
            payload.replacen('{', r#"{"iss":"https://evil.example","#, 1),
        ),
        (
            "dup exp",
            header.clone(),
            payload.replacen('{', &format!(r#"{{"exp":{},"#, now + 9_999_999), 1),
        ),
        (
            "dup nested namespace",
            header.clone(),
            payload.replacen(
                r#""namespace":"prod""#,
                r#""namespace":"kube-system","namespace":"prod""#,
                1,
            ),
        ),
        (
            "dup escaped key",
            header.clone(),
            payload.replacen(
                '{',
                r#"{"s\u0075b":"system:serviceaccount:kube-system:admin","#,
                1,
            ),
        ),
        (
            "dup alg",
            r#"{"alg":"none","kid":"k1","alg":"RS256"}"#.to_owned(),
            payload.clone(),
        ),
        (
            "dup kid",
            r#"{"alg":"RS256","kid":"evil","kid":"k1"}"#.to_owned(),
            payload.clone(),
        ),
    ];
    for (case, h, p) in duplicates {
        assert_ne!((&h, &p), (&header, &payload), "{case} changed nothing");
        let token = key.sign_raw(&h, &p);
        target
            .assert_screened("deployer", &token, case, "duplicate JSON keys")
            .await;
    }

    let mut cases: Vec<(String, String, &str)> = vec![
        (
            "iss array".into(),
            with("iss", Some(json!([iss]))),
            "claim `iss` must be a string",
        ),
        (
            "sub array".into(),
            with("sub", Some(json!(["system:serviceaccount:prod:deployer"]))),
            "claim `sub` must be a string",
        ),
        (
            "sub object".into(),
            with("sub", Some(json!({}))),
            "claim `sub` must be a string",
        ),
        (
            "sub empty".into(),
            with("sub", Some(json!(""))),
            "claim `sub` is missing",
        ),
        (
            "missing iss".into(),
            with("iss", None),
            "claim `iss` is missing",
        ),
        (
            "missing sub".into(),
            with("sub", None),
            "claim `sub` is missing",
        ),
        (
            "missing exp".into(),
            with("exp", None),
            "claim `exp` is missing",
        ),
        (
            "missing aud".into(),
            with("aud", None),
            "claim `aud` is missing",
        ),
        (
            "aud empty list".into(),
            with("aud", Some(json!([]))),
            "claim `aud` must be",
        ),
        (
            "aud number".into(),
            with("aud", Some(json!(7))),
            "claim `aud` must be",
        ),
        (
            "aud list with object".into(),
            with("aud", Some(json!([target.audience, {}]))),
            "claim `aud` must be",
        ),
        (
            "aud other".into(),
            with("aud", Some(json!(["https://elsewhere.example"]))),
            "token audience is not accepted",
        ),
        (
            "aud prefix".into(),
            with(
                "aud",
                Some(json!([&target.audience[..target.audience.len() - 1]])),
            ),
            "token audience is not accepted",
        ),
        (
            "aud trailing slash".into(),
            with("aud", Some(json!([format!("{}/", target.audience)]))),
            "token audience is not accepted",
        ),
    ];
    for (case, wrong) in [
        ("iss trailing slash", format!("{iss}/")),
        ("iss upper case", iss.to_uppercase()),
        ("iss upper-case path", iss.replace("/main", "/MAIN")),
        ("iss prefix", iss[..iss.len() - 1].to_owned()),
        ("iss extended", format!("{iss}x")),
        ("iss sub-path", format!("{iss}/evil")),
        ("iss as substring", format!("https://evil.example/?{iss}")),
        ("iss with space", format!("{iss} ")),
        ("iss with dot", iss.replace("127.0.0.1", "127.0.0.1.")),
        ("iss empty", String::new()),
    ] {
        cases.push((
            case.into(),
            with("iss", Some(json!(wrong))),
            "issuer does not match",
        ));
    }
    for name in ["exp", "nbf", "iat"] {
        let good = target.claims()[name].as_i64().unwrap();
        for (kind, value) in [
            ("string", json!(good.to_string())),
            ("float", json!(good as f64 + 0.5)),
            ("integral float", json!(good as f64)),
            ("exponent", json!(1.8e9)),
            ("negative", json!(-1)),
            ("huge", json!(u64::MAX)),
            ("past year 9999", json!(253_402_300_800_i64)),
            ("overflow", json!(1e300)),
            ("true", json!(true)),
            ("null", Value::Null),
            ("list", json!([good])),
        ] {
            let reason = match name {
                "exp" => "claim `exp` must be a non-negative integer",
                "nbf" => "claim `nbf` must be a non-negative integer",
                _ => "claim `iat` must be a non-negative integer",
            };
            cases.push((format!("{name} {kind}"), with(name, Some(value)), reason));
        }
    }
    // Times: past the 60 s leeway, in the future, over the 48 h maximum lifetime.
    let timed = |iat: Option<i64>, nbf: Option<i64>, exp: i64| {
        let mut claims = target.claims();
        let map = claims.as_object_mut().unwrap();
        for (name, value) in [("iat", iat), ("nbf", nbf)] {
            match value {
                Some(v) => map.insert(name.into(), json!(v)),
                None => map.remove(name),
            };
        }
        map.insert("exp".into(), json!(exp));
        key.sign(&claims)
    };
    let hour = 3600;
    cases.extend([
        (
            "expired past leeway".into(),
            timed(Some(now - hour), None, now - 300),
            "token has expired",
        ),
        (
            "expired long ago".into(),
            timed(Some(1), Some(1), 2),
            "token has expired",
        ),
        (
            "nbf in the future".into(),
            timed(Some(now), Some(now + 600), now + hour),
            "token is not valid yet",
        ),
        (
            "iat in the future".into(),
            timed(Some(now + 600), None, now + hour),
            "issued in the future",
        ),
        (
            "lifetime 49 h".into(),
            timed(Some(now - 60), None, now + 49 * hour),
            "exceeds the maximum",
        ),
        (
            "lifetime 49 h without iat".into(),
            timed(None, None, now + 49 * hour),
            "exceeds the maximum",
        ),
        (
            "exp year 9999".into(),
            timed(Some(now), None, 253_402_300_799),
            "exceeds the maximum",
        ),
    ]);
    for (case, token, reason) in cases {
        target
            .assert_refused("deployer", &token, &case, reason)
            .await;
    }
    // Within the leeway and at the maximum lifetime, tokens still pass: the checks above are
    // the bounds, not a blanket refusal.
    target
        .assert_accepted(
            "deployer",
            &timed(Some(now - hour), None, now - 5),
            "exp within leeway",
        )
        .await;
    target
        .assert_accepted(
            "deployer",
            &timed(Some(now - 60), None, now + 47 * hour),
            "lifetime 47 h",
        )
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn own_tokens_and_other_tenants_tokens_are_refused() {
    let (target, key) = rsa_target("atk-cross").await;
    let server = &target.server;

    // Tenant bravo trusts the very same issuer, for its own audience.
    let (bravo_key, bravo_audience) = server.create_tenant("bravo").await;
    let path = "/v1/tenants/bravo/issuers/main";
    let body = json!({ "issuer_url": target.issuer_url });
    let (status, answer) = server
        .admin(reqwest::Method::PUT, path, Some(&bravo_key), Some(body))
        .await;
    assert_eq!(status, 200, "{answer}");
    let identity = json!({
        "issuer": "main",
        "config": {"namespaces": ["prod"], "grant": {"scopes": ["registry.pull"]}},
        "scopes": ["registry.pull"],
    });
    let (status, answer) = server
        .put_identity("bravo", "deployer", &bravo_key, identity)
        .await;
    assert_eq!(status, 200, "{answer}");
    let bravo = "tenants/bravo/identities/deployer";
    let mut for_bravo = target.claims();
    for_bravo["aud"] = json!([bravo_audience]);
    let (status, answer) = server.exchange(bravo, &key.sign(&for_bravo), &[]).await;
    assert_eq!(status, 200, "control at bravo: {answer}");
    // acme's token (acme's audience) at bravo: refused, also in every endpoint shape.
    let for_acme = key.sign(&target.claims());
    let (status, answer) = server.exchange(bravo, &for_acme, &[]).await;
    support::assert_generic(status, &answer, "acme token at bravo");
    for (status, answer) in [
        server.chainguard(bravo, &for_acme, None).await,
        server.infisical(bravo, &for_acme).await,
        server.ibm(bravo, &for_acme).await,
    ] {
        support::assert_generic(status, &answer, "acme token at bravo, other shape");
    }
    let path = "/v1/tenants/bravo/decisions?limit=4";
    let (_, log) = server
        .admin(reqwest::Method::GET, path, Some(&bravo_key), None)
        .await;
    for decision in log["decisions"].as_array().unwrap() {
        assert_eq!(decision["allowed"], false, "{decision}");
        let reason = decision["reason"].as_str().unwrap();
        assert!(
            reason.contains("token audience is not accepted"),
            "{reason}"
        );
    }

    // Tollgate's own access token as a subject token. The tenant registers Tollgate itself as
    // an issuer (its discovery and keys are public), and an identity whose policy would allow
    // that token: only the server's own rule stands in the way.
    let relay = json!({
        "issuer": "main",
        "config": {"namespaces": ["prod"], "grant": {"scopes": ["registry.pull"]}},
        "scopes": ["registry.pull"],
        "token_audiences": [target.audience],
    });
    let (status, answer) = server
        .put_identity("acme", "relay", &target.tenant_key, relay)
        .await;
    assert_eq!(status, 200, "{answer}");
    target.add_issuer("self", &server.url).await;
    let chain = json!({
        "issuer": "self",
        "config": {"subjects": ["tenants/acme/identities/relay"], "grant": {"scopes": ["registry.pull"]}},
        "scopes": ["registry.pull"],
    });
    let (status, answer) = server
        .put_identity("acme", "chain", &target.tenant_key, chain)
        .await;
    assert_eq!(status, 200, "{answer}");
    let (status, answer) = target.exchange("relay", &for_acme).await;
    assert_eq!(status, 200, "{answer}");
    let own = answer["access_token"].as_str().unwrap().to_owned();
    let own_claims = server.verify(&own, &target.audience).await;
    assert_eq!(own_claims["sub"], "tenants/acme/identities/relay");
    target
        .assert_refused(
            "chain",
            &own,
            "own token",
            "token was issued by this server",
        )
        .await;
    // The same with Tollgate's published keys pasted as a static set (no discovery involved).
    let jwks = server.get_json("/.well-known/jwks.json").await;
    let source = json!({ "mode": "static_jwks", "jwks": jwks, "expires_at": now() + 3600 });
    let (status, answer) = target
        .put_issuer(
            "self-static",
            json!({ "issuer_url": server.url, "source": source }),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    let chain = json!({
        "issuer": "self-static",
        "config": {"subjects": ["tenants/acme/identities/relay"], "grant": {"scopes": ["registry.pull"]}},
        "scopes": ["registry.pull"],
    });
    let (status, answer) = server
        .put_identity("acme", "chain-static", &target.tenant_key, chain)
        .await;
    assert_eq!(status, 200, "{answer}");
    target
        .assert_refused(
            "chain-static",
            &own,
            "own token, static keys",
            "token was issued by this server",
        )
        .await;
    target
        .assert_refused(
            "deployer",
            &own,
            "own token at another issuer",
            // Claims are screened before any key fetch: the foreign `iss` is caught first.
            "issuer does not match",
        )
        .await;
}

/// Issue 11, items 3 and 4: `*` at `system:serviceaccount:prod:*` would match a subject holding
/// `\n` or an escape sequence, and copy it into the issued token; a token whose `sub` names
/// `kube-system:admin` while its `kubernetes.io` says `prod/deployer` would pass an identity
/// that binds namespace and service account. Both are refused before the identity is looked
/// up (so nothing is recorded), while the clean, agreeing token passes both identities.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_characters_and_disagreeing_kubernetes_claims_are_refused() {
    let (target, key) = rsa_target("atk-claims-screen").await;
    let identity =
        |config: Value| json!({"issuer": "main", "config": config, "scopes": ["registry.pull"]});
    let grant = json!({"scopes": ["registry.pull"]});
    for (id, config) in [
        (
            "glob",
            json!({"subjects": ["system:serviceaccount:prod:*"], "grant": grant}),
        ),
        (
            "bound",
            json!({"namespaces": ["prod"], "service_accounts": ["deployer"], "grant": grant}),
        ),
    ] {
        let (status, body) = target
            .server
            .put_identity("acme", id, &target.tenant_key, identity(config))
            .await;
        assert_eq!(status, 200, "{body}");
        target
            .assert_accepted(id, &key.sign(&target.claims()), "clean token")
            .await;
    }
    let named = |sub: &str, name: &str| {
        let mut claims = target.claims();
        claims["sub"] = json!(sub);
        claims["kubernetes.io"]["serviceaccount"]["name"] = json!(name);
        claims
    };
    for name in ["app\n", "a\u{1b}[2J\rb", "app\u{0}", "app\u{85}"] {
        let claims = named(&format!("system:serviceaccount:prod:{name}"), name);
        target
            .assert_screened(
                "glob",
                &key.sign(&claims),
                &format!("sub {name:?}"),
                "control character",
            )
            .await;
    }
    let mut custom = target.claims();
    custom["team"] = json!("a\u{7}b");
    target
        .assert_screened(
            "glob",
            &key.sign(&custom),
            "control character in a custom claim",
            "control character",
        )
        .await;
    for (id, case, claims) in [
        (
            "bound",
            "sub disagrees with kubernetes.io",
            named("system:serviceaccount:kube-system:admin", "deployer"),
        ),
        (
            "glob",
            "kubernetes.io disagrees with sub",
            named("system:serviceaccount:prod:deployer", "admin"),
        ),
    ] {
        let reason = "does not name the service account";
        target
            .assert_screened(id, &key.sign(&claims), case, reason)
            .await;
    }
}
