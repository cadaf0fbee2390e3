//! Every way an exchange is refused, against the real server: one generic RFC 6749 answer
//! whatever the reason, the specific codes where the caller made a fixable mistake, and the
//! decision log that tells the tenant (and only the tenant) what happened.

use tollgate_tests::jwt::now;
use tollgate_tests::server as server_support;

use reqwest::Method;
use server_support::{
    CR_TOKEN, DevIssuer, JWT_TYPE, Server, TOKEN_EXCHANGE, TempDir, assert_generic, dev_token,
    oauth_error, quickstart,
};

#[tokio::test]
async fn every_denial_gives_the_same_generic_answer() {
    let dir = TempDir::new("deny-generic");
    let issuer = DevIssuer::start(&dir.path().join("dev"));
    let server = Server::start(&dir.path().join("data"));
    let acme = quickstart(&server, &issuer, "acme").await;
    let name = acme.identity("deployer");
    let aud = acme.audience.as_str();
    let good = issuer.token(aud, "prod", "deployer", &[]);

    let wrong_namespace = issuer.token(aud, "staging", "deployer", &[]);
    let other_audience = issuer.token("https://elsewhere.example", "prod", "deployer", &[]);
    let issued_at = (now() - 7200).to_string();
    let expired = issuer.token(
        aud,
        "prod",
        "deployer",
        &["--issued-at", &issued_at, "--ttl", "600"],
    );
    // Same issuer URL, but signed by another cluster's key.
    let foreign_dir = TempDir::new("deny-generic-foreign");
    let foreign = dev_token(
        foreign_dir.path(),
        &[
            "--audience",
            aud,
            "-n",
            "prod",
            "-s",
            "deployer",
            "--issuer",
            &issuer.url,
        ],
    );
    // The good token with signature bits changed (not the last character: its low bits are
    // base64 padding).
    let mut tampered = good.clone();
    let at = tampered.len() - 10;
    let with = if &tampered[at..=at] == "A" { "B" } else { "A" };
    tampered.replace_range(at..=at, with);
    // A token this server issued is an access token, never a subject token.
    let (_, body) = server.exchange(&name, &good, &[]).await;
    let own = body["access_token"].as_str().unwrap().to_owned();

    let cases: [(&str, &str, &str); 10] = [
        ("wrong namespace", name.as_str(), wrong_namespace.as_str()),
        (
            "unknown identity",
            "tenants/acme/identities/nobody",
            good.as_str(),
        ),
        (
            "unknown tenant",
            "tenants/nope/identities/deployer",
            good.as_str(),
        ),
        (
            "unknown uid",
            "0f3c9a5e7b1d4f2a8c6e0b9d7a5f3e1c",
            good.as_str(),
        ),
        ("another audience", name.as_str(), other_audience.as_str()),
        ("garbage", name.as_str(), "not-a-jwt"),
        ("expired", name.as_str(), expired.as_str()),
        ("foreign key", name.as_str(), foreign.as_str()),
        ("tampered", name.as_str(), tampered.as_str()),
        ("own token", name.as_str(), own.as_str()),
    ];
    let mut answers = Vec::new();
    for (case, identity, token) in cases {
        let (status, body) = server.exchange(identity, token, &[]).await;
        assert_generic(status, &body, case);
        answers.push(body);
        // The compatibility shapes answer the same way.
        let (status, body) = server.chainguard(identity, token, None).await;
        assert_generic(status, &body, case);
        let (status, body) = server.infisical(identity, token).await;
        assert_generic(status, &body, case);
        let (status, body) = server.ibm(identity, token).await;
        assert_generic(status, &body, case);
    }
    assert!(answers.windows(2).all(|w| w[0] == w[1]), "{answers:?}");
    // The good token still works: none of the above was a side effect of the setup.
    assert_eq!(server.exchange(&name, &good, &[]).await.0, 200);
    // Credentials never reach the server's log, whatever happened to them.
    let log = server.log();
    assert!(
        log.contains("exchange denied"),
        "denials are logged at info: {log}"
    );
    for token in [&good, &expired, &foreign, &tampered, &own] {
        assert!(!log.contains(token.as_str()), "a token is logged: {log}");
    }
    let signature = good.rsplit('.').next().unwrap();
    assert!(!log.contains(signature), "a signature is logged: {log}");
}

