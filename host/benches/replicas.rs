//! One replica on SQLite, one on PostgreSQL and two on PostgreSQL, side by side in one run:
//! throughput, p50/p99, and CPU per exchange of the replicas and of the PostgreSQL server,
//! then the same total load (open loop) on one and on two PostgreSQL replicas.
//!
//! Run: `source tests/steps/postgres.sh && pg_start && cargo bench -p tollgate --bench
//! replicas; pg_stop` (the PostgreSQL server of `tests/run.sh`; each configuration gets a
//! database of its own). On a two-core machine two replicas cannot show throughput scaling;
//! what this shows is the cost of PostgreSQL per exchange against SQLite, how many commits
//! one exchange costs (group commit batches the audit records), and whether a second replica
//! at the same total load hurts the tail.
//!
//! Knobs: `REPLICAS_SECONDS` (measured seconds per phase, default 6), `REPLICAS_CONNECTIONS`
//! (closed-loop connections in all, default 32).

mod support;

use std::time::Duration;
use support::loadgen::{self, Endpoint, Outcome, Plan};
use support::processes::{Issuer, Server, TempDir, cpu_seconds};
use support::stats::{ms, print_table, print_targets, target};
use support::{admin, knob};
use tollgate_tests::postgres::PgDatabase;

const PODS: usize = 64;
const PUBLIC: &str = "http://tollgate.bench";

/// The CPU time of every PostgreSQL process (server and backends) now, by pid.
fn postgres_cpu() -> std::collections::HashMap<u32, f64> {
    let mut cpu = std::collections::HashMap::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        if comm.trim() == "postgres" {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            if !stat.is_empty() {
                cpu.insert(pid, cpu_seconds(pid));
            }
        }
    }
    cpu
}

/// CPU the PostgreSQL processes used between two snapshots (a backend that started in
/// between counts from zero).
fn postgres_cpu_since(before: &std::collections::HashMap<u32, f64>) -> f64 {
    postgres_cpu()
        .iter()
        .map(|(pid, now)| now - before.get(pid).copied().unwrap_or(0.0))
        .sum()
}

/// Commits of `database` so far (`pg_stat_database`, flushed by the statistics collector).
async fn commits(db: &PgDatabase) -> i64 {
    use sqlx::{Connection, Row};
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(&db.url).await.unwrap();
    let _ = sqlx::query("SELECT pg_stat_clear_snapshot()")
        .execute(&mut conn)
        .await;
    let row = sqlx::query("SELECT xact_commit FROM pg_stat_database WHERE datname = $1")
        .bind(&db.name)
        .fetch_one(&mut conn)
        .await
        .unwrap();
    row.try_get::<i64, _>(0).unwrap()
}

/// One configuration's replicas, set up with one tenant and one `rules` identity.
struct Setup {
    replicas: Vec<Server>,
    bodies: Vec<String>,
}

fn setup(
    scratch: &std::path::Path,
    issuer: &Issuer,
    name: &str,
    database: Option<&str>,
    count: usize,
) -> Setup {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut flags: Vec<&str> = Vec::new();
    if let Some(url) = database {
        flags.extend(["--database", url, "--public-url", PUBLIC]);
    }
    let replicas: Vec<Server> = (0..count)
        .map(|n| Server::start_with(&scratch.join(format!("{name}-{n}")), "127.0.0.1:0", &flags).0)
        .collect();
    let http = admin::client();
    let first = &replicas[0].url;
    let tenant = runtime.block_on(admin::create_tenant(&http, first, "bench", issuer));
    runtime.block_on(admin::put_identity(
        &http,
        first,
        &tenant,
        "deployer",
        "builtin:rules",
    ));
    let identity = format!("tenants/{}/identities/deployer", tenant.name);
    let bodies: Vec<String> = (0..PODS)
        .map(|pod| {
            let token = admin::subject_token(issuer, &tenant.audience, &format!("api-{pod}"));
            admin::exchange_body(&identity, &token)
        })
        .collect();
    // Identity changes reach every replica within a second; and every body must be allowed.
    std::thread::sleep(Duration::from_millis(1200));
    for replica in &replicas {
        for body in &bodies[..4] {
            let (status, text) = runtime.block_on(admin::exchange(&http, &replica.url, body));
            assert_eq!(status, 200, "a bench exchange is refused: {text}");
        }
    }
    Setup { replicas, bodies }
}

/// What one phase measured across the replicas.
struct Phase {
    per_second: f64,
    outcome: Outcome,
    replicas_cpu: f64,
    postgres_cpu: f64,
}

impl Phase {
    fn per_exchange(&self, cpu: f64) -> f64 {
        cpu * 1e6 / self.outcome.answers.max(1) as f64
    }
}

