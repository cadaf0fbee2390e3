//! Tollgate at scale: many tenants, identities and distinct policy modules, against a server
//! with one identity, in one run.
//!
//! Run: `cargo bench -p tollgate --bench scale`. Starts a dev issuer and two `tollgate serve`
//! (SQLite, rate limits off) on loopback, then:
//!
//! 1. reference: one tenant, one identity on an uploaded copy of `rules`, on a server of its
//!    own;
//! 2. grows the other server to `SCALE_TENANTS` tenants holding `SCALE_IDENTITIES`
//!    identities and `SCALE_MODULES` distinct modules (copies of `rules` that differ in a
//!    custom section, so each is compiled and cached on its own), through the admin API;
//! 3. exchange latency in open loop at `SCALE_RATE`, `SCALE_ROUNDS` rounds of each server in
//!    turn (the reference with its one identity, the grown one with each request for another
//!    identity), so that load that comes and goes on a shared machine hits both alike;
//! 4. resident memory, restart to ready (SIGTERM, start, `/readyz` answers 200), how long a
//!    newly uploaded module takes from the start of its upload to an allowed exchange, and the
//!    rounds of step 3 again with the restarted server (which compiled nothing itself).
//!
//! Before the scaled measurements every tenant makes one exchange through an identity they do
//! not use: a tenant's first exchange fetches its issuer's keys.
//!
//! Knobs: `SCALE_TENANTS` (1000), `SCALE_IDENTITIES` (100000), `SCALE_MODULES` (1000),
//! `SCALE_RATE` (exchanges/s while measuring latency, 500), `SCALE_ROUNDS` (3) and
//! `SCALE_SECONDS` (measured seconds per round, 5).

mod support;

use std::time::{Duration, Instant};
use support::admin::{self, Tenant};
use support::knob;
use support::loadgen::{self, Endpoint, Outcome, Plan};
use support::processes::{Issuer, Server, TempDir};
use support::stats::{ms, print_table, print_targets, target};
use tollgate::policy::registry::BUILTIN_RULES_WASM;

/// Bodies the scaled phase sends (spread over all identities); each request is for another
/// identity as long as the measurement sends fewer than this.
const MAX_BODIES: usize = 20_000;
/// Admin calls in flight while the server is grown.
const ADMIN_CONCURRENCY: usize = 8;

/// `rules` with a custom section that makes copy `n` a module of its own.
fn distinct_module(n: usize) -> Vec<u8> {
    let name = b"tollgate-bench";
    let payload = format!("copy {n}");
    let mut section = vec![name.len() as u8];
    section.extend_from_slice(name);
    section.extend_from_slice(payload.as_bytes());
    let mut bytes = BUILTIN_RULES_WASM.to_vec();
    bytes.push(0); // custom section id
    let mut size = section.len();
    loop {
        let byte = (size & 0x7f) as u8;
        size >>= 7;
        bytes.push(if size == 0 { byte } else { byte | 0x80 });
        if size == 0 {
            break;
        }
    }
    bytes.extend_from_slice(&section);
    bytes
}

