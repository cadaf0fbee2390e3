//! Attacks need keys of the test's own and tokens forged by hand (any header, any payload
//! text, any signature bytes), and a tenant wired to the kit's fake cluster
//! ([`IssuerDouble`], whose key sets the test writes and which records every request).

use crate::issuer_double::IssuerDouble;
pub use crate::jwt::{b64, forge, now, payload, with_kid};
pub use crate::server::assert_generic;
use crate::server::{DevIssuer, Server, Tenant, quickstart_identity};
use crate::temp::TempDir;
use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der, PublicKeyX509Der};
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use jsonwebtoken::{Algorithm, EncodingKey};
use reqwest::Method;
use serde_json::{Value, json};

/// A signing key of the test and its public JWK.
pub struct TestKey {
    pub kid: String,
    pub alg: Algorithm,
    pub encoding: EncodingKey,
    pub jwk: Value,
    /// The public key as X.509 SubjectPublicKeyInfo DER.
    pub spki_der: Vec<u8>,
    /// RSA only: the public key as PKCS#1 RSAPublicKey DER.
    pub pkcs1_der: Vec<u8>,
}

/// PEM text of `der` under `label`.
pub fn pem(label: &str, der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        lines.join("\n")
    )
}

impl TestKey {
    /// RSA 2048 for RS256 (or another RSA `alg`).
    pub fn rsa(kid: &str, alg: Algorithm) -> TestKey {
        let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
        let pkcs8 = AsDer::<Pkcs8V1Der>::as_der(&pair).unwrap();
        let public = pair.public_key();
        let spki = AsDer::<PublicKeyX509Der>::as_der(public).unwrap();
        TestKey {
            kid: kid.to_owned(),
            alg,
            encoding: EncodingKey::from_rsa_pem(pem("PRIVATE KEY", pkcs8.as_ref()).as_bytes())
                .unwrap(),
            jwk: json!({
                "kty": "RSA", "use": "sig", "kid": kid,
                "n": b64(public.modulus().big_endian_without_leading_zero()),
                "e": b64(public.exponent().big_endian_without_leading_zero()),
            }),
            spki_der: spki.as_ref().to_vec(),
            pkcs1_der: public.as_ref().to_vec(),
        }
    }

    /// P-256 for ES256.
    pub fn ec(kid: &str) -> TestKey {
        let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
        let pkcs8 = pair.to_pkcs8v1().unwrap();
        let point = pair.public_key().as_ref();
        let spki = AsDer::<PublicKeyX509Der>::as_der(pair.public_key()).unwrap();
        TestKey {
            kid: kid.to_owned(),
            alg: Algorithm::ES256,
            encoding: EncodingKey::from_ec_der(pkcs8.as_ref()),
            jwk: json!({
                "kty": "EC", "crv": "P-256", "use": "sig", "kid": kid,
                "x": b64(&point[1..33]), "y": b64(&point[33..]),
            }),
            spki_der: spki.as_ref().to_vec(),
            pkcs1_der: Vec::new(),
        }
    }

    pub fn alg_name(&self) -> &'static str {
        match self.alg {
            Algorithm::RS256 => "RS256",
            Algorithm::RS384 => "RS384",
            Algorithm::RS512 => "RS512",
            Algorithm::PS256 => "PS256",
            Algorithm::ES256 => "ES256",
            other => panic!("no test signs with {other:?}"),
        }
    }

    /// The header a legitimate token of this key carries.
    pub fn header(&self) -> Value {
        json!({ "alg": self.alg_name(), "kid": self.kid, "typ": "JWT" })
    }

    /// Signs `claims` under the default header.
    pub fn sign(&self, claims: &Value) -> String {
        self.sign_raw(&self.header().to_string(), &claims.to_string())
    }

    /// Signs raw header and payload texts (which may be deliberately odd).
    pub fn sign_raw(&self, header: &str, payload: &str) -> String {
        let input = format!("{}.{}", b64(header.as_bytes()), b64(payload.as_bytes()));
        let signature =
            jsonwebtoken::crypto::sign(input.as_bytes(), &self.encoding, self.alg).unwrap();
        format!("{input}.{signature}")
    }
}

/// An HS256 token MACed with `secret`, whatever the secret (also empty).
pub fn hs256(header: &Value, payload: &Value, secret: &[u8]) -> String {
    let input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(payload.to_string().as_bytes())
    );
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret);
    let tag = aws_lc_rs::hmac::sign(&key, input.as_bytes());
    format!("{input}.{}", b64(tag.as_ref()))
}

