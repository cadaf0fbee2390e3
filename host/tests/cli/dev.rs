//! `tollgate dev`, run as a user runs it: a real issuer process on loopback, tokens minted by
//! separate processes, and verification against what the issuer serves.

use super::{text, tollgate};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::Duration;

const AUDIENCE: &str = "http://127.0.0.1:8080/tenants/acme";

/// A state directory that does not exist yet (the dev commands create it), inside a temporary
/// directory of the test kit.
struct StateDir {
    _temp: tollgate_tests::temp::TempDir,
    state: PathBuf,
}

impl StateDir {
    fn new(name: &str) -> StateDir {
        let temp = tollgate_tests::temp::TempDir::new(name);
        let state = temp.path().join("state");
        StateDir { _temp: temp, state }
    }

    fn path(&self) -> &str {
        self.state.to_str().unwrap()
    }
}

/// A running `tollgate dev issuer`, killed when dropped (also when a test fails).
struct Issuer {
    child: Child,
    stdout: BufReader<ChildStdout>,
    url: String,
    address: String,
}

impl Issuer {
    fn start(state_dir: &Path, extra: &[&str]) -> Issuer {
        let mut child = Command::new(env!("CARGO_BIN_EXE_tollgate"))
            .args(["dev", "issuer", "--listen", "127.0.0.1:0", "--state-dir"])
            .arg(state_dir)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the dev issuer");
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let (mut url, mut address) = (None, None);
        let mut line = String::new();
        while url.is_none() || address.is_none() {
            line.clear();
            assert!(
                stdout.read_line(&mut line).unwrap() > 0,
                "issuer exited early"
            );
            if let Some(rest) = line.strip_prefix("tollgate dev issuer on ") {
                address = Some(rest.trim().to_owned());
            } else if let Some(rest) = line.trim().strip_prefix("issuer ") {
                url = Some(rest.trim().to_owned());
            }
        }
        Issuer {
            child,
            stdout,
            url: url.unwrap(),
            address: address.unwrap(),
        }
    }

    /// GETs `path` from the issuer: (status, content type, body).
    fn get(&self, path: &str) -> (u16, String, String) {
        let mut stream = TcpStream::connect(&self.address).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            self.address
        )
        .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        let (head, body) = response.split_once("\r\n\r\n").unwrap();
        let status = head.split(' ').nth(1).unwrap().parse().unwrap();
        let content_type = head
            .lines()
            .find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("content-type: ")
                    .map(str::to_owned)
            })
            .unwrap_or_default();
        (status, content_type, body.to_owned())
    }

    fn get_json(&self, path: &str) -> Value {
        let (status, _, body) = self.get(path);
        assert_eq!(status, 200, "{path}: {body}");
        serde_json::from_str(&body).unwrap()
    }

    /// The key set, fetched where discovery says it is.
    fn jwks(&self) -> JwkSet {
        let discovery = self.get_json("/.well-known/openid-configuration");
        let uri = discovery["jwks_uri"].as_str().unwrap();
        let path = uri
            .strip_prefix(&self.url)
            .expect("jwks_uri under the issuer");
        serde_json::from_value(self.get_json(path)).unwrap()
    }
}

impl Drop for Issuer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn mint(state_dir: &Path, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(["dev", "token", "--audience", AUDIENCE, "--state-dir"])
        .arg(state_dir)
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let token = text(&out.stdout).trim().to_owned();
    assert_eq!(token.split('.').count(), 3, "{token}");
    token
}

/// Verifies like a relying party: the key named by `kid` in the served set, RS256 only,
/// exact issuer, our audience.
fn verify(token: &str, jwks: &JwkSet, issuer: &str) -> Result<Value, String> {
    let kid = decode_header(token).unwrap().kid.ok_or("no kid")?;
    let jwk = jwks.find(&kid).ok_or(format!("kid {kid} not published"))?;
    let key = DecodingKey::from_jwk(jwk).map_err(|e| e.to_string())?;
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_issuer(&[issuer]);
    validation.set_audience(&[AUDIENCE]);
    validation.set_required_spec_claims(&["exp", "nbf", "iat", "iss", "aud", "sub"]);
    decode::<Value>(token, &key, &validation)
        .map(|data| data.claims)
        .map_err(|e| e.to_string())
}

fn kids(jwks: &JwkSet) -> Vec<String> {
    jwks.keys
        .iter()
        .filter_map(|k| k.common.key_id.clone())
        .collect()
}

