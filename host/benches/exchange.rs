//! Exchange throughput and latency of `tollgate serve` against the crypto ceiling, in one run.
//!
//! Run: `cargo bench -p tollgate --bench exchange`. Starts a dev issuer and the server on
//! loopback (rate limits off, the default SQLite store), sets up one tenant with one `rules`
//! identity, and mints RS256 subject tokens for 64 pods. Then, one after another:
//!
//! 1. the crypto ceiling: on as many threads as the machine has cores, verify a subject token
//!    (RS256) and sign an issued token (ES256, the server's default), nothing else;
//! 2. the HTTP floor: the load generator (this binary again, as a separate process) in closed
//!    loop on `GET /healthz`, the cheapest answer the server gives;
//! 3. peak: the load generator in closed loop on exchanges;
//! 4. 80% of peak: the load generator in open loop at 0.8 x the peak rate;
//! 5. 50% of peak: the same at 0.5 x.
//!
//! For the open-loop phases it also prints the stalls: how many answers took over 5, 10, 20
//! and 50 ms at the load generator, next to how many exchanges spent that long in each phase
//! inside the server (the `tollgate_exchange_phase_seconds` histogram, read from `/metrics`
//! before and after): a stall the server's phases do not show is outside the exchange (the
//! connection's queue, the scheduler, the load generator itself).
//!
//! Each phase also reports the CPU it cost per request (server and generator, from
//! `/proc/PID/stat`). An exchange does at least the HTTP floor's work and the ceiling's work,
//! so their CPU per request added up bounds the exchange rate the machine can reach at all;
//! the bench prints that bound next to the target.
//!
//! Knobs: `EXCHANGE_SECONDS` (measured seconds per phase, default 8), `EXCHANGE_CONNECTIONS`
//! (closed-loop connections, default 32).

mod support;

