//! What changing a policy safely costs, side by side in one run: CPU per exchange of an
//! identity with a shadow candidate (sampled on every exchange) against the same identity
//! without, then the time to replay the recorded decisions with another config.
//!
//! Run: `cargo bench -p tollgate --bench change`. One server process (SQLite), one tenant, two
//! identities on `builtin:rules` with the bench config; the shadowed one's candidate is the
//! same policy with a narrowed pod glob (`api-1*` for `api-*`), so that every exchange also
//! records the candidate's answer, most of them disagreements. A second server keeps no policy
//! requests (`--replay-retention-days 0`), for what keeping them costs. The three kinds take
//! turns, twice, and each kind's server CPU is summed over its two phases; the load
//! generator's CPU is left out. Replay then evaluates every recorded decision of the shadowed
//! identity.
//!
//! Knobs: `CHANGE_SECONDS` (measured seconds per phase, default 5), `CHANGE_CONNECTIONS`
//! (closed-loop connections, default 16).

mod support;

use reqwest::{Method, StatusCode};
use serde_json::json;
use std::time::{Duration, Instant};
use support::loadgen::{self, Endpoint, Plan};
use support::processes::{Issuer, Server, TempDir};
use support::stats::{ms, print_table, print_targets, target};
use support::{admin, knob};

const PODS: usize = 64;