fn main() {
    loadgen::run_if_requested();
    let tenants = knob("SCALE_TENANTS", 1000) as usize;
    let identities = knob("SCALE_IDENTITIES", 100_000) as usize;
    let modules = (knob("SCALE_MODULES", 1000) as usize).clamp(1, tenants);
    let rate = knob("SCALE_RATE", 500) as f64;
    let seconds = Duration::from_secs(knob("SCALE_SECONDS", 5));
    let rounds = knob("SCALE_ROUNDS", 3).max(1) as usize;
    let per_tenant = identities.div_ceil(tenants);

    let scratch = TempDir::new("scale");
    let issuer = Issuer::start(&scratch.path().join("issuer"));
    let data_dir = scratch.path().join("server");
    let (server, _) = Server::start(&data_dir);
    let (reference, _) = Server::start(&scratch.path().join("reference"));
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let http = admin::client();
    println!("scale bench: {tenants} tenants, {identities} identities, {modules} distinct modules");

    // 1. One identity, on a server of its own.
    let single = runtime.block_on(async {
        let url = &reference.url;
        let tenant = admin::create_tenant(&http, url, "single", &issuer).await;
        let digest = admin::upload_policy(&http, url, &tenant, distinct_module(usize::MAX)).await;
        admin::put_identity(&http, url, &tenant, "deployer", &digest).await;
        let token = admin::subject_token(&issuer, &tenant.audience, "api-0");
        vec![admin::exchange_body(
            "tenants/single/identities/deployer",
            &token,
        )]
    });

    // 2. Grow.
    let grown = Instant::now();
    let setup: Vec<Tenant> = runtime.block_on(async {
        let names: Vec<String> = (0..tenants).map(|t| format!("t{t:04}")).collect();
        let made = for_each_concurrent(names, ADMIN_CONCURRENCY, |name| {
            let (http, url, issuer) = (&http, &server.url, &issuer);
            async move { admin::create_tenant(http, url, &name, issuer).await }
        })
        .await;
        println!(
            "  {} tenants in {:.1} s",
            made.len(),
            grown.elapsed().as_secs_f64()
        );
        made
    });
    // Policies belong to a tenant: tenant `t` uploads module `t % modules` for its identities
    // (a module uploaded again by another tenant comes from the artifact cache).
    let uploaded = Instant::now();
    let digests: Vec<String> =
        runtime.block_on(for_each_concurrent(
            (0..tenants).collect(),
            ADMIN_CONCURRENCY,
            |t| {
                let (http, url, tenant) = (&http, &server.url, &setup[t]);
                async move {
                    admin::upload_policy(http, url, tenant, distinct_module(t % modules)).await
                }
            },
        ));
    let upload_seconds = uploaded.elapsed().as_secs_f64();
    println!(
        "  {modules} distinct modules in {tenants} uploads, compiled and cached in \
         {upload_seconds:.1} s ({:.0} ms per upload)",
        upload_seconds * 1000.0 / tenants as f64
    );
    let created = Instant::now();
    let work: Vec<(usize, usize)> = (0..tenants)
        .flat_map(|t| (0..per_tenant).map(move |i| (t, i)))
        .take(identities)
        .collect();
    runtime.block_on(for_each_concurrent(work, ADMIN_CONCURRENCY, |(t, i)| {
        let (http, url, tenant) = (&http, &server.url, &setup[t]);
        let policy = &digests[t];
        async move { admin::put_identity(http, url, tenant, &format!("id{i:03}"), policy).await }
    }));
    println!(
        "  {identities} identities in {:.1} s",
        created.elapsed().as_secs_f64()
    );

    // 3. Many identities: one token per tenant, requests spread over every identity.
    let tokens: Vec<String> = setup
        .iter()
        .map(|t| admin::subject_token(&issuer, &t.audience, "api-0"))
        .collect();
    let step = identities.div_ceil(MAX_BODIES).max(1);
    let bodies: Vec<String> = (0..identities)
        .step_by(step)
        .map(|n| {
            let (t, i) = (n / per_tenant, n % per_tenant);
            admin::exchange_body(
                &format!("tenants/{}/identities/id{i:03}", setup[t].name),
                &tokens[t],
            )
        })
        .collect();
    let warm = |server: &Server| {
        let started = Instant::now();
        runtime.block_on(first_contact(
            &http,
            &server.url,
            &setup,
            &tokens,
            per_tenant,
        ));
        println!(
            "  each tenant's first exchange (fetches its issuer's keys): {:.1} s",
            started.elapsed().as_secs_f64()
        );
    };
    warm(&server);
    let interleaved = |server: &Server| {
        println!(
            "  {rounds} x {} s each at {rate:.0}/s: one identity, then {identities} identities \
             (over {} of them) ...",
            seconds.as_secs(),
            bodies.len()
        );
        let (mut single_rounds, mut scaled_rounds) = (Vec::new(), Vec::new());
        for round in 1..=rounds {
            let one = measure(&reference, &single, rate, seconds, scratch.path());
            let many = measure(server, &bodies, rate, seconds, scratch.path());
            let p = |o: &Outcome, q: f64| ms(o.latencies.percentile(q));
            println!(
                "    round {round}: one identity p50 {} p99 {}, {identities} identities p50 {} p99 {}",
                p(&one, 50.0),
                p(&one, 99.0),
                p(&many, 50.0),
                p(&many, 99.0)
            );
            single_rounds.push(one);
            scaled_rounds.push(many);
        }
        (
            Outcome::merged(&single_rounds),
            Outcome::merged(&scaled_rounds),
        )
    };
    let (single, scaled) = interleaved(&server);
    let grown_memory = server.memory();
    for (kind, bytes) in server.memory_by_kind() {
        println!("    {:>6.0} MiB  {kind}", bytes as f64 / 1048576.0);
    }

    // 4. Restart, a new module, and the scaled measurement on a server that compiled nothing.
    let addr = server.addr.clone();
    server.stop();
    let (server, restart) = Server::start_on(&data_dir, &addr);
    let live = runtime.block_on(new_module_live(&http, &server.url, &setup[0], &tokens[0]));
    warm(&server);
    println!("  after the restart:");
    let (single_again, restarted) = interleaved(&server);
    let restarted_memory = server.memory();

    println!();
    let row = |name: &str, o: &Outcome| {
        vec![
            name.to_owned(),
            format!("{:.0}", o.per_second()),
            ms(o.latencies.percentile(50.0)),
            ms(o.latencies.percentile(99.0)),
            ms(o.latencies.percentile(99.9)),
        ]
    };
    print_table(
        &["exchanges (open loop)", "per second", "p50", "p99", "p99.9"],
        &[
            row("one identity", &single),
            row(&format!("{identities} identities"), &scaled),
            row("one identity, again", &single_again),
            row(&format!("{identities} identities, restarted"), &restarted),
        ],
    );
    let ratio = |scaled: &Outcome, single: &Outcome, p: f64| {
        scaled.latencies.percentile(p) / single.latencies.percentile(p)
    };
    println!(
        "  restarted / one identity measured beside it: p50 {:.2}x, p99 {:.2}x",
        ratio(&restarted, &single_again, 50.0),
        ratio(&restarted, &single_again, 99.0)
    );
    println!();
    let p50_ratio = ratio(&scaled, &single, 50.0);
    let p99_ratio = ratio(&scaled, &single, 99.0);
    let seconds = |d: Duration| format!("{:.3} s", d.as_secs_f64());
    print_targets(&[
        target(
            "p50 latency, scaled / single",
            format!("{p50_ratio:.2}x"),
            "<= 1.20x",
            p50_ratio <= 1.2,
        ),
        target(
            "p99 latency, scaled / single",
            format!("{p99_ratio:.2}x"),
            "<= 1.20x",
            p99_ratio <= 1.2,
        ),
        memory_row("resident memory, grown (peak)", grown_memory),
        memory_row("resident memory, restarted (peak)", restarted_memory),
        target(
            "restart to ready",
            seconds(restart),
            "< 2 s",
            restart < Duration::from_secs(2),
        ),
        target(
            "new module: upload to allowed exchange",
            seconds(live),
            "< 1 s",
            live < Duration::from_secs(1),
        ),
    ]);
}