/// Claims of a valid projected ServiceAccount token for namespace `prod`.
pub fn claims(issuer: &str, audience: &str) -> Value {
    let now = now();
    json!({
        "iss": issuer,
        "sub": "system:serviceaccount:prod:deployer",
        "aud": [audience],
        "iat": now - 60, "nbf": now - 60, "exp": now + 3600,
        "jti": format!("jti-{now}"),
        "kubernetes.io": {
            "namespace": "prod",
            "serviceaccount": { "name": "deployer", "uid": "sa-uid-1" },
            "pod": { "name": "api-1", "uid": "pod-uid-1" },
        },
    })
}

/// A target whose issuer `main` has one RSA key `k1`, checked to accept a good token.
pub async fn rsa_target(name: &str) -> (Target, TestKey) {
    let key = TestKey::rsa("k1", Algorithm::RS256);
    let target = Target::start(name, json!({ "keys": [key.jwk] })).await;
    let good = key.sign(&target.claims());
    target.assert_accepted("deployer", &good, "control").await;
    (target, key)
}

/// A running server with tenant `acme`, whose identity `deployer` trusts the fake issuer's
/// issuer `main` (OIDC discovery) and lets namespace `prod` have `registry.pull`.
pub struct Target {
    pub server: Server,
    pub issuer: IssuerDouble,
    pub tenant_key: String,
    /// The tenant's audience, which subject tokens must carry.
    pub audience: String,
    /// The issuer URL of `main`.
    pub issuer_url: String,
    _dir: TempDir,
}

impl Target {
    /// Starts everything; `jwks` is what issuer `main` publishes.
    pub async fn start(name: &str, jwks: Value) -> Target {
        let dir = TempDir::new(name);
        let data = dir.path().join("data");
        let server = tokio::task::spawn_blocking(move || Server::start(&data))
            .await
            .unwrap();
        let issuer = IssuerDouble::start(json!({ "keys": [] })).await;
        let issuer_url = issuer.publish("main", jwks);
        let (tenant_key, audience) = server.create_tenant("acme").await;
        let target = Target {
            server,
            issuer,
            tenant_key,
            audience,
            issuer_url: issuer_url.clone(),
            _dir: dir,
        };
        target.add_issuer("main", &issuer_url).await;
        target.add_identity("deployer", "main").await;
        target
    }

    /// Registers `url` (discovery) as the tenant's issuer `name`.
    pub async fn add_issuer(&self, name: &str, url: &str) {
        let (status, body) = self.put_issuer(name, json!({ "issuer_url": url })).await;
        assert_eq!(status, 200, "{body}");
    }

    /// PUTs the tenant's issuer `name`: (status, body).
    pub async fn put_issuer(&self, name: &str, body: Value) -> (u16, Value) {
        put_issuer(&self.server, "acme", &self.tenant_key, name, body).await
    }

    /// PUTs identity `id` trusting `issuer`, granting `registry.pull` to namespace `prod`.
    pub async fn add_identity(&self, id: &str, issuer: &str) {
        let body = json!({
            "issuer": issuer,
            "config": {"namespaces": ["prod"], "grant": {"scopes": ["registry.pull"]}},
            "scopes": ["registry.pull"],
        });
        let (status, answer) = self
            .server
            .put_identity("acme", id, &self.tenant_key, body)
            .await;
        assert_eq!(status, 200, "{answer}");
    }

    /// Valid claims for issuer `main` and this tenant.
    pub fn claims(&self) -> Value {
        claims(&self.issuer_url, &self.audience)
    }

    /// Exchanges `token` for identity `id`.
    pub async fn exchange(&self, id: &str, token: &str) -> (u16, Value) {
        self.server
            .exchange(&format!("tenants/acme/identities/{id}"), token, &[])
            .await
    }

    /// Asserts that identity `id` accepts `token`.
    pub async fn assert_accepted(&self, id: &str, token: &str, case: &str) {
        let (status, body) = self.exchange(id, token).await;
        assert_eq!(status, 200, "{case}: {body}");
        assert!(body["access_token"].is_string(), "{case}: {body}");
    }

    /// Asserts the generic denial of `token` at identity `id`, and that the decision log
    /// recorded it for the reason `reason` (a substring of `code: message`).
    pub async fn assert_refused(&self, id: &str, token: &str, case: &str, reason: &str) {
        let (status, body) = self.exchange(id, token).await;
        assert_generic(status, &body, case);
        let recorded = self.last_reason().await;
        assert!(
            recorded.contains(reason),
            "{case}: recorded `{recorded}`, expected `{reason}`"
        );
    }

