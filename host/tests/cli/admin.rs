//! `tollgate admin` against a real server: every step a tenant takes, through the CLI only
//! (the exchange itself goes to `/oauth2/token` as a workload would).

use tollgate_tests::fixtures;
use tollgate_tests::server as server_support;

use serde_json::Value;
use server_support::{DevIssuer, OPERATOR_KEY, Server, TempDir};
use std::path::{Path, PathBuf};
use std::process::Command;

/// What one `tollgate admin` run printed.
pub(super) struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    /// Asserts success; the standard output.
    pub(super) fn ok(self) -> String {
        assert_eq!(self.code, Some(0), "{}{}", self.stdout, self.stderr);
        self.stdout
    }

    /// Asserts exit status `code`; the standard error.
    pub(super) fn fails(self, code: i32) -> String {
        assert_eq!(self.code, Some(code), "{}{}", self.stdout, self.stderr);
        self.stderr
    }
}

/// `tollgate admin ARGS` with the server and key in the environment, as a user would set them.
pub(super) fn admin(server: &str, key: &str, args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .arg("admin")
        .args(args)
        .env("TOLLGATE_SERVER", server)
        .env("TOLLGATE_API_KEY", key)
        // Loopback only: no proxy may be asked.
        .env("NO_PROXY", "*")
        .env("no_proxy", "*")
        .output()
        .expect("run tollgate admin");
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

pub(super) fn write(dir: &Path, name: &str, contents: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    path
}

/// Creates `tenant` with the operator key: its API key, read from the text output.
pub(super) fn create_tenant(server: &Server, tenant: &str) -> String {
    let out = admin(&server.url, OPERATOR_KEY, &["tenant", "create", tenant]).ok();
    assert!(out.contains(&format!("tenant {tenant} created")), "{out}");
    assert!(out.contains("shown only this once"), "{out}");
    let audience = format!("audience  {}", server.tenant_audience(tenant));
    assert!(out.contains(&audience), "{out}");
    out.lines()
        .find_map(|l| l.strip_prefix("api key   "))
        .expect("the key is printed")
        .trim()
        .to_owned()
}

fn quickstart_yaml(issuer_url: &str) -> String {
    format!(
        "# the quickstart, as one file
kind: issuer
tenant: acme
name: dev
issuer_url: {issuer_url}
source: {{ mode: discovery }}
---
kind: identity
tenant: acme
id: deployer
issuer: dev
policy: builtin:rules
config: {{ namespaces: [prod], grant: {{ scopes: [registry.pull] }} }}
scopes: [registry.pull]
token_audiences: [https://registry.example]
ttl_seconds: 900
"
    )
}

#[tokio::test]
async fn a_tenant_is_set_up_and_inspected_through_the_cli() {
    let dir = TempDir::new("admin-cli");
    let issuer = DevIssuer::start(&dir.path().join("dev"));
    let server = Server::start(&dir.path().join("data"));
    let url = server.url.as_str();
    let key = create_tenant(&server, "acme");
    let tenants = admin(url, OPERATOR_KEY, &["tenant", "list"]).ok();
    assert!(tenants.lines().any(|l| l.starts_with("acme ")), "{tenants}");

    // apply: one line per resource, in order.
    let file = write(dir.path(), "acme.yaml", &quickstart_yaml(&issuer.url));
    let out = admin(url, &key, &["apply", "-f", file.to_str().unwrap()]).ok();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(
        lines[0].starts_with("issuer tenants/acme/issuers/dev applied"),
        "{out}"
    );
    assert!(
        lines[1].starts_with("identity tenants/acme/identities/deployer applied (uid "),
        "{out}"
    );

    // The applied identity works for a real exchange, and refuses another namespace.
    let identity = "tenants/acme/identities/deployer";
    let audience = server.tenant_audience("acme");
    let prod = issuer.token(&audience, "prod", "api", &[]);
    let (status, body) = server.exchange(identity, &prod, &[]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["scope"], "registry.pull", "{body}");
    let claims = server
        .verify(
            body["access_token"].as_str().unwrap(),
            "https://registry.example",
        )
        .await;
    assert_eq!(claims["sub"], identity);
    let dev = issuer.token(&audience, "dev", "api", &[]);
    let (status, _) = server.exchange(identity, &dev, &[]).await;
    assert_eq!(status, 400);

    // decisions: newest first, one line each with time, event, verdict, code, subject and
    // the reason.
    let out = admin(url, &key, &["decisions", "acme", "--limit", "5"]).ok();
    let rows: Vec<&str> = out.lines().skip(1).collect();
    assert_eq!(rows.len(), 2, "{out}");
    let denied: Vec<&str> = rows[0].split_whitespace().collect();
    assert!(denied[0].ends_with('Z') && denied[0].contains('T'), "{out}");
    assert_eq!(denied[1..4], ["exchange", "denied", "namespace"], "{out}");
    assert!(rows[0].contains("system:serviceaccount:dev:api"), "{out}");
    assert!(
        rows[0].contains("namespace `dev`"),
        "the reason is shown: {out}"
    );
    assert!(rows[1].contains(" allowed "), "{out}");
    assert!(rows[1].contains("system:serviceaccount:prod:api"), "{out}");

    let json = admin(url, &key, &["decisions", "acme", "--format", "json"]).ok();
    let json: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(json["decisions"].as_array().unwrap().len(), 2, "{json}");

    // simulate: claims (the policy alone) and a real token (verified first).
    let claims = write(
        dir.path(),
        "claims.json",
        r#"{"sub": "system:serviceaccount:dev:x",
            "kubernetes.io": {"namespace": "dev", "serviceaccount": {"name": "x", "uid": "u"}}}"#,
    );
    let out = admin(
        url,
        &key,
        &[
            "simulate",
            "acme",
            "deployer",
            "--claims",
            claims.to_str().unwrap(),
        ],
    )
    .ok();
    assert!(out.contains("decision  deny"), "{out}");
    assert!(out.contains("code      namespace"), "{out}");
    assert!(out.contains("reason    namespace: "), "{out}");
    let fuel: u64 = out
        .lines()
        .find_map(|l| l.strip_prefix("fuel      "))
        .expect(&out)
        .parse()
        .unwrap();
    assert!(fuel > 0, "{out}");
    let args = [
        "simulate",
        "acme",
        "deployer",
        "--token",
        &prod,
        "--scope",
        "registry.pull",
    ];
    let out = admin(url, &key, &args).ok();
    assert!(out.contains("decision  allow"), "{out}");
    assert!(out.contains("scopes    registry.pull"), "{out}");
    let bad = write(dir.path(), "bad.token", "not.a.jwt\n");
    let args = [
        "simulate",
        "acme",
        "deployer",
        "--token-file",
        bad.to_str().unwrap(),
    ];
    let out = admin(url, &key, &args).ok();
    assert!(
        out.contains("decision  deny") && out.contains("stage     verify"),
        "{out}"
    );
    // Simulations are not decisions.
    let out = admin(url, &key, &["decisions", "acme"]).ok();
    assert_eq!(out.lines().count(), 3, "{out}");

    // An introspection key, and revoking every token of the identity.
    let out = admin(
        url,
        &key,
        &["tenant", "key", "acme", "--role", "introspect"],
    )
    .ok();
    assert!(out.starts_with("introspect key key_"), "{out}");
    let out = admin(url, &key, &["identity", "revoke", "acme", "deployer"]).ok();
    assert_eq!(
        out.trim(),
        "revoked every token of tenants/acme/identities/deployer issued before now (1 sessions)"
    );
    let out = admin(url, &key, &["decisions", "acme", "--limit", "1"]).ok();
    assert!(
        out.lines().nth(1).unwrap().contains(" revocation "),
        "{out}"
    );

    // get prints an apply document: applying it again changes nothing but `updated_at`.
    let got = admin(url, &key, &["identity", "get", "acme", "deployer"]).ok();
    assert!(
        got.starts_with("# tenants/acme/identities/deployer (uid "),
        "{got}"
    );
    assert!(
        got.contains("kind: identity\ntenant: acme\nid: deployer\n"),
        "{got}"
    );
    let again = write(dir.path(), "again.yaml", &got);
    let out = admin(url, &key, &["apply", "-f", again.to_str().unwrap()]).ok();
    let uid = lines[1]
        .split("(uid ")
        .nth(1)
        .unwrap()
        .split(',')
        .next()
        .unwrap();
    assert!(
        out.contains(&format!("(uid {uid}, policy builtin:rules)")),
        "{out}"
    );
    let issuer_doc = admin(url, &key, &["issuer", "get", "acme", "dev"]).ok();
    assert!(issuer_doc.contains("mode: discovery"), "{issuer_doc}");
    let list = admin(url, &key, &["issuer", "list", "acme"]).ok();
    assert!(list.lines().nth(1).unwrap().starts_with("dev "), "{list}");
    let list = admin(url, &key, &["identity", "list", "acme"]).ok();
    assert!(list.contains("deployer") && list.contains(uid), "{list}");
    let json = admin(
        url,
        &key,
        &["identity", "get", "acme", "deployer", "--format", "json"],
    )
    .ok();
    let json: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(json["name"], identity);

    // A server rejection names the document and quotes the server; earlier ones stay applied.
    let rejected = format!(
        "kind: issuer\ntenant: acme\nname: second\nissuer_url: {}\n---\n\
         kind: identity\ntenant: acme\nid: nothing\nissuer: second\nconfig: {{}}\n",
        issuer.url
    );
    let file = write(dir.path(), "rejected.yaml", &rejected);
    let run = admin(url, &key, &["apply", "-f", file.to_str().unwrap()]);
    assert!(
        run.stdout
            .contains("issuer tenants/acme/issuers/second applied"),
        "{}",
        run.stdout
    );
    let err = run.fails(1);
    assert!(err.contains("document 2 (identity acme/nothing)"), "{err}");
    assert!(err.contains("422"), "{err}");
    assert!(
        err.contains("policy config rejected: config binds nothing"),
        "{err}"
    );
    assert!(
        err.contains("applied before it: tenants/acme/issuers/second"),
        "{err}"
    );

    // Unknown keys are refused with their line, before anything is sent.
    let typo = "kind: issuer\ntenant: acme\nname: never\nissuer_url: http://127.0.0.1:1\n---\n\
                kind: identity\ntenant: acme\nid: typo\nissuer: dev\n\npolcy: builtin:rules\n";
    let file = write(dir.path(), "typo.yaml", typo);
    let err = admin(url, &key, &["apply", "-f", file.to_str().unwrap()]).fails(2);
    assert!(err.contains("document 2: unknown field `polcy`"), "{err}");
    assert!(err.contains("at line 11 column 1"), "{err}");
    let err = admin(url, &key, &["issuer", "get", "acme", "never"]).fails(1);
    assert!(
        err.contains("404") && err.contains("issuer `never` not found"),
        "{err}"
    );
    let err = admin(url, &key, &["apply", "-f", "does-not-exist.yaml"]).fails(2);
    assert!(err.contains("cannot read `does-not-exist.yaml`"), "{err}");

    // Keys: a refused key, and a tenant key where the operator's is needed.
    let err = admin(url, "wrong-key", &["identity", "list", "acme"]).fails(1);
    assert_eq!(
        err.trim(),
        "error: the API key was refused (set --key or TOLLGATE_API_KEY)"
    );
    let err = admin(url, &key, &["tenant", "list"]).fails(1);
    assert!(
        err.contains("403") && err.contains("an operator key is required"),
        "{err}"
    );
    let out = admin(url, &key, &["tenant", "key", "acme"]).ok();
    let second = out
        .lines()
        .find_map(|l| l.strip_prefix("api key   "))
        .expect(&out)
        .trim()
        .to_owned();
    admin(
        url,
        "wrong-key",
        &["--key", &second, "issuer", "list", "acme"],
    )
    .ok();
    // Global options may follow the subcommand too.
    let args = ["issuer", "list", "acme", "--key", &second];
    admin(url, "wrong-key", &args).ok();

    // delete
    let out = admin(url, &key, &["identity", "delete", "acme", "deployer"]).ok();
    assert_eq!(
        out.trim(),
        "identity tenants/acme/identities/deployer deleted"
    );
    let err = admin(url, &key, &["identity", "get", "acme", "deployer"]).fails(1);
    assert!(err.contains("identity `deployer` not found"), "{err}");
    let out = admin(url, &key, &["issuer", "delete", "acme", "second"]).ok();
    assert_eq!(out.trim(), "issuer tenants/acme/issuers/second deleted");
}

#[tokio::test]
async fn an_identity_with_a_policy_file_uploads_it_first() {
    let module = fixtures::module_path("team-scopes");
    let dir = TempDir::new("admin-cli-policy");
    let issuer = DevIssuer::start(&dir.path().join("dev"));
    let server = Server::start(&dir.path().join("data"));
    let url = server.url.as_str();
    let key = create_tenant(&server, "teams");
    // Relative to the YAML file, which lives elsewhere than the working directory.
    let policies = dir.path().join("conf/policies");
    std::fs::create_dir_all(&policies).unwrap();
    std::fs::copy(&module, policies.join("team_scopes.wasm")).unwrap();
    let yaml = format!(
        "kind: issuer
tenant: teams
name: dev
issuer_url: {}
---
kind: identity
tenant: teams
id: builder
issuer: dev
policy_file: policies/team_scopes.wasm
config:
  teams: [{{ prefix: team-a-, team: team-a, scopes: [team-a.read, team-a.deploy] }}]
  ttl_seconds: 600
scopes: [team-a.read, team-a.deploy]
token_audiences: [https://team-a.example]
",
        issuer.url
    );
    let file = write(&dir.path().join("conf"), "teams.yaml", &yaml);
    let out = admin(url, &key, &["apply", "-f", file.to_str().unwrap()]).ok();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    let digest = lines[1]
        .strip_prefix("policy tenants/teams/policies/")
        .and_then(|rest| rest.split_whitespace().next())
        .expect(&out);
    assert!(digest.starts_with("sha256:") && digest.len() == 71, "{out}");
    assert!(lines[1].contains(" bytes, compiled in "), "{out}");
    assert!(
        lines[2].ends_with(&format!("policy {digest})")),
        "the identity uses the uploaded digest: {out}"
    );
    let list = admin(url, &key, &["policy", "list", "teams"]).ok();
    assert!(
        list.contains("builtin:rules") && list.contains(digest),
        "{list}"
    );

    // The uploaded policy decides the exchange.
    let audience = server.tenant_audience("teams");
    let token = issuer.token(&audience, "team-a-prod", "builder", &[]);
    let (status, body) = server
        .exchange("tenants/teams/identities/builder", &token, &[])
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["scope"], "team-a.read team-a.deploy");
    let claims = write(
        dir.path(),
        "claims.json",
        r#"{"kubernetes.io": {"namespace": "team-b-prod", "serviceaccount": {"name": "x", "uid": "u"}}}"#,
    );
    let args = [
        "simulate",
        "teams",
        "builder",
        "--claims",
        claims.to_str().unwrap(),
    ];
    let out = admin(url, &key, &args).ok();
    assert!(out.contains("code      no-team"), "{out}");

    // `policy upload` on its own: the same bytes, the same digest; under a name, its first
    // version.
    let args = [
        "policy",
        "upload",
        "teams",
        module.to_str().unwrap(),
        "--name",
        "again",
    ];
    let out = admin(url, &key, &args).ok();
    assert!(
        out.starts_with(&format!(
            "policy tenants/teams/policies/{digest} uploaded (again@1, "
        )),
        "{out}"
    );
    let args = ["policy", "upload", "teams", "missing.wasm"];
    let err = admin(url, &key, &args).fails(2);
    assert!(
        err.contains("cannot read policy module `missing.wasm`"),
        "{err}"
    );
}

#[tokio::test]
async fn issuers_are_put_from_flags() {
    let dir = TempDir::new("admin-cli-issuers");
    let issuer = DevIssuer::start(&dir.path().join("dev"));
    let server = Server::start(&dir.path().join("data"));
    let url = server.url.as_str();
    let key = create_tenant(&server, "acme");

    // A static JWKS: the dev issuer's keys, pasted; an identity on it exchanges.
    let jwks = server
        .http
        .get(format!("{}/openid/v1/jwks", issuer.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    // Chainguard's form: the JWKS itself as the flag's value, trusted 30 days by default.
    let args = [
        "issuer",
        "put",
        "acme",
        "inline",
        "--url",
        &issuer.url,
        "--issuer-keys",
        &jwks,
        "--format",
        "json",
    ];
    let inline: Value = serde_json::from_str(&admin(url, &key, &args).ok()).unwrap();
    let month = inline["source"]["expires_at"].as_i64().unwrap() - tollgate_tests::jwt::now();
    assert!(
        (30 * 86_400 - 60..=30 * 86_400).contains(&month),
        "{inline}"
    );
    let bad = [
        "issuer",
        "put",
        "acme",
        "inline",
        "--url",
        &issuer.url,
        "--issuer-keys",
        "{not json",
    ];
    let err = admin(url, &key, &bad).fails(2);
    assert!(
        err.contains("the `--issuer-keys` value is not JSON"),
        "{err}"
    );
    let jwks = write(dir.path(), "jwks.json", &jwks);
    let expires = (tollgate_tests::jwt::now() + 3600).to_string();
    let args = [
        "issuer",
        "put",
        "acme",
        "pinned",
        "--url",
        &issuer.url,
        "--static-jwks",
        jwks.to_str().unwrap(),
        "--expires-at",
        &expires,
    ];
    let out = admin(url, &key, &args).ok();
    let expected = format!(
        "issuer tenants/acme/issuers/pinned applied ({}, static_jwks)",
        issuer.url
    );
    assert_eq!(out.trim(), expected);
    let yaml = "kind: identity\ntenant: acme\nid: pinned\nissuer: pinned\n\
                config: { namespaces: [prod] }\n";
    let file = write(dir.path(), "pinned.yaml", yaml);
    let out = admin(
        url,
        &key,
        &["apply", "-f", file.to_str().unwrap(), "--format", "json"],
    )
    .ok();
    let applied: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        applied["applied"][0]["name"],
        "tenants/acme/identities/pinned"
    );
    assert_eq!(applied["applied"][0]["result"]["issuer"], "pinned");
    let token = issuer.token(&server.tenant_audience("acme"), "prod", "api", &[]);
    let (status, body) = server
        .exchange("tenants/acme/identities/pinned", &token, &[])
        .await;
    assert_eq!(status, 200, "{body}");

    // TokenReview: the reviewer token comes from a file and is never shown again.
    let secret = write(dir.path(), "reviewer.token", "reviewer-secret-value\n");
    let args = [
        "issuer",
        "put",
        "acme",
        "cluster",
        "--url",
        "https://kubernetes.default.svc",
        "--token-review-server",
        "https://127.0.0.1:6443",
        "--reviewer-token-file",
        secret.to_str().unwrap(),
    ];
    let out = admin(url, &key, &args).ok();
    assert!(out.contains("token_review"), "{out}");
    let got = admin(url, &key, &["issuer", "get", "acme", "cluster"]).ok();
    assert!(!got.contains("reviewer-secret-value"), "{got}");
    assert!(got.contains("reviewer_token_file: PATH"), "{got}");
    assert!(
        got.contains("source:\n  mode: token_review\n  api_server: https://127.0.0.1:6443\n"),
        "{got}"
    );
    // Flags that only make sense together are checked before anything is sent.
    let args = [
        "issuer",
        "put",
        "acme",
        "x",
        "--url",
        "https://x",
        "--expires-at",
        "5",
    ];
    let err = admin(url, &key, &args).fails(2);
    assert!(err.contains("--issuer-keys"), "{err}");
}

#[test]
fn an_unreachable_server_and_a_missing_key_are_named() {
    // A port nothing listens on: bound, then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let err = admin(&url, "some-key", &["tenant", "list"]).fails(1);
    assert!(
        err.starts_with(&format!("error: cannot reach the server at {url}: ")),
        "{err}"
    );
    assert!(err.to_lowercase().contains("refused"), "{err}");
    let err = admin(&url, "", &["tenant", "list"]).fails(2);
    assert!(
        err.contains("no API key: pass --key or set TOLLGATE_API_KEY"),
        "{err}"
    );
    let err = admin("localhost:8080", "k", &["tenant", "list"]).fails(2);
    assert!(err.contains("is not a server URL"), "{err}");
}

#[test]
fn help_teaches_with_examples_and_hides_the_key() {
    let out = Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(["admin", "--help"])
        .env("TOLLGATE_API_KEY", "very-secret-key")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("tollgate admin apply -f"), "{help}");
    assert!(!help.contains("very-secret-key"), "{help}");
    for command in [
        &["apply"][..],
        &["tenant", "create"],
        &["issuer", "put"],
        &["policy", "upload"],
        &["identity", "get"],
        &["simulate"],
        &["decisions"],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_tollgate"))
            .arg("admin")
            .args(command)
            .arg("--help")
            .output()
            .unwrap();
        let help = String::from_utf8_lossy(&out.stdout);
        assert!(help.contains("tollgate admin "), "{command:?}: {help}");
    }
}