fn main() {
    loadgen::run_if_requested();
    let seconds = Duration::from_secs(knob("CHANGE_SECONDS", 5));
    let connections = knob("CHANGE_CONNECTIONS", 16) as usize;
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let scratch = TempDir::new("change");
    let issuer = Issuer::start(&scratch.path().join("issuer"));
    let (server, _) = Server::start(&scratch.path().join("server"));
    let http = admin::client();
    let tenant = runtime.block_on(admin::create_tenant(&http, &server.url, "bench", &issuer));
    runtime.block_on(admin::put_identity(
        &http,
        &server.url,
        &tenant,
        "plain",
        "builtin:rules",
    ));
    // The candidate lets 11 of the 64 pods in (`api-1`, `api-10` to `api-19`): most exchanges
    // record a disagreement, the dearer kind of record.
    let mut narrowed = admin::rules_config();
    narrowed["pod"] = json!({"required": true, "names": ["api-1*"]});
    narrowed["claims"] = json!({"/kubernetes.io/pod/name": ["api-1*"]});
    let shadowed = json!({
        "issuer": "dev", "policy": "builtin:rules", "config": admin::rules_config(),
        "scopes": ["registry.pull", "registry.push"],
        "token_audiences": ["https://registry.example"],
        "shadow": {"policy": "builtin:rules", "config": narrowed, "sample": 1.0},
    });
    runtime.block_on(admin::call(
        &http,
        Method::PUT,
        format!(
            "{}/v1/tenants/{}/identities/shadowed",
            server.url, tenant.name
        ),
        &tenant.key,
        Some(shadowed),
        StatusCode::OK,
    ));
    let bodies = |id: &str| -> Vec<String> {
        let identity = format!("tenants/{}/identities/{id}", tenant.name);
        (0..PODS)
            .map(|pod| {
                let token = admin::subject_token(&issuer, &tenant.audience, &format!("api-{pod}"));
                admin::exchange_body(&identity, &token)
            })
            .collect()
    };
    let (plain, shadow) = (bodies("plain"), bodies("shadowed"));
    // A second server that keeps no policy requests (`--replay-retention-days 0`): what keeping
    // them costs an exchange that has no shadow.
    let (bare, _) = Server::start_with(
        &scratch.path().join("bare"),
        "127.0.0.1:0",
        &["--replay-retention-days", "0"],
    );
    let bare_tenant = runtime.block_on(admin::create_tenant(&http, &bare.url, "bench", &issuer));
    runtime.block_on(admin::put_identity(
        &http,
        &bare.url,
        &bare_tenant,
        "plain",
        "builtin:rules",
    ));
    let unkept: Vec<String> = (0..PODS)
        .map(|pod| {
            let identity = format!("tenants/{}/identities/plain", bare_tenant.name);
            let token = admin::subject_token(&issuer, &bare_tenant.audience, &format!("api-{pod}"));
            admin::exchange_body(&identity, &token)
        })
        .collect();
    let kinds: [(&str, &Server, &Vec<String>); 3] = [
        ("without a shadow", &server, &plain),
        ("with a shadow (every exchange)", &server, &shadow),
        ("without a shadow, requests not kept", &bare, &unkept),
    ];
    for (_, server, bodies) in &kinds {
        let (status, text) = runtime.block_on(admin::exchange(&http, &server.url, &bodies[0]));
        assert_eq!(status, 200, "a bench exchange is refused: {text}");
    }

    println!(
        "change bench: {connections} connections, {seconds:?} per phase, the three kinds in turn, twice"
    );
    // (answers, server CPU seconds, p50s, p99s) per kind, summed over its phases.
    let mut totals: Vec<(u64, f64, Vec<f64>, Vec<f64>)> = vec![Default::default(); kinds.len()];
    for round in 0..2 {
        for (kind, (_, server, bodies)) in kinds.iter().enumerate() {
            let plan = Plan {
                addr: server.addr.clone(),
                endpoint: Endpoint::Exchange,
                bodies: (*bodies).clone(),
                connections,
                warmup: Duration::from_secs(1),
                duration: seconds,
                rate: None,
            };
            let dir = scratch.path().join(format!("load-{round}-{kind}"));
            std::fs::create_dir_all(&dir).unwrap();
            let before = server.cpu_seconds();
            let outcome = loadgen::run(&plan, &dir);
            let total = &mut totals[kind];
            total.0 += outcome.answers;
            total.1 += server.cpu_seconds() - before;
            total.2.push(outcome.latencies.percentile(50.0));
            total.3.push(outcome.latencies.percentile(99.0));
        }
    }
    let per_exchange = |(answers, cpu, _, _): &(u64, f64, Vec<f64>, Vec<f64>)| {
        cpu * 1e6 / (*answers).max(1) as f64
    };
    let rows: Vec<Vec<String>> = kinds
        .iter()
        .zip(&totals)
        .map(|((name, _, _), t)| {
            vec![
                name.to_string(),
                t.0.to_string(),
                format!("{:.0} µs", per_exchange(t)),
                t.2.iter().map(|p| ms(*p)).collect::<Vec<_>>().join(", "),
                t.3.iter().map(|p| ms(*p)).collect::<Vec<_>>().join(", "),
            ]
        })
        .collect();
    println!();
    print_table(
        &[
            "identity",
            "exchanges",
            "server CPU/exchange",
            "p50 (2 phases)",
            "p99",
        ],
        &rows,
    );
    println!(
        "keeping the policy request for replay (the default): {:.2}x the server CPU of not keeping it",
        per_exchange(&totals[0]) / per_exchange(&totals[2])
    );

    let report = runtime.block_on(admin::call(
        &http,
        Method::GET,
        format!(
            "{}/v1/tenants/{}/identities/shadowed/shadow",
            server.url, tenant.name
        ),
        &tenant.key,
        None,
        StatusCode::OK,
    ));
    println!(
        "shadow report: the candidate ran on {} exchanges ({} agreed, {} disagreed)",
        report["evaluated"], report["agreed"], report["disagreed"]
    );
    assert!(
        report["disagreed"].as_u64().unwrap_or(0) > 0,
        "the candidate did not run: {report}"
    );

    // Replay: every recorded decision of the shadowed identity, with the narrowed config.
    let started = Instant::now();
    let report = runtime.block_on(admin::call(
        &http,
        Method::POST,
        format!(
            "{}/v1/tenants/{}/identities/shadowed/replay",
            server.url, tenant.name
        ),
        &tenant.key,
        Some(json!({"policy": "builtin:rules", "config": narrowed, "since_seconds": 3600})),
        StatusCode::OK,
    ));
    let wall = started.elapsed();
    let replayed = report["replayed"].as_u64().unwrap_or(0);
    let per_10k = wall.as_secs_f64() * 10_000.0 / replayed.max(1) as f64;
    println!();
    println!(
        "replay: {replayed} recorded decisions in {:.2} s ({} ms evaluating on the server; \
         unchanged {}, allowed->denied {}): {per_10k:.2} s per 10,000",
        wall.as_secs_f64(),
        report["elapsed_ms"],
        report["unchanged"],
        report["allowed_to_denied"]
    );

    let ratio = per_exchange(&totals[1]) / per_exchange(&totals[0]);
    println!();
    print_targets(&[
        target(
            "server CPU per exchange, with a shadow (sample 1) / without",
            format!("{ratio:.2}x"),
            "<= 1.3x",
            ratio <= 1.3,
        ),
        target(
            "replay of 10,000 recorded decisions",
            format!("{per_10k:.2} s (measured on {replayed})"),
            "< 10 s, on at least 10,000",
            per_10k < 10.0 && replayed >= 10_000,
        ),
    ]);
    drop(server);
    drop(bare);
}