use jsonwebtoken::{DecodingKey, Validation};
use serde_json::{Value, json};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use support::loadgen::{self, Endpoint, Outcome, Plan};
use support::processes::{Issuer, Server, TempDir, cpu_seconds};
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

    let closed_loop = |endpoint| Plan {
        addr: server.addr.clone(),
        endpoint,
        bodies: bodies.clone(),
        connections,
        warmup: Duration::from_secs(2),
        duration: seconds,
        rate: None,
    };
    println!("  HTTP floor: closed loop on GET /healthz, {connections} connections ...");
    let floor = measured(&server, &closed_loop(Endpoint::Health), scratch.path());
    println!("  peak: closed loop, {connections} connections ...");
    let peak = measured(&server, &closed_loop(Endpoint::Exchange), scratch.path());
    let open_loop = |share: f64| {
        let rate = share * peak.outcome.per_second();
        println!(
            "  {:.0}% of peak: open loop at {rate:.0}/s ...",
            share * 100.0
        );
        let before = phase_histogram(&runtime, &http, &server.url);
        let measured = measured(
            &server,
            &Plan {
                connections: 128,
                rate: Some(rate),
                ..closed_loop(Endpoint::Exchange)
            },
            scratch.path(),
        );
        let after = phase_histogram(&runtime, &http, &server.url);
        (measured, stalls(&before, &after))
    };
    let (steady, steady_stalls) = open_loop(0.8);
    let (half, half_stalls) = open_loop(0.5);
    let (rss, peak_rss) = server.memory();

    println!();
    let row = |name: &str, per_second: f64, cpu: f64, outcome: Option<&Outcome>| {
        let p = |q: f64| outcome.map_or("-".to_owned(), |o| ms(o.latencies.percentile(q)));
        vec![
            name.to_owned(),
            format!("{per_second:.0}"),
            format!("{cpu:.0} µs"),
            p(50.0),
            p(99.0),
            p(99.9),
        ]
    };
    let phase = |name: &str, m: &Measured| {
        row(
            name,
            m.outcome.per_second(),
            m.cpu_per_request(),
            Some(&m.outcome),
        )
    };
    print_table(
        &["phase", "per second", "CPU/request", "p50", "p99", "p99.9"],
        &[
            row(
                "crypto ceiling (verify RS256 + sign ES256)",
                ceiling.per_second,
                ceiling.cpu_per_op,
                None,
            ),
            phase("HTTP floor: GET /healthz (closed loop)", &floor),
            phase("exchanges, peak (closed loop)", &peak),
            phase("exchanges at 80% of peak (open loop)", &steady),
            phase("exchanges at 50% of peak (open loop)", &half),
        ],
    );
    println!(
        "  (CPU/request: the server's and the load generator's CPU time over the run, per answer)"
    );
    let per_exchange = peak.cpu_per_request();
    println!(
        "\n  CPU per exchange at peak: {per_exchange:.0} µs = server {:.0} µs + load generator {:.0} µs",
        peak.server_cpu_per_request(),
        per_exchange - peak.server_cpu_per_request()
    );
    let least = floor.cpu_per_request() + ceiling.cpu_per_op;
    let bound = cores as f64 / (least / 1e6);
    println!(
        "  an exchange costs at least the HTTP floor + the crypto: {:.0} + {:.0} = {least:.0} µs of CPU,\n  \
         so {cores} cores answer at most {bound:.0} exchanges/s = {:.2}x of the ceiling, whatever else is cut",
        floor.cpu_per_request(),
        ceiling.cpu_per_op,
        bound / ceiling.per_second
    );
    let allowed = cores as f64 * 1e6 / (0.45 * ceiling.per_second);
    let own_work = per_exchange - least;
    println!(
        "  at the target (0.45x) an exchange may cost {allowed:.0} µs of CPU: {:.0} µs beyond the HTTP\n  \
         floor and the crypto, for the policy decision, the audit record and the rest; it now takes {own_work:.0} µs",
        allowed - least,
    );
    for (name, measured, stalls) in [
        ("80%", &steady, &steady_stalls),
        ("50%", &half, &half_stalls),
    ] {
        print_stalls(name, &measured.outcome, stalls);
    }
    println!();
    let ratio = peak.outcome.per_second() / ceiling.per_second;
    let p999 = steady.outcome.latencies.percentile(99.9);
    let p99_half = half.outcome.latencies.percentile(99.0);
    print_targets(&[
        target(
            "peak / crypto ceiling",
            format!("{ratio:.2}x"),
            ">= 0.45x",
            ratio >= 0.45,
        ),
        target(
            "Tollgate's own work per exchange",
            format!("{own_work:.0} µs"),
            "<= 40 µs",
            own_work <= 40.0,
        ),
        target(
            "p99.9 at 80% of peak",
            ms(p999),
            "<= 10 ms",
            p999 <= 10_000.0,
        ),
        target(
            "p99 at 50% of peak",
            ms(p99_half),
            "<= 2 ms",
            p99_half <= 2000.0,
        ),
    ]);
    println!(
        "\n  server memory: {:.0} MiB resident, {:.0} MiB peak",
        rss as f64 / 1048576.0,
        peak_rss as f64 / 1048576.0
    );
}

/// The stall lengths the table shows, in milliseconds (bucket bounds of the server's histogram).
const STALLS_MS: [u32; 4] = [5, 10, 20, 50];

/// The phases of `tollgate_exchange_phase_seconds` (`handler`: the endpoint's work around the
/// exchange, `total`: the exchange), in the table's order, then the store's
/// WAL checkpoints (`tollgate_wal_checkpoint_seconds`), which are no exchange's phase but what
/// the audit log's commits wait for while one syncs.
const PHASES: [&str; 7] = [
    "handler",
    "total",
    "verify",
    "decide",
    "sign",
    "audit",
    "checkpoint",
];

/// `tollgate_exchange_phase_seconds_bucket` as `(phase, le) -> count`, from `/metrics`, and
/// `tollgate_wal_checkpoint_seconds_bucket` as phase `checkpoint`.
fn phase_histogram(
    runtime: &tokio::runtime::Runtime,
    http: &reqwest::Client,
    server: &str,
) -> std::collections::HashMap<(String, String), u64> {
    let text = runtime.block_on(async {
        let response = http
            .get(format!("{server}/metrics"))
            .send()
            .await
            .expect("GET /metrics");
        response.text().await.expect("metrics text")
    });
    text.lines()
        .filter_map(|line| {
            let (phase, rest) = match line.strip_prefix("tollgate_wal_checkpoint_seconds_bucket{") {
                Some(rest) => ("checkpoint", rest),
                None => line
                    .strip_prefix("tollgate_exchange_phase_seconds_bucket{phase=\"")?
                    .split_once("\",")?,
            };
            let (le, count) = rest.strip_prefix("le=\"")?.split_once("\"} ")?;
            Some(((phase.to_owned(), le.to_owned()), count.parse().ok()?))
        })
        .collect()
}