#[test]
fn the_issuer_serves_discovery_and_keys_that_verify_minted_tokens() {
    let dir = StateDir::new("verify");
    let issuer = Issuer::start(&dir.state, &[]);
    assert!(
        issuer.url.starts_with("http://127.0.0.1:"),
        "{}",
        issuer.url
    );

    let (status, content_type, body) = issuer.get("/.well-known/openid-configuration");
    assert_eq!(status, 200);
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
    let discovery: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(discovery["issuer"], issuer.url.as_str());
    assert_eq!(
        discovery["jwks_uri"],
        format!("{}/openid/v1/jwks", issuer.url)
    );
    assert_eq!(
        discovery["response_types_supported"],
        serde_json::json!(["id_token"])
    );
    assert_eq!(
        discovery["subject_types_supported"],
        serde_json::json!(["public"])
    );
    assert_eq!(
        discovery["id_token_signing_alg_values_supported"],
        serde_json::json!(["RS256"])
    );
    let (_, jwks_type, _) = issuer.get("/openid/v1/jwks");
    assert_eq!(jwks_type, "application/jwk-set+json");
    assert_eq!(issuer.get("/nothing-here").0, 404);

    let jwks = issuer.jwks();
    assert_eq!(jwks.keys.len(), 1);
    let state = dir.state.as_path();
    let token = mint(
        state,
        &[
            "-n", "prod", "-s", "deployer", "--pod", "api-0", "--node", "pool-a-1",
        ],
    );
    let header = decode_header(&token).unwrap();
    assert_eq!(header.alg, Algorithm::RS256);
    assert_eq!(header.typ, None, "Kubernetes tokens carry no typ");
    assert_eq!(header.kid, kids(&jwks).first().cloned());

    // No --issuer: the token carries the running issuer's URL, recorded in the state dir.
    let claims = verify(&token, &jwks, &issuer.url).unwrap();
    assert_eq!(claims["sub"], "system:serviceaccount:prod:deployer");
    assert_eq!(claims["aud"], serde_json::json!([AUDIENCE]));
    let (iat, exp) = (
        claims["iat"].as_i64().unwrap(),
        claims["exp"].as_i64().unwrap(),
    );
    assert_eq!(exp - iat, 3600);
    assert_eq!(claims["nbf"], claims["iat"]);
    assert!(claims["jti"].is_string());
    let k8s = &claims["kubernetes.io"];
    assert_eq!(k8s["namespace"], "prod");
    assert_eq!(k8s["serviceaccount"]["name"], "deployer");
    assert_eq!(k8s["pod"]["name"], "api-0");
    assert_eq!(k8s["node"]["name"], "pool-a-1");
    assert_eq!(k8s["warnafter"], exp);
    for object in ["serviceaccount", "pod", "node"] {
        assert_eq!(k8s[object]["uid"].as_str().unwrap().len(), 36);
    }

    // The same names give the same uids; another seed simulates delete-and-recreate.
    let again = verify(
        &mint(state, &["-n", "prod", "-s", "deployer"]),
        &jwks,
        &issuer.url,
    )
    .unwrap();
    assert_eq!(
        again["kubernetes.io"]["serviceaccount"]["uid"],
        k8s["serviceaccount"]["uid"]
    );
    assert!(again["kubernetes.io"].get("pod").is_none());
    assert_ne!(again["jti"], claims["jti"]);
    let recreated = verify(
        &mint(
            state,
            &["-n", "prod", "-s", "deployer", "--uid-seed", "recreated"],
        ),
        &jwks,
        &issuer.url,
    )
    .unwrap();
    assert_ne!(
        recreated["kubernetes.io"]["serviceaccount"]["uid"],
        k8s["serviceaccount"]["uid"]
    );
}

#[test]
fn tokens_fail_verification_when_they_should() {
    let dir = StateDir::new("attacks");
    let issuer = Issuer::start(&dir.state, &[]);
    let jwks = issuer.jwks();
    let state = dir.state.as_path();

    let expired = mint(
        state,
        &[
            "-n",
            "prod",
            "-s",
            "sa",
            "--ttl",
            "600",
            "--issued-at",
            "1700000000",
        ],
    );
    assert!(
        verify(&expired, &jwks, &issuer.url)
            .unwrap_err()
            .contains("Expired")
    );

    let other_issuer = mint(
        state,
        &["-n", "prod", "-s", "sa", "--issuer", "https://k8s.example"],
    );
    assert!(
        verify(&other_issuer, &jwks, &issuer.url)
            .unwrap_err()
            .contains("Issuer")
    );

    let out = tollgate(&[
        "dev",
        "token",
        "--state-dir",
        dir.path(),
        "-n",
        "prod",
        "-s",
        "sa",
        "--audience",
        "other",
    ]);
    let other_audience = text(&out.stdout).trim().to_owned();
    assert!(
        verify(&other_audience, &jwks, &issuer.url)
            .unwrap_err()
            .contains("Audience")
    );

    // A token from another dev cluster (another state dir, so another key) is not accepted.
    let elsewhere = StateDir::new("attacks-elsewhere");
    let foreign = mint(
        &elsewhere.state,
        &["-n", "prod", "-s", "sa", "--issuer", &issuer.url],
    );
    assert!(
        verify(&foreign, &jwks, &issuer.url)
            .unwrap_err()
            .contains("not published")
    );
}

