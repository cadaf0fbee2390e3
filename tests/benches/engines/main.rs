//! One corpus of trust decisions, five engines side by side: the stock `rules` policy in the
//! sandbox (as the server runs it), the same crate natively, Cedar, Rego (regorus) and CEL
//! (cel-interpreter). The engines must agree on every decision: the bench is also a
//! differential test and exits non-zero on the first disagreement report.
//!
//! Run: `cargo bench -p tollgate-tests --bench engines` (builds the `rules` component itself).
//! `ENGINES_CASES=n` changes the corpus size (default 12,000), `ENGINES_ROUNDS=n` the number of
//! timed passes per engine (default 5, interleaved so that load drift hits every engine alike).
//!
//! What one decision is, for every engine: the input is the same verified claims (a
//! `serde_json::Value`), the identity and the time; the output is allow or deny. The identity's
//! policy is translated and parsed or compiled once up front, as a deployment caches it (the
//! `rules` component is loaded once, and its config is prepared once, as the server hands it
//! over (`policy::prepare`: read back in the guest with no JSON, at every decision). Timed per
//! decision:
//! - **sandboxed**: `build_request` (as the server calls it) + `PolicyEngine::evaluate` (a fresh
//!   instance, fuel, the call, output validation);
//! - **native**: `build_request` + conversion to the SDK's `Request` +
//!   `tollgate_policy::evaluate_json::<rules::Rules>` (the prepared config read, as in the guest);
//! - **Cedar**: building the context (typed fields + the claims as a record), the principal and
//!   the `Request` + `Authorizer::is_authorized` against the identity's `PolicySet`;
//! - **Rego**: building the input (typed fields + raw claims) + `CompiledPolicy::eval_with_input`;
//! - **CEL**: building the input (typed fields + claims with list leaves) and an inner scope +
//!   `Program::execute`.
//!
//! How each engine expresses the rules is described in its module (`engines/*.rs`).

mod cedar;
mod cel;
mod corpus;
mod facts;
mod rego;
mod report;

use corpus::{Case, NOW};
use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::Instant;
use tollgate::policy::bindings::Request;
use tollgate::policy::prepare::Preparer;
use tollgate::policy::{ExchangeContext, Limits, PolicyEngine, build_request};
use tollgate_policy::Decision;
use tollgate_tests::fixtures;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The host request converted to the SDK's, moving the strings (no copies).
fn into_sdk(r: Request) -> tollgate_policy::Request {
    let obj = |o: tollgate::policy::bindings::ObjectRef| tollgate_policy::ObjectRef {
        name: o.name,
        uid: o.uid,
    };
    tollgate_policy::Request {
        token: tollgate_policy::Token {
            issuer: r.token.issuer,
            subject: r.token.subject,
            audiences: r.token.audiences,
            issued_at: r.token.issued_at,
            not_before: r.token.not_before,
            expires_at: r.token.expires_at,
            jwt_id: r.token.jwt_id,
            kubernetes: r
                .token
                .kubernetes
                .map(|k| tollgate_policy::KubernetesClaims {
                    namespace: k.namespace,
                    service_account: obj(k.service_account),
                    pod: k.pod.map(obj),
                    node: k.node.map(obj),
                    secret: k.secret.map(obj),
                }),
            claims_json: r.token.claims_json,
        },
        exchange: tollgate_policy::Exchange {
            tenant: r.exchange.tenant,
            identity: r.exchange.identity,
            requested_audiences: r.exchange.requested_audiences,
            requested_scopes: r.exchange.requested_scopes,
            client_address: r.exchange.client_address,
            now: r.exchange.now,
        },
        config: r.config,
    }
}

/// What every engine gets for one identity, prepared once.
struct Prepared {
    exchange: ExchangeContext,
    /// The JSON config, as the tenant wrote it.
    config: String,
    /// The config as the server hands it to `rules`: prepared.
    handed: String,
    cedar: cedar::CedarPolicy,
    rego: rego::RegoPolicy,
    cel: cel::CelPolicy,
}

type Decide<'a> = Box<dyn Fn(&Case) -> bool + 'a>;
type Build<'a> = Box<dyn Fn(&Case) + 'a>;