/// Per phase, the exchanges of the run over each of [`STALLS_MS`].
fn stalls(
    before: &std::collections::HashMap<(String, String), u64>,
    after: &std::collections::HashMap<(String, String), u64>,
) -> Vec<[u64; STALLS_MS.len()]> {
    let count = |phase: &str, le: &str| {
        let key = (phase.to_owned(), le.to_owned());
        after.get(&key).copied().unwrap_or(0) - before.get(&key).copied().unwrap_or(0)
    };
    PHASES
        .iter()
        .map(|phase| {
            let all = count(phase, "+Inf");
            STALLS_MS.map(|ms| all - count(phase, &(f64::from(ms) / 1000.0).to_string()))
        })
        .collect()
}

fn print_stalls(name: &str, outcome: &Outcome, stalls: &[[u64; STALLS_MS.len()]]) {
    println!(
        "\n  stalls at {name} of peak: answers over each length at the load generator, exchanges that\n  \
         long in each phase inside the server, and the store's WAL checkpoints that long (the\n  \
         server's counts include the 2 s warm-up)"
    );
    let header: Vec<String> = ["over", "generator"]
        .iter()
        .chain(PHASES.iter())
        .map(|s| (*s).to_owned())
        .collect();
    let rows: Vec<Vec<String>> = STALLS_MS
        .iter()
        .enumerate()
        .map(|(i, ms)| {
            let mut row = vec![
                format!("{ms} ms"),
                outcome.latencies.over(ms * 1000).to_string(),
            ];
            row.extend(stalls.iter().map(|phase| phase[i].to_string()));
            row
        })
        .collect();
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    print_table(&header, &rows);
}

async fn check_allowed(http: &reqwest::Client, server: &str, bodies: &[String]) {
    for body in bodies {
        let (status, text) = admin::exchange(http, server, body).await;
        assert_eq!(status, 200, "a bench exchange is refused: {text}");
    }
}

/// A load generator's run and the server's CPU time over it.
struct Measured {
    outcome: Outcome,
    server_cpu: f64,
}

impl Measured {
    /// Server and generator CPU per answer, in microseconds.
    fn cpu_per_request(&self) -> f64 {
        (self.server_cpu + self.outcome.cpu_seconds) * 1e6 / self.outcome.answers as f64
    }

    fn server_cpu_per_request(&self) -> f64 {
        self.server_cpu * 1e6 / self.outcome.answers as f64
    }
}

fn measured(server: &Server, plan: &Plan, scratch: &std::path::Path) -> Measured {
    let before = server.cpu_seconds();
    let outcome = loadgen::run(plan, scratch);
    Measured {
        outcome,
        server_cpu: server.cpu_seconds() - before,
    }
}

/// The crypto ceiling's rate and the CPU each verification + signature took.
struct Ceiling {
    per_second: f64,
    cpu_per_op: f64,
}

/// Verifications + signatures per second on `threads` threads, with nothing else running.
fn crypto_ceiling(
    issuer: &Issuer,
    audience: &str,
    tokens: &[String],
    threads: usize,
    time: Duration,
) -> Ceiling {
    let jwk: jsonwebtoken::jwk::Jwk =
        serde_json::from_value(issuer.keys.current().public_jwk()).expect("issuer jwk");
    let decoding = DecodingKey::from_jwk(&jwk).expect("decoding key");
    let mut validation = Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_audience(&[audience]);
    validation.set_issuer(&[&issuer.url]);
    let signing =
        SigningKey::generate(Algorithm::Es256, tollgate::common::unix_now()).expect("signing key");
    let issued = issued_claims();
    let stop = AtomicBool::new(false);
    let done = AtomicU64::new(0);
    let cpu_before = cpu_seconds(std::process::id());
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
    let elapsed = started.elapsed().as_secs_f64();
    let done = done.load(Ordering::Relaxed) as f64;
    Ceiling {
        per_second: done / elapsed,
        cpu_per_op: (cpu_seconds(std::process::id()) - cpu_before) * 1e6 / done,
    }
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