    /// Asserts the generic denial of `token` at identity `id`, refused before the identity was
    /// looked up (malformed, or failing a check that needs no issuer) for the reason `reason`:
    /// nothing is recorded in the tenant's log, exactly as for an identity that does not exist,
    /// and the server's own log names the reason.
    pub async fn assert_screened(&self, id: &str, token: &str, case: &str, reason: &str) {
        let before = self.newest_decision_id().await;
        let logged = self.server.log().len();
        let (status, body) = self.exchange(id, token).await;
        assert_generic(status, &body, case);
        assert_eq!(
            self.newest_decision_id().await,
            before,
            "{case}: a screened token was recorded"
        );
        // The log is read by another thread: give it a moment.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            let log = self.server.log();
            let new = &log[logged..];
            if new.contains("exchange denied before lookup") && new.contains(reason) {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{case}: the log does not say `{reason}`:\n{new}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    /// The tenant's newest decision (`null`: none yet).
    pub async fn newest_decision(&self) -> Value {
        let path = "/v1/tenants/acme/decisions?limit=1";
        let (status, log) = self
            .server
            .admin(Method::GET, path, Some(&self.tenant_key), None)
            .await;
        assert_eq!(status, 200, "{log}");
        log["decisions"][0].clone()
    }

    /// The id of the tenant's newest decision (0: none yet).
    pub async fn newest_decision_id(&self) -> i64 {
        self.newest_decision().await["id"].as_i64().unwrap_or(0)
    }

    /// The reason of the tenant's newest decision, which must be a denial.
    pub async fn last_reason(&self) -> String {
        let newest = self.newest_decision().await;
        assert_eq!(newest["allowed"], false, "{newest}");
        newest["reason"].as_str().unwrap_or_default().to_owned()
    }
}

/// PUTs issuer `name` of `tenant` with `body`: (status, answer).
pub async fn put_issuer(
    server: &Server,
    tenant: &str,
    key: &str,
    name: &str,
    body: Value,
) -> (u16, Value) {
    let path = format!("/v1/tenants/{tenant}/issuers/{name}");
    server
        .admin(Method::PUT, &path, Some(key), Some(body))
        .await
}

/// Registers `url` as discovery issuer `name` and binds the quickstart identity `name` to it.
pub async fn bind(server: &Server, tenant: &str, key: &str, name: &str, url: &str) {
    let (status, body) = put_issuer(server, tenant, key, name, json!({"issuer_url": url})).await;
    assert_eq!(status, 200, "{body}");
    let mut identity = quickstart_identity();
    identity["issuer"] = json!(name);
    let (status, body) = server.put_identity(tenant, name, key, identity).await;
    assert_eq!(status, 200, "{body}");
}

/// The newest decision of `tenant`.
pub async fn last_decision(server: &Server, tenant: &str, key: &str) -> Value {
    let path = format!("/v1/tenants/{tenant}/decisions?limit=1");
    let (status, log) = server.admin(Method::GET, &path, Some(key), None).await;
    assert_eq!(status, 200, "{log}");
    log["decisions"][0].clone()
}

/// A cluster: a dev issuer's keys, for a double to serve; its tokens name any `iss`.
pub struct Cluster {
    pub issuer: DevIssuer,
    pub state: TempDir,
    pub jwks: Value,
}

impl Cluster {
    pub async fn start(name: &str) -> Cluster {
        let state = TempDir::new(name);
        let issuer = DevIssuer::start(state.path());
        let jwks = reqwest::get(format!("{}/openid/v1/jwks", issuer.url))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        Cluster {
            issuer,
            state,
            jwks,
        }
    }

    /// A prod/deployer token bound to pod `api-1`, for `audience`, with `iss` = `issuer`.
    pub fn token(&self, issuer: &str, audience: &str) -> String {
        let args = ["--audience", audience, "-n", "prod", "-s", "deployer"];
        let mut args = args.to_vec();
        args.extend(["--pod", "api-1", "--issuer", issuer]);
        crate::cluster::dev_token(self.state.path(), &args)
    }
}

/// Uploads the hostile fixture for `tenant`: its digest.
pub async fn upload_hostile(server: &Server, tenant: &Tenant) -> String {
    let (status, body) = server
        .upload_policy(
            &tenant.name,
            &tenant.key,
            crate::fixtures::module("hostile"),
            "application/wasm",
        )
        .await;
    assert_eq!(status, 201, "{body}");
    body["digest"].as_str().unwrap().to_owned()
}

/// Binds identity `hostile` of `tenant` to the hostile policy in `mode`.
pub async fn bind_hostile(server: &Server, tenant: &Tenant, digest: &str, mode: &str) {
    let mut identity = quickstart_identity();
    identity["policy"] = json!(digest);
    identity["config"] = json!({"mode": mode});
    let (status, body) = server
        .put_identity(&tenant.name, "hostile", &tenant.key, identity)
        .await;
    assert_eq!(status, 200, "{mode}: {body}");
}
