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
/// `dev token` flags for prod/sa with [`AUDIENCE`].
const PROD_SA: [&str; 6] = ["-n", "prod", "-s", "sa", "--audience", AUDIENCE];

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

/// `tollgate ARGS`, with none of the dev tools' settings taken from the test's environment.
fn command(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tollgate"));
    command
        .args(args)
        .env_remove("TOLLGATE_DEV_STATE_DIR")
        .env_remove("TOLLGATE_SERVER");
    command
}

/// A home of the test's own (`HOME` and `XDG_STATE_HOME` point into it) and a working
/// directory apart from it, for the dev tools' default state directory.
struct Home {
    _temp: tollgate_tests::temp::TempDir,
    home: PathBuf,
    elsewhere: PathBuf,
}

impl Home {
    fn new(name: &str) -> Home {
        let temp = tollgate_tests::temp::TempDir::new(name);
        let (home, elsewhere) = (temp.path().join("home"), temp.path().join("elsewhere"));
        std::fs::create_dir_all(&home).unwrap();
        std::fs::create_dir_all(&elsewhere).unwrap();
        Home {
            _temp: temp,
            home,
            elsewhere,
        }
    }

    /// `tollgate ARGS` run in `dir` with this home, no `XDG_STATE_HOME` (so the state is
    /// under `~/.local/state`) and no `--state-dir`.
    fn command(&self, dir: &Path, args: &[&str]) -> Command {
        let mut command = command(args);
        command
            .current_dir(dir)
            .env("HOME", &self.home)
            .env_remove("XDG_STATE_HOME");
        command
    }

    /// Where the state is by default.
    fn state(&self) -> PathBuf {
        self.home.join(".local/state/tollgate/dev")
    }
}

/// A running `tollgate dev issuer`, killed when dropped (also when a test fails).
struct Issuer {
    child: Child,
    stdout: BufReader<ChildStdout>,
    url: String,
    address: String,
    /// The `dev token` command the start-up banner suggests.
    hint: String,
}

impl Issuer {
    fn start(state_dir: &Path, extra: &[&str]) -> Issuer {
        let mut issuer = command(&["dev", "issuer", "--listen", "127.0.0.1:0", "--state-dir"]);
        issuer.arg(state_dir).args(extra);
        Issuer::spawn(issuer)
    }