#[tokio::test]
async fn fixable_mistakes_get_specific_codes_and_the_log_records_them() {
    let dir = TempDir::new("deny-codes");
    let issuer = DevIssuer::start(&dir.path().join("dev"));
    let server = Server::start(&dir.path().join("data"));
    let acme = quickstart(&server, &issuer, "acme").await;
    let name = acme.identity("deployer");
    let good = issuer.token(&acme.audience, "prod", "deployer", &[]);

    // The identity allows `registry.push`, but the policy grants only `registry.pull`.
    let (status, body) = server
        .exchange(&name, &good, &[("scope", "registry.push")])
        .await;
    oauth_error(status, &body, "invalid_scope");
    let (status, body) = server
        .exchange(&name, &good, &[("scope", "registry.pull")])
        .await;
    assert_eq!((status, &body["scope"]), (200, &"registry.pull".into()));
    let (status, body) = server.exchange(&name, &good, &[("scope", "admin")]).await;
    oauth_error(status, &body, "invalid_scope");

    let unknown = [("resource", "https://unknown.example")];
    let (status, body) = server.exchange(&name, &good, &unknown).await;
    oauth_error(status, &body, "invalid_target");
    let (status, body) = server
        .chainguard(&name, &good, Some("https://unknown.example"))
        .await;
    oauth_error(status, &body, "invalid_target");

    let g = good.as_str();
    let n = name.as_str();
    let malformed: [&[(&str, &str)]; 9] = [
        &[],
        &[
            ("subject_token", g),
            ("subject_token_type", JWT_TYPE),
            ("audience", n),
        ],
        &[
            ("grant_type", TOKEN_EXCHANGE),
            ("subject_token_type", JWT_TYPE),
            ("audience", n),
        ],
        &[
            ("grant_type", TOKEN_EXCHANGE),
            ("subject_token", g),
            ("audience", n),
        ],
        &[
            ("grant_type", TOKEN_EXCHANGE),
            ("subject_token", g),
            ("subject_token_type", JWT_TYPE),
        ],
        &[
            ("grant_type", TOKEN_EXCHANGE),
            ("subject_token", ""),
            ("subject_token_type", JWT_TYPE),
            ("audience", n),
        ],
        &[
            ("grant_type", TOKEN_EXCHANGE),
            ("subject_token", g),
            ("subject_token_type", "urn:x:saml"),
            ("audience", n),
        ],
        &[
            ("grant_type", TOKEN_EXCHANGE),
            ("subject_token", g),
            ("subject_token_type", JWT_TYPE),
            ("audience", n),
            ("audience", n),
        ],
        &[("grant_type", CR_TOKEN), ("cr_token", g)],
    ];
    for form in malformed {
        let (status, body) = server.token_endpoint(form).await;
        oauth_error(status, &body, "invalid_request");
    }
    for grant in [
        "authorization_code",
        "password",
        "urn:ietf:params:oauth:grant-type:jwt-bearer",
    ] {
        let form = [("grant_type", grant), ("subject_token", g), ("audience", n)];
        let (status, body) = server.token_endpoint(&form).await;
        oauth_error(status, &body, "unsupported_grant_type");
    }
    // The compatibility shapes check their inputs too.
    let no_bearer = server.at(Method::GET, &format!("/sts/exchange?identity={n}"));
    let (status, body) = Server::send(no_bearer).await;
    oauth_error(status, &body, "invalid_request");
    let login = server.at(Method::POST, "/api/v1/auth/kubernetes-auth/login");
    let (status, body) = Server::send(login.json(&serde_json::json!({"identity": "x"}))).await;
    oauth_error(status, &body, "invalid_request");

    // One more denial by the policy, one by verification, for the log; a token that is not
    // even a JWT is refused before the identity is looked up, and not recorded.
    let staging = issuer.token(&acme.audience, "staging", "deployer", &[]);
    assert_eq!(server.exchange(&name, &staging, &[]).await.0, 400);
    assert_eq!(server.exchange(&name, "not-a-jwt", &[]).await.0, 400);
    let elsewhere = issuer.token("https://elsewhere.example", "prod", "deployer", &[]);
    assert_eq!(server.exchange(&name, &elsewhere, &[]).await.0, 400);

    let path = "/v1/tenants/acme/decisions";
    let (status, log) = server.admin(Method::GET, path, Some(&acme.key), None).await;
    assert_eq!(status, 200, "{log}");
    let decisions = log["decisions"].as_array().unwrap();
    let codes: Vec<(bool, Option<&str>)> = decisions
        .iter()
        .map(|d| (d["allowed"].as_bool().unwrap(), d["code"].as_str()))
        .collect();
    // Newest first: every recorded exchange, with what the caller never sees.
    assert_eq!(
        codes,
        [
            (false, Some("invalid-token")),
            (false, Some("namespace")),
            (false, Some("invalid-target")),
            (false, Some("invalid-target")),
            (false, Some("invalid-scope")),
            (true, None),
            (false, Some("invalid-scope")),
        ],
        "{log}"
    );
    let namespace = &decisions[1];
    assert_eq!(namespace["source"], "policy");
    let reason = namespace["reason"].as_str().unwrap();
    assert!(reason.contains("staging"), "{reason}");
    assert_eq!(
        namespace["subject"],
        "system:serviceaccount:staging:deployer"
    );
    assert!(namespace["fuel_used"].as_i64().unwrap() > 0, "{namespace}");
    assert_eq!(decisions[5]["scopes"], serde_json::json!(["registry.pull"]));
    let ids: Vec<i64> = decisions
        .iter()
        .map(|d| d["id"].as_i64().unwrap())
        .collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "{ids:?}");

    // Paging: `limit` and `before`.
    let page = format!("{path}?limit=2");
    let (_, first) = server
        .admin(Method::GET, &page, Some(&acme.key), None)
        .await;
    assert_eq!(first["decisions"].as_array().unwrap().len(), 2);
    let next = first["next_before"].as_i64().unwrap();
    let page = format!("{path}?limit=100&before={next}");
    let (_, rest) = server
        .admin(Method::GET, &page, Some(&acme.key), None)
        .await;
    assert_eq!(
        rest["decisions"].as_array().unwrap().len(),
        decisions.len() - 2
    );
    // Without a key, nothing.
    assert_eq!(server.admin(Method::GET, path, None, None).await.0, 401);
}