fn main() {
    // `cargo bench` passes `--bench`; nothing to parse.
    let count = env_usize("ENGINES_CASES", 12_000);
    let rounds = env_usize("ENGINES_ROUNDS", 5).max(1);
    let identities = corpus::identities();
    let cases = corpus::cases(&identities, count, 0x7011_6a7e);

    let engine = PolicyEngine::new(Limits::default()).expect("policy engine");
    let module = engine
        .load(&fixtures::module("rules"))
        .expect("load rules")
        .with_preparer(Preparer::rules());
    let prepared: Vec<Prepared> = identities
        .iter()
        .map(|id| {
            let config: rules::RulesConfig =
                serde_json::from_value(id.config.clone()).expect("rules config");
            let fail = |engine: &str, e: String| -> ! { panic!("{engine}, {}: {e}", id.name) };
            Prepared {
                exchange: ExchangeContext {
                    tenant: id.tenant.into(),
                    identity: id.name.into(),
                    requested_scopes: vec!["default".into()],
                    now: NOW,
                    ..Default::default()
                },
                config: id.config.to_string(),
                handed: module.config(&id.config.to_string()).into_owned(),
                cedar: cedar::CedarPolicy::compile(&config, id.tenant, id.name)
                    .unwrap_or_else(|e| fail("Cedar", e)),
                rego: rego::RegoPolicy::compile(&config).unwrap_or_else(|e| fail("Rego", e)),
                cel: cel::CelPolicy::compile(&config).unwrap_or_else(|e| fail("CEL", e)),
            }
        })
        .collect();
    for p in &prepared {
        let validated = engine.validate_config(&module, &p.config);
        assert!(validated.is_ok(), "config rejected: {validated:?}");
        assert!(
            p.handed.starts_with("\"rules1;"),
            "not prepared: {}",
            p.config
        );
    }
    if std::env::var("ENGINES_PRINT").is_ok() {
        for id in &identities {
            let config: rules::RulesConfig = serde_json::from_value(id.config.clone()).unwrap();
            println!(
                "== {}/{}\n-- Cedar\n{}",
                id.tenant,
                id.name,
                cedar::translate(&config).unwrap()
            );
            println!("-- Rego\n{}", rego::translate(&config).unwrap());
            println!("-- CEL\n{}\n", cel::translate(&config).unwrap().0);
        }
    }

    let request = |case: &Case| {
        let p = &prepared[case.identity];
        build_request(&case.claims, p.exchange.clone(), &p.handed).expect("request")
    };
    let engines: Vec<(&str, Decide)> = vec![
        (
            "sandboxed rules",
            Box::new(|c: &Case| engine.evaluate(&module, &request(c)).decision.is_allow()),
        ),
        (
            "native rules",
            Box::new(|c: &Case| {
                let r = into_sdk(request(c));
                tollgate_policy::evaluate_json::<rules::Rules>(&r.config, &r).is_allow()
            }),
        ),
        (
            "Cedar",
            Box::new(|c: &Case| prepared[c.identity].cedar.decide(&c.claims, NOW)),
        ),
        (
            "Rego (regorus)",
            Box::new(|c: &Case| prepared[c.identity].rego.decide(&c.claims, NOW)),
        ),
        (
            "CEL (cel-interpreter)",
            Box::new(|c: &Case| prepared[c.identity].cel.decide(&c.claims, NOW)),
        ),
    ];

    // The reference answer and the denial reasons, from the native `rules`.
    let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
    let expected: Vec<bool> = cases
        .iter()
        .map(|c| {
            let r = into_sdk(request(c));
            match tollgate_policy::evaluate_json::<rules::Rules>(&r.config, &r) {
                Decision::Allow(_) => true,
                Decision::Deny(d) => {
                    *reasons.entry(d.code).or_default() += 1;
                    false
                }
            }
        })
        .collect();
    let allowed = expected.iter().filter(|a| **a).count();
    println!(
        "corpus: {count} decisions over {} identities, {allowed} allowed, denied by rule: {reasons:?}",
        identities.len()
    );
    for code in [
        "subject",
        "namespace",
        "service-account",
        "service-account-uid",
        "audience",
        "pod",
        "node",
        "token-age",
        "claim",
    ] {
        assert!(
            reasons.contains_key(code),
            "no request is denied by `{code}`"
        );
    }

    // Differential check: every engine, every case, before anything is timed.
    let mut disagreements = 0;
    for (name, decide) in &engines {
        for (case, want) in cases.iter().zip(&expected) {
            let got = decide(case);
            if got != *want {
                disagreements += 1;
                if disagreements <= 10 {
                    eprintln!(
                        "DISAGREEMENT: {name} says {got}, rules says {want}, identity {}/{}, claims {}",
                        identities[case.identity].tenant,
                        identities[case.identity].name,
                        case.claims
                    );
                }
            }
        }
    }
    if disagreements > 0 {
        eprintln!("{disagreements} disagreements: the engines do not implement the same rules");
        std::process::exit(1);
    }
    println!(
        "all {} engines agree on all {count} decisions",
        engines.len()
    );

    // Timing: interleaved passes, each decision timed on its own.
    let mut samples: Vec<Vec<std::time::Duration>> = vec![Vec::new(); engines.len()];
    for (_, decide) in &engines {
        for case in cases.iter().take(count / 5) {
            black_box(decide(black_box(case)));
        }
    }
    for _ in 0..rounds {
        for ((name, decide), out) in engines.iter().zip(&mut samples) {
            for (case, want) in cases.iter().zip(&expected) {
                let start = Instant::now();
                let got = black_box(decide(black_box(case)));
                out.push(start.elapsed());
                assert_eq!(got, *want, "{name} changed its answer");
            }
        }
    }
    // For reference: the input building each row includes, timed alone (one pass).
    let builders: Vec<(&str, Build)> = vec![
        (
            "build_request (rules)",
            Box::new(|c: &Case| drop(black_box(request(c)))),
        ),
        (
            "Cedar request",
            Box::new(|c: &Case| {
                drop(black_box(
                    prepared[c.identity].cedar.request(&c.claims, NOW),
                ))
            }),
        ),
        (
            "Rego input",
            Box::new(|c: &Case| drop(black_box(rego::input(&c.claims, NOW)))),
        ),
        (
            "CEL input",
            Box::new(|c: &Case| drop(black_box(cel::input(&c.claims, NOW)))),
        ),
    ];
    let building = builders
        .iter()
        .map(|(name, build)| {
            let times = cases
                .iter()
                .map(|case| {
                    let start = Instant::now();
                    build(black_box(case));
                    start.elapsed()
                })
                .collect();
            (*name, times)
        })
        .collect();
    let names: Vec<&str> = engines.iter().map(|(n, _)| *n).collect();
    report::print(&names, samples, building, count, rounds);
}