/// `VmRSS (VmHWM)` against the 1 GiB target, judged on the peak.
fn memory_row(name: &str, (rss, peak): (u64, u64)) -> Vec<String> {
    let mib = |b: u64| b as f64 / 1048576.0;
    target(
        name,
        format!("{:.0} MiB ({:.0} MiB)", mib(rss), mib(peak)),
        "< 1024 MiB",
        mib(peak) < 1024.0,
    )
}

fn measure(
    server: &Server,
    bodies: &[String],
    rate: f64,
    seconds: Duration,
    scratch: &std::path::Path,
) -> Outcome {
    loadgen::run(
        &Plan {
            addr: server.addr.clone(),
            endpoint: Endpoint::Exchange,
            bodies: bodies.to_vec(),
            connections: 64,
            warmup: Duration::from_secs(1),
            duration: seconds,
            rate: Some(rate),
        },
        scratch,
    )
}

/// One exchange per tenant, through an identity the measurement does not use: a tenant's first
/// exchange fetches its issuer's keys (discovery, then the key set), once per tenant, as the
/// single-identity case did in its warm-up.
async fn first_contact(
    http: &reqwest::Client,
    server: &str,
    setup: &[Tenant],
    tokens: &[String],
    per_tenant: usize,
) {
    let id = 1 % per_tenant;
    for_each_concurrent(
        (0..setup.len()).collect(),
        ADMIN_CONCURRENCY,
        |t| async move {
            let name = format!("tenants/{}/identities/id{id:03}", setup[t].name);
            let body = admin::exchange_body(&name, &tokens[t]);
            let (status, text) = admin::exchange(http, server, &body).await;
            assert_eq!(status, 200, "first exchange for {name}: {text}");
        },
    )
    .await;
}

/// From the start of a new module's upload to the first allowed exchange through it.
async fn new_module_live(
    http: &reqwest::Client,
    server: &str,
    tenant: &Tenant,
    token: &str,
) -> Duration {
    let started = Instant::now();
    let digest = admin::upload_policy(http, server, tenant, distinct_module(usize::MAX - 1)).await;
    admin::put_identity(http, server, tenant, "fresh", &digest).await;
    let body = admin::exchange_body(&format!("tenants/{}/identities/fresh", tenant.name), token);
    loop {
        let (status, text) = admin::exchange(http, server, &body).await;
        if status == 200 {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the new module never answered: {text}"
        );
    }
}

/// `f` over `items` with at most `limit` in flight, results in order, progress every 10,000.
async fn for_each_concurrent<T, R, F, Fut>(items: Vec<T>, limit: usize, f: F) -> Vec<R>
where
    F: Fn(T) -> Fut,
    Fut: std::future::Future<Output = R>,
{
    use futures::StreamExt;
    let total = items.len();
    let mut done = 0;
    futures::stream::iter(items)
        .map(f)
        .buffered(limit)
        .inspect(|_| {
            done += 1;
            if done % 10_000 == 0 {
                println!("    {done}/{total}");
            }
        })
        .collect()
        .await
}
