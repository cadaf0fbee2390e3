//! Exchange throughput and latency of `tollgate serve` against the crypto ceiling, in one run.
//!
//! Run: `cargo bench -p tollgate --bench exchange`. Starts a dev issuer and the server on
//! loopback (rate limits off, the default SQLite store), sets up one tenant with one `rules`
//! identity, and mints RS256 subject tokens for 64 pods. Then, one after another:
//!
//! 1. the crypto ceiling: on as many threads as the machine has cores, verify a subject token
//!    (RS256) and sign an issued token (ES256, the server's default), nothing else;
//! 2. peak: the load generator (this binary again, as a separate process) in closed loop;
//! 3. 80% of peak: the load generator in open loop at 0.8 x the peak rate.
//!
//! Knobs: `EXCHANGE_SECONDS` (measured seconds per phase, default 8), `EXCHANGE_CONNECTIONS`
//! (closed-loop connections, default 32).

mod support;

use jsonwebtoken::{DecodingKey, Validation};
use serde_json::{Value, json};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use support::loadgen::{self, Plan};
use support::processes::{Issuer, Server, TempDir};
use support::stats::{ms, print_table, print_targets, target};
use support::{admin, knob};
use tollgate::issue::{Algorithm, SigningKey};

const PODS: usize = 64;

fn main() {
    loadgen::run_if_requested();
    let seconds = Duration::from_secs(knob("EXCHANGE_SECONDS", 8));
    let connections = knob("EXCHANGE_CONNECTIONS", 32) as usize;
    let cores = std::thread::available_parallelism().map_or(1, usize::from);

    let scratch = TempDir::new("exchange");
    let issuer = Issuer::start(&scratch.path().join("issuer"));
    let (server, _) = Server::start(&scratch.path().join("server"));
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let http = admin::client();
    let tenant = runtime.block_on(admin::create_tenant(&http, &server.url, "bench", &issuer));
    runtime.block_on(admin::put_identity(
        &http,
        &server.url,
        &tenant,
        "deployer",
        "builtin:rules",
    ));
    let identity = format!("tenants/{}/identities/deployer", tenant.name);
    let tokens: Vec<String> = (0..PODS)
        .map(|pod| admin::subject_token(&issuer, &tenant.audience, &format!("api-{pod}")))
        .collect();
    let bodies: Vec<String> = tokens
        .iter()
        .map(|t| admin::exchange_body(&identity, t))
        .collect();
    // Every body must be an allowed exchange: a fast refusal would flatter the numbers.
    runtime.block_on(check_allowed(&http, &server.url, &bodies));

    println!("exchange bench: {cores} cores, {PODS} pods' RS256 tokens, one `rules` identity");
    println!("  crypto ceiling on {cores} threads ...");
    let ceiling = crypto_ceiling(&issuer, &tenant.audience, &tokens, cores, seconds);

    println!("  peak: closed loop, {connections} connections ...");
    let peak = loadgen::run(
        &Plan {
            addr: server.addr.clone(),
            bodies: bodies.clone(),
            connections,
            warmup: Duration::from_secs(2),
            duration: seconds,
            rate: None,
        },
        scratch.path(),
    );
    let rate = 0.8 * peak.per_second();
    println!("  80% of peak: open loop at {rate:.0}/s ...");
    let steady = loadgen::run(
        &Plan {
            addr: server.addr.clone(),
            bodies,
            connections: 128,
            warmup: Duration::from_secs(2),
            duration: seconds,
            rate: Some(rate),
        },
        scratch.path(),
    );
    let (rss, peak_rss) = server.memory();

    println!();
    let row = |name: &str, per_second: f64, outcome: Option<&loadgen::Outcome>| {
        let p = |q: f64| outcome.map_or("-".to_owned(), |o| ms(o.latencies.percentile(q)));
        vec![
            name.to_owned(),
            format!("{per_second:.0}"),
            p(50.0),
            p(99.0),
            p(99.9),
        ]
    };
    print_table(
        &["phase", "per second", "p50", "p99", "p99.9"],
        &[
            row("crypto ceiling (verify RS256 + sign ES256)", ceiling, None),
            row(
                "exchanges, peak (closed loop)",
                peak.per_second(),
                Some(&peak),
            ),
            row(
                "exchanges at 80% of peak (open loop)",
                steady.per_second(),
                Some(&steady),
            ),
        ],
    );
    println!();
    let ratio = peak.per_second() / ceiling;
    let p99 = steady.latencies.percentile(99.0);
    print_targets(&[
        target(
            "peak / crypto ceiling",
            format!("{ratio:.2}x"),
            ">= 0.60x",
            ratio >= 0.60,
        ),
        target("p99 at 80% of peak", ms(p99), "< 2 ms", p99 < 2000.0),
    ]);
    println!(
        "\n  server memory: {:.0} MiB resident, {:.0} MiB peak",
        rss as f64 / 1048576.0,
        peak_rss as f64 / 1048576.0
    );
}

async fn check_allowed(http: &reqwest::Client, server: &str, bodies: &[String]) {
    for body in bodies {
        let (status, text) = admin::exchange(http, server, body).await;
        assert_eq!(status, 200, "a bench exchange is refused: {text}");
    }
}

/// Verifications + signatures per second on `threads` threads, with nothing else running.
fn crypto_ceiling(
    issuer: &Issuer,
    audience: &str,
    tokens: &[String],
    threads: usize,
    time: Duration,
) -> f64 {
    let jwk: jsonwebtoken::jwk::Jwk =
        serde_json::from_value(issuer.keys.current().public_jwk()).expect("issuer jwk");
    let decoding = DecodingKey::from_jwk(&jwk).expect("decoding key");
    let mut validation = Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_audience(&[audience]);
    validation.set_issuer(&[&issuer.url]);
    let signing =
        SigningKey::generate(Algorithm::Es256, tollgate::dev::unix_now()).expect("signing key");
    let issued = issued_claims();
    let stop = AtomicBool::new(false);
    let done = AtomicU64::new(0);
    let started = Instant::now();
    std::thread::scope(|scope| {
        for t in 0..threads {
            let (decoding, validation, signing, issued, stop, done) =
                (&decoding, &validation, &signing, &issued, &stop, &done);
            scope.spawn(move || {
                let mut i = t;
                while !stop.load(Ordering::Relaxed) {
                    let claims = jsonwebtoken::decode::<Value>(
                        &tokens[i % tokens.len()],
                        decoding,
                        validation,
                    )
                    .expect("verify");
                    std::hint::black_box(claims);
                    std::hint::black_box(signing.sign(issued).expect("sign"));
                    done.fetch_add(1, Ordering::Relaxed);
                    i += threads;
                }
            });
        }
        std::thread::sleep(time);
        stop.store(true, Ordering::Relaxed);
    });
    done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

/// Claims shaped like an issued access token.
fn issued_claims() -> Value {
    json!({
        "iss": "http://127.0.0.1:8080", "sub": "tenants/bench/identities/deployer",
        "aud": "https://registry.example", "scope": "registry.pull registry.push",
        "iat": 1_700_000_000, "nbf": 1_700_000_000, "exp": 1_700_000_900,
        "jti": "0c5c8f2e4f7a4b0e9c556f1c2a6f0e11",
        "act": {"iss": "http://127.0.0.1:8081", "sub": "system:serviceaccount:prod:deployer"},
        "tenant": "bench", "identity": "3f9a0c5c8f2e4f7a", "policy": "builtin:rules",
        "kubernetes": {"namespace": "prod", "service_account": "deployer", "pod": "api-1", "node": "pool-a-1"}
    })
}