    /// Runs `command` (a `dev issuer` on port 0) until it printed its whole banner.
    fn spawn(mut command: Command) -> Issuer {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the dev issuer");
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let (mut url, mut address, mut hint) = (None, None, None);
        let mut banner = String::new();
        let mut line = String::new();
        while !line.starts_with("Ctrl-C stops the issuer") {
            line.clear();
            assert!(
                stdout.read_line(&mut line).unwrap() > 0,
                "issuer exited early:\n{banner}"
            );
            banner.push_str(&line);
            if let Some(rest) = line.strip_prefix("tollgate dev issuer on ") {
                address = Some(rest.trim().to_owned());
            } else if let Some(rest) = line.trim().strip_prefix("issuer ") {
                url = Some(rest.trim().to_owned());
            } else if line.trim().starts_with("tollgate dev token ") {
                hint = Some(line.trim().to_owned());
            }
        }
        Issuer {
            child,
            stdout,
            url: url.expect("the banner names the issuer URL"),
            address: address.expect("the banner names the address"),
            hint: hint.unwrap_or_else(|| panic!("no `dev token` hint in\n{banner}")),
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
    let mut token = command(&["dev", "token", "--audience", AUDIENCE, "--state-dir"]);
    token.arg(state_dir).args(args);
    minted(&mut token)
}

/// `tollgate dev token --state-dir DIR ARGS`, run to completion.
fn dev_token(dir: &StateDir, args: &[&str]) -> std::process::Output {
    command(&["dev", "token", "--state-dir", dir.path()])
        .args(args)
        .output()
        .unwrap()
}

/// The token `command` (a `dev token`) printed.
fn minted(command: &mut Command) -> String {
    let out = command.output().unwrap();
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
    let (_, jwks_type, jwks_body) = issuer.get("/openid/v1/jwks");
    assert_eq!(jwks_type, "application/jwk-set+json");
    // Like the server's answers, for a pasted curl.
    for body in [&body, &jwks_body] {
        assert!(body.ends_with("}\n"), "{body:?}");
    }
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

    let out = dev_token(&dir, &["-n", "prod", "-s", "sa", "--audience", "other"]);
    let other_audience = text(&out.stdout).trim().to_owned();
    assert!(
        verify(&other_audience, &jwks, &issuer.url)
            .unwrap_err()
            .contains("Audience")
    );

    // A token from another dev cluster (another state dir, so another key) is not accepted.
    let elsewhere = StateDir::new("attacks-elsewhere");
    let out = tollgate(&["dev", "rotate", "--state-dir", elsewhere.path()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
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
    let out = dev_token(&dir, &["-n", "prod", "-s", "sa"]);
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
    // Where the state lives, and the shape of a pod's default token.
    for text in [
        "$XDG_STATE_HOME/tollgate/dev",
        "~/.local/state/tollgate/dev",
        "--extended",
        "kube-api-access",
        "start it first",
    ] {
        assert!(help.contains(text), "{text}: {help}");
    }
    let help = text(&tollgate(&["dev", "issuer", "--help"]).stdout);
    for text in ["--server", "TOLLGATE_SERVER", "~/.local/state/tollgate/dev"] {
        assert!(help.contains(text), "{text}: {help}");
    }
    let out = tollgate(&["dev", "--help"]);
    let help = text(&out.stdout);
    for command in ["issuer", "token", "rotate"] {
        assert!(help.contains(command), "{help}");
    }
}

#[test]
fn a_token_without_keys_asks_for_the_issuer_and_creates_none() {
    let dir = StateDir::new("no-keys");
    let out = dev_token(
        &dir,
        &["-n", "prod", "-s", "deployer", "--audience", AUDIENCE],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty(), "{}", text(&out.stdout));
    let stderr = text(&out.stderr);
    for needed in ["tollgate dev issuer", dir.path(), "--state-dir"] {
        assert!(stderr.contains(needed), "{needed}: {stderr}");
    }
    assert!(!dir.state.exists(), "no keys of its own");
}

#[test]
fn every_shell_of_a_user_shares_one_dev_cluster_by_default() {
    let home = Home::new("default-state");
    // The issuer runs in the home directory, the token is minted elsewhere: both use
    // ~/.local/state/tollgate/dev, never a directory under the current one.
    let issuer =
        Issuer::spawn(home.command(&home.home, &["dev", "issuer", "--listen", "127.0.0.1:0"]));
    assert!(home.state().join("keys.json").is_file());
    assert!(!home.home.join(".tollgate").exists());
    // The banner's command works as printed, from another directory, naming no state dir.
    assert!(!issuer.hint.contains("--state-dir"), "{}", issuer.hint);
    let args: Vec<&str> = issuer.hint.split_whitespace().skip(1).collect();
    let token = minted(&mut home.command(&home.elsewhere, &args));
    // No --server: the audience is the default server's.
    assert_eq!(
        AUDIENCE,
        format!("{}/tenants/acme", tollgate::config::DEFAULT_URL)
    );
    let claims = verify(&token, &issuer.jwks(), &issuer.url).unwrap();
    assert_eq!(claims["sub"], "system:serviceaccount:prod:deployer");
    assert_eq!(std::fs::read_dir(&home.elsewhere).unwrap().count(), 0);

    // XDG_STATE_HOME, when set, is where the state lives.
    let token_with_xdg = |xdg: &str| {
        let args = [&["dev", "token"][..], &PROD_SA].concat();
        let mut token = home.command(&home.elsewhere, &args);
        token.env("XDG_STATE_HOME", home.home.join(xdg));
        token
    };
    verify(
        &minted(&mut token_with_xdg(".local/state")),
        &issuer.jwks(),
        &issuer.url,
    )
    .unwrap();
    let out = token_with_xdg("other-state").output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("other-state/tollgate/dev"));
}

#[test]
fn an_extended_token_has_the_shape_of_a_pods_default_token() {
    let dir = StateDir::new("extended");
    let issuer = Issuer::start(&dir.state, &[]);
    let extended = [&PROD_SA[..], &["--extended"]].concat();
    let token = minted(command(&["dev", "token", "--state-dir", dir.path()]).args(&extended));
    // The test kit's tokens take the same flag and have the same shape.
    let kit = tollgate_tests::cluster::dev_token(&dir.state, &extended);
    for token in [token, kit] {
        let claims = verify(&token, &issuer.jwks(), &issuer.url).unwrap();
        let iat = claims["iat"].as_i64().unwrap();
        let after_iat = |claim: &Value| claim.as_i64().unwrap() - iat;
        assert_eq!(after_iat(&claims["exp"]), 31_536_000);
        assert_eq!(after_iat(&claims["kubernetes.io"]["warnafter"]), 3607);
    }
    // The lifetime is the kubelet's: --ttl does not go with it.
    let out = dev_token(&dir, &[&extended[..], &["--ttl", "600"]].concat());
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
}

#[tokio::test]
async fn the_banners_token_is_accepted_by_the_quickstart_identity_on_the_named_server() {
    use tollgate_tests::server::{Server, quickstart_identity, register_issuer};
    let dir = StateDir::new("hint");
    let server = Server::start(&dir._temp.path().join("data"));
    assert_ne!(
        server.url,
        tollgate::config::DEFAULT_URL,
        "a port of its own"
    );
    let issuer = Issuer::start(&dir.state, &["--server", &server.url]);
    let audience = server.tenant_audience("acme");
    assert!(
        issuer.hint.ends_with(&format!("--audience {audience}")),
        "{}",
        issuer.hint
    );

    // The README quickstart's tenant and identity.
    let (key, _) = server.create_tenant("acme").await;
    register_issuer(&server, "acme", &key, &issuer.url).await;
    let (status, body) = server
        .put_identity("acme", "deployer", &key, quickstart_identity())
        .await;
    assert_eq!(status, 200, "{body}");
    let args: Vec<&str> = issuer.hint.split_whitespace().skip(1).collect();
    let token = minted(&mut command(&args));
    let (status, body) = server
        .exchange("tenants/acme/identities/deployer", &token, &[])
        .await;
    assert_eq!(status, 200, "{}: {body}", issuer.hint);
}
