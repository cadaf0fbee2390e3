//! The Python and JavaScript `team-scopes` (sdk/python, sdk/js) uploaded to the server decide
//! every exchange exactly as the Rust `team-scopes` does, their decisions in the log with fuel.
//! The modules are built by tests/steps/sdks.sh; a missing one fails here, naming the script.

use tollgate_tests::fixtures;
use tollgate_tests::server as server_support;

use serde_json::{Value, json};
use server_support::{DevIssuer, Server, TempDir, quickstart};

/// The config of `policies/team-scopes/cases.yaml`.
fn config() -> Value {
    json!({
        "teams": [
            {"prefix": "team-a-", "team": "team-a", "scopes": ["team-a.read", "team-a.deploy"]},
            {"prefix": "team-a-infra-", "team": "infra", "scopes": ["infra.admin"]},
            {"prefix": "team-b-", "team": "team-b", "scopes": ["team-b.read"]},
        ],
        "ttl_seconds": 600,
    })
}

/// The namespaces and requested scopes of the cases file's exchanges (a request naming a scope
/// the policy does not grant is refused by the host whatever the policy, so the intersection
/// case asks for one of the team's scopes).
const EXCHANGES: &[(&str, &str)] = &[
    ("team-a-prod", ""),
    ("team-a-infra-ops", ""),
    ("team-a-prod", "team-a.read"),
    ("team-a-prod", "team-b.read"),
    ("team-ab", ""),
    ("team-attacker", ""),
    ("team-b-web", ""),
];

/// What an exchange answered: status, granted `scope`, the issued token's `team` claim.
type Answer = (u16, Value, Value);

/// Configs the policy must refuse, with a part of the message.
fn bad_configs() -> Vec<(Value, &'static str)> {
    let team = json!({"prefix": "team-a-", "team": "a", "scopes": ["x"]});
    vec![
        (json!({"teams": []}), "empty"),
        (json!({"teams": [team, team]}), "duplicate prefix"),
        (
            json!({"teams": [{"prefix": "team-a", "team": "a", "scopes": ["x"]}]}),
            "must end with `-`",
        ),
        (json!({"teams": [team], "ttl": 60}), "unknown field"),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_and_javascript_policies_decide_like_the_rust_one() {
    // Fail before starting anything when the toolchains were not run.
    let modules: Vec<(&str, Vec<u8>)> = vec![
        ("team-scopes", fixtures::module("team-scopes")),
        (
            "team-scopes-py",
            fixtures::interpreter_module("team-scopes-py"),
        ),
        (
            "team-scopes-js",
            fixtures::interpreter_module("team-scopes-js"),
        ),
    ];
    let dir = TempDir::new("languages");
    let issuer = DevIssuer::start(&dir.path().join("dev"));
    // A debug build compiles an 18 MiB component in tens of seconds on a busy machine.
    let server = Server::start_with(
        &dir.path().join("data"),
        &[
            "--allow-insecure-issuers",
            "--policy-compile-seconds",
            "600",
        ],
    );
    let acme = quickstart(&server, &issuer, "acme").await;

    let mut answers: Vec<(&str, Vec<Answer>, Vec<Value>)> = Vec::new();
    for (name, bytes) in &modules {
        let (status, body) = server
            .upload_policy("acme", &acme.key, bytes.clone(), "application/wasm")
            .await;
        assert_eq!(status, 201, "{name}: {body}");
        let digest = body["digest"].as_str().unwrap().to_owned();
        let identity = |config: Value| {
            json!({
                "issuer": "dev", "policy": digest, "config": config,
                // An interpreter burns millions of fuel units per decision: the identity says
                // how many it may (the most an identity may give).
                "fuel": 10_000_000,
                "scopes": ["team-a.read", "team-a.deploy", "infra.admin", "team-b.read"],
                "token_audiences": ["https://team.example"],
            })
        };
        for (config, expected) in bad_configs() {
            let (status, body) = server
                .put_identity("acme", name, &acme.key, identity(config))
                .await;
            let message = body["message"].as_str().unwrap_or_default();
            assert_eq!(status, 422, "{name}: {body}");
            assert!(message.contains(expected), "{name}: {message}");
        }
        let (status, body) = server
            .put_identity("acme", name, &acme.key, identity(config()))
            .await;
        assert_eq!(status, 200, "{name}: {body}");

        let mut got = Vec::new();
        for (namespace, scopes) in EXCHANGES {
            let token = issuer.token(&acme.audience, namespace, "app", &[]);
            let extra: Vec<(&str, &str)> = if scopes.is_empty() {
                vec![]
            } else {
                vec![("scope", *scopes)]
            };
            let (status, body) = server.exchange(&acme.identity(name), &token, &extra).await;
            let team = match body["access_token"].as_str() {
                Some(token) => server.verify(token, "https://team.example").await["team"].clone(),
                None => Value::Null,
            };
            got.push((status, body["scope"].clone(), team));
        }

        // Every decision is in the tenant's log, with the fuel it burned.
        let decisions: Vec<Value> = server
            .decisions("acme", &acme.key)
            .await
            .into_iter()
            .filter(|d| d["identity"] == *name)
            .collect();
        assert_eq!(decisions.len(), EXCHANGES.len(), "{name}: {decisions:?}");
        for decision in &decisions {
            assert!(decision["fuel_used"].as_i64().unwrap() > 0, "{decision}");
        }
        // Oldest first, as the exchanges were made: the codes must agree too.
        let codes: Vec<Value> = decisions.iter().rev().map(|d| d["code"].clone()).collect();
        answers.push((name, got, codes));
    }

    let (_, rust, rust_codes) = &answers[0];
    // The Rust policy's own answers, as cases.yaml states them.
    assert_eq!(
        rust[0],
        (200, json!("team-a.read team-a.deploy"), json!("team-a"))
    );
    assert_eq!(rust[1], (200, json!("infra.admin"), json!("infra")));
    assert_eq!(rust[2], (200, json!("team-a.read"), json!("team-a")));
    assert_eq!(rust[3].0, 400);
    assert_eq!(rust[6], (200, json!("team-b.read"), json!("team-b")));
    assert_eq!(
        rust_codes,
        &[
            json!(null),
            json!(null),
            json!(null),
            json!("scope"),
            json!("no-team"),
            json!("no-team"),
            json!(null)
        ]
    );
    for (name, got, codes) in &answers[1..] {
        assert_eq!(
            got, rust,
            "{name} decided differently from the Rust team-scopes"
        );
        assert_eq!(codes, rust_codes, "{name} denied with other codes");
    }
}
