//! Changing a policy through the CLI only: `policy bundle` (refusing a module that fails its
//! cases), a named upload and its versions, `apply -f` with an identity following the name
//! and carrying its own cases and a shadow candidate, `policy diff`, `replay`, `rollback`
//! and `identity promote`.

use super::admin::{admin, create_tenant, write};
use super::{text, tollgate};
use tollgate_tests::fixtures;
use tollgate_tests::server::{DevIssuer, Server, TempDir};

fn identity_yaml(issuer_url: &str) -> String {
    format!(
        "kind: issuer
tenant: acme
name: dev
issuer_url: {issuer_url}
---
kind: identity
tenant: acme
id: deployer
issuer: dev
policy: gate
config: {{ namespaces: [prod, team-*], grant: {{ scopes: [registry.pull] }} }}
scopes: [registry.pull]
cases:
  - name: prod may pull
    token: {{ sub: 'system:serviceaccount:prod:app',
             kubernetes.io: {{ namespace: prod, serviceaccount: {{ name: app, uid: u1 }} }} }}
    expect: allow
shadow: {{ policy: builtin:rules, config: {{ namespaces: [prod], grant: {{ scopes: [registry.pull] }} }} }}
"
    )
}

#[tokio::test]
async fn a_policy_is_bundled_versioned_shadowed_replayed_rolled_back_and_promoted() {
    let dir = TempDir::new("change-cli");
    let issuer = DevIssuer::start(&dir.path().join("dev"));
    let server = Server::start(&dir.path().join("data"));
    let url = server.url.as_str();
    let key = create_tenant(&server, "acme");
    let cases = fixtures::root().join("policies/rules/cases.yaml");
    let cases = cases.to_str().unwrap();
    let path = |name: &str| fixtures::module_path(name).to_str().unwrap().to_owned();

    // A module failing the cases is not bundled; the rules module is.
    let bundle = dir.path().join("rules.bundle.wasm");
    let out = tollgate(&[
        "policy",
        "bundle",
        &path("pod_claims"),
        cases,
        "-o",
        bundle.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    assert!(
        text(&out.stderr).contains("not bundled"),
        "{}",
        text(&out.stderr)
    );
    assert!(!bundle.exists());
    let out = tollgate(&[
        "policy",
        "bundle",
        &path("rules"),
        cases,
        "-o",
        bundle.to_str().unwrap(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(
        text(&out.stdout).contains("bundled "),
        "{}",
        text(&out.stdout)
    );

    let bundle = bundle.to_str().unwrap();
    let out = admin(
        url,
        &key,
        &[
            "policy",
            "upload",
            "acme",
            bundle,
            "--name",
            "gate",
            "--description",
            "first",
        ],
    )
    .ok();
    assert!(
        out.contains("(gate@1, ") && out.contains("cases pass"),
        "{out}"
    );
    let plain = path("rules");
    admin(
        url,
        &key,
        &["policy", "upload", "acme", &plain, "--name", "gate"],
    )
    .ok();
    let versions = admin(url, &key, &["policy", "versions", "acme", "gate"]).ok();
    assert!(
        versions.contains("gate@2") && versions.contains("gate@1"),
        "{versions}"
    );
    assert!(versions.contains("first"), "{versions}");

    let file = write(dir.path(), "acme.yaml", &identity_yaml(&issuer.url));
    let out = admin(url, &key, &["apply", "-f", file.to_str().unwrap()]).ok();
    assert!(out.contains("policy gate"), "{out}");
    let shown = admin(url, &key, &["identity", "get", "acme", "deployer"]).ok();
    assert!(
        shown.contains("shadow:") && shown.contains("cases:"),
        "{shown}"
    );

    // Traffic: the candidate (prod only) disagrees on the team namespace.
    let audience = server.tenant_audience("acme");
    for namespace in ["prod", "team-a", "prod"] {
        let token = issuer.token(&audience, namespace, "app", &[]);
        let (status, body) = server
            .exchange("tenants/acme/identities/deployer", &token, &[])
            .await;
        assert_eq!(status, 200, "{body}");
    }
    let diff = admin(
        url,
        &key,
        &["policy", "diff", "acme", "deployer", "--since", "1h"],
    )
    .ok();
    assert!(
        diff.contains("3 exchanges, 2 agreed, 1 disagreed"),
        "{diff}"
    );
    assert!(diff.contains("deny:namespace"), "{diff}");
    let replay = admin(
        url,
        &key,
        &[
            "replay", "acme", "deployer", "--policy", "gate@1", "--since", "1h",
        ],
    )
    .ok();
    assert!(replay.contains("replayed 3 decisions"), "{replay}");
    assert!(
        replay
            .lines()
            .any(|l| l.split_whitespace().eq(["unchanged", "3"])),
        "{replay}"
    );
    let bad = admin(
        url,
        &key,
        &[
            "replay", "acme", "deployer", "--policy", "gate", "--since", "1w",
        ],
    )
    .fails(2);
    assert!(bad.contains("a duration"), "{bad}");

    let rolled = admin(url, &key, &["policy", "rollback", "acme", "gate"]).ok();
    assert!(
        rolled.contains("version 3 runs version 1's module"),
        "{rolled}"
    );
    assert!(
        rolled.contains("tenants/acme/identities/deployer switched"),
        "{rolled}"
    );
    let current = admin(
        url,
        &key,
        &["policy", "rollback", "acme", "gate", "--to", "3"],
    )
    .fails(1);
    assert!(
        current.contains("runs the current module already"),
        "{current}"
    );
    let promoted = admin(url, &key, &["identity", "promote", "acme", "deployer"]).ok();
    assert!(
        promoted.contains("promoted: policy builtin:rules"),
        "{promoted}"
    );
    let again = admin(url, &key, &["identity", "promote", "acme", "deployer"]).fails(1);
    assert!(again.contains("no shadow candidate"), "{again}");
}