fn mint_default(state: &Path, extra: &[&str]) -> String {
    let mut args = vec!["-n", "prod", "-s", "deployer"];
    args.extend_from_slice(extra);
    mint(state, &args)
}

#[test]
fn rotation_publishes_both_keys_and_signs_with_the_new_one() {
    let dir = StateDir::new("rotate");
    let state = dir.state.as_path();
    let issuer = Issuer::start(state, &[]);
    let before = mint_default(state, &[]);
    let old_kid = decode_header(&before).unwrap().kid.unwrap();

    let out = tollgate(&["dev", "rotate", "--state-dir", dir.path()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let printed = text(&out.stdout);
    assert!(
        printed.contains(&format!("previous kid {old_kid}")),
        "{printed}"
    );

    // The running issuer serves the rotated set without a restart.
    let jwks = issuer.jwks();
    let published = kids(&jwks);
    assert_eq!(published.len(), 2, "{published:?}");
    assert_eq!(published[1], old_kid);
    let new_kid = published[0].clone();
    assert!(
        printed.contains(&format!("current kid {new_kid}")),
        "{printed}"
    );

    let after = mint_default(state, &[]);
    assert_eq!(decode_header(&after).unwrap().kid.unwrap(), new_kid);
    verify(&before, &jwks, &issuer.url).expect("tokens signed before the rotation still verify");
    verify(&after, &jwks, &issuer.url).unwrap();
    let first_url = issuer.url.clone();
    drop(issuer);

    // `dev issuer --rotate` rotates again at start, keeping one previous key: the first key
    // is no longer published, so tokens it signed stop verifying.
    let issuer = Issuer::start(state, &["--rotate"]);
    let jwks = issuer.jwks();
    let published = kids(&jwks);
    assert_eq!(published.len(), 2, "{published:?}");
    assert_eq!(published[1], new_kid);
    assert!(!published.contains(&old_kid));
    assert!(
        verify(&before, &jwks, &issuer.url)
            .unwrap_err()
            .contains("not published")
    );
    // Its port changed with the restart, so tokens minted before carry the first URL.
    verify(&after, &jwks, &first_url).unwrap();
    let newest = mint_default(state, &[]);
    assert_eq!(
        decode_header(&newest).unwrap().kid.as_ref(),
        Some(&published[0])
    );
}

#[test]
fn an_issuer_with_a_path_serves_discovery_under_it() {
    let dir = StateDir::new("path");
    // The URL needs the port before the issuer starts: take a free one from the system.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/cluster-a");
    let issuer = Issuer::start(&dir.state, &["--issuer", &url]);
    assert_eq!(issuer.url, url);
    let discovery = issuer.get_json("/cluster-a/.well-known/openid-configuration");
    assert_eq!(discovery["issuer"], url.as_str());
    assert_eq!(discovery["jwks_uri"], format!("{url}/openid/v1/jwks"));
    let jwks = issuer.jwks();
    let token = mint(&dir.state, &["-n", "prod", "-s", "sa"]);
    verify(&token, &jwks, &url).unwrap();
}

#[test]
fn a_token_without_an_audience_is_refused_with_a_hint() {
    let dir = StateDir::new("no-audience");
    let out = tollgate(&[
        "dev",
        "token",
        "--state-dir",
        dir.path(),
        "-n",
        "prod",
        "-s",
        "sa",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("--audience") && stderr.contains("/tenants/"),
        "{stderr}"
    );
}

#[cfg(unix)]
#[test]
fn ctrl_c_stops_the_issuer_cleanly() {
    let dir = StateDir::new("ctrl-c");
    let mut issuer = Issuer::start(&dir.state, &[]);
    let status = Command::new("kill")
        .args(["-INT", &issuer.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let mut rest = String::new();
    issuer.stdout.read_to_string(&mut rest).unwrap();
    assert!(rest.contains("dev issuer stopped"), "{rest}");
    assert!(issuer.child.wait().unwrap().success());
}

#[test]
fn help_shows_examples() {
    let out = tollgate(&["dev", "token", "--help"]);
    let help = text(&out.stdout);
    assert!(
        help.contains("Example:") && help.contains("--uid-seed"),
        "{help}"
    );
    let out = tollgate(&["dev", "--help"]);
    let help = text(&out.stdout);
    for command in ["issuer", "token", "rotate"] {
        assert!(help.contains(command), "{help}");
    }
}