/// The load split evenly over the replicas (a load generator process per replica, at once).
fn run(
    setup: &Setup,
    scratch: &std::path::Path,
    connections: usize,
    rate: Option<f64>,
    seconds: Duration,
) -> Phase {
    let n = setup.replicas.len();
    let plans: Vec<Plan> = setup
        .replicas
        .iter()
        .map(|replica| Plan {
            addr: replica.addr.clone(),
            endpoint: Endpoint::Exchange,
            bodies: setup.bodies.clone(),
            connections: (connections / n).max(1),
            warmup: Duration::from_secs(2),
            duration: seconds,
            rate: rate.map(|r| r / n as f64),
        })
        .collect();
    let cpu_before: Vec<f64> = setup.replicas.iter().map(Server::cpu_seconds).collect();
    let pg_before = postgres_cpu();
    let outcomes: Vec<Outcome> = std::thread::scope(|scope| {
        let runs: Vec<_> = plans
            .iter()
            .enumerate()
            .map(|(i, plan)| {
                let dir = scratch.join(format!("load-{i}"));
                std::fs::create_dir_all(&dir).unwrap();
                scope.spawn(move || loadgen::run(plan, &dir))
            })
            .collect();
        runs.into_iter().map(|r| r.join().unwrap()).collect()
    });
    let replicas_cpu = setup
        .replicas
        .iter()
        .zip(cpu_before)
        .map(|(r, before)| r.cpu_seconds() - before)
        .sum();
    Phase {
        per_second: outcomes.iter().map(Outcome::per_second).sum(),
        outcome: Outcome::merged(&outcomes),
        replicas_cpu,
        postgres_cpu: postgres_cpu_since(&pg_before),
    }
}

fn main() {
    loadgen::run_if_requested();
    let seconds = Duration::from_secs(knob("REPLICAS_SECONDS", 6));
    let connections = knob("REPLICAS_CONNECTIONS", 32) as usize;
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let scratch = TempDir::new("replicas");
    let issuer = Issuer::start(&scratch.path().join("issuer"));
    let one_db = runtime.block_on(PgDatabase::create());
    let two_db = runtime.block_on(PgDatabase::create());

    println!("replicas bench: {connections} connections in all, {seconds:?} per phase");
    let configs = [
        (
            "1 replica, SQLite",
            setup(scratch.path(), &issuer, "sqlite", None, 1),
            None,
        ),
        (
            "1 replica, PostgreSQL",
            setup(scratch.path(), &issuer, "pg1", Some(&one_db.url), 1),
            Some(&one_db),
        ),
        (
            "2 replicas, PostgreSQL",
            setup(scratch.path(), &issuer, "pg2", Some(&two_db.url), 2),
            Some(&two_db),
        ),
    ];
    let mut rows = Vec::new();
    let mut peaks = Vec::new();
    for (name, setup, db) in &configs {
        println!("  {name}: closed loop ...");
        let commits_before = db.map(|db| runtime.block_on(commits(db)));
        let phase = run(setup, scratch.path(), connections, None, seconds);
        let commits_per = match (db, commits_before) {
            (Some(db), Some(before)) => {
                std::thread::sleep(Duration::from_millis(700));
                let after = runtime.block_on(commits(db));
                format!(
                    "{:.2}",
                    (after - before) as f64 / phase.outcome.answers.max(1) as f64
                )
            }
            _ => "-".into(),
        };
        rows.push(vec![
            name.to_string(),
            format!("{:.0}", phase.per_second),
            ms(phase.outcome.latencies.percentile(50.0)),
            ms(phase.outcome.latencies.percentile(99.0)),
            format!("{:.0} µs", phase.per_exchange(phase.replicas_cpu)),
            format!("{:.0} µs", phase.per_exchange(phase.postgres_cpu)),
            format!(
                "{:.0} µs",
                phase.per_exchange(phase.replicas_cpu + phase.postgres_cpu)
            ),
            commits_per,
        ]);
        peaks.push(phase);
    }
    // The same total load, open loop, on one and on two PostgreSQL replicas.
    let rate = 0.6 * peaks[1].per_second;
    println!("  the same total load, {rate:.0}/s open loop, on 1 and 2 PostgreSQL replicas ...");
    let single = run(&configs[1].1, scratch.path(), 128, Some(rate), seconds);
    let double = run(&configs[2].1, scratch.path(), 128, Some(rate), seconds);
    println!();
    print_table(
        &[
            "closed loop",
            "per second",
            "p50",
            "p99",
            "CPU/exchange replicas",
            "PostgreSQL",
            "total",
            "commits/exchange",
        ],
        &rows,
    );
    print_table(
        &["same load, open loop", "per second", "p50", "p99"],
        &[("1 replica", &single), ("2 replicas", &double)]
            .iter()
            .map(|(name, p)| {
                vec![
                    format!("{name}, PostgreSQL, {rate:.0}/s"),
                    format!("{:.0}", p.per_second),
                    ms(p.outcome.latencies.percentile(50.0)),
                    ms(p.outcome.latencies.percentile(99.0)),
                ]
            })
            .collect::<Vec<_>>(),
    );
    println!(
        "  (CPU/exchange: CPU time of the replicas, and of every PostgreSQL process, over the run per\n   answer; the load generators' own CPU is left out. commits/exchange from pg_stat_database)"
    );
    let sqlite_cpu = peaks[0].per_exchange(peaks[0].replicas_cpu);
    let pg_cpu = peaks[1].per_exchange(peaks[1].replicas_cpu + peaks[1].postgres_cpu);
    let ratio = pg_cpu / sqlite_cpu;
    let (p99_one, p99_two) = (
        single.outcome.latencies.percentile(99.0),
        double.outcome.latencies.percentile(99.0),
    );
    println!();
    print_targets(&[
        target(
            "CPU per exchange, PostgreSQL (replica + database) / SQLite",
            format!("{ratio:.2}x"),
            "<= 1.3x",
            ratio <= 1.3,
        ),
        target(
            "p99 at the same load, 2 replicas / 1",
            format!("{} / {}", ms(p99_two), ms(p99_one)),
            "no worse",
            p99_two <= p99_one * 1.1,
        ),
    ]);
    drop(configs);
    runtime.block_on(one_db.drop_database());
    runtime.block_on(two_db.drop_database());
}
