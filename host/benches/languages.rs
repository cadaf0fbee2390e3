//! The decision bench's second half: one policy, `team-scopes`, in each language a tenant may
//! write it in (Rust, Python, JavaScript, CEL), each decision in a fresh instance as the server
//! runs it, next to the stock `builtin:rules`; then where an interpreter's time goes.
//!
//! The Python and JavaScript modules are built by tests/steps/sdks.sh; when they are missing
//! the rows say so and the bench goes on.

use super::{Stats, stats, us};
use serde_json::json;
use std::hint::black_box;
use std::time::{Duration, Instant};
use tollgate::policy::bindings::Request;
use tollgate::policy::registry::load_builtin_cel;
use tollgate::policy::{ExchangeContext, PolicyEngine, PolicyModule, build_request};
use tollgate_tests::fixtures;

/// The namespaces decided in turn: four allowed (one per team, one with a requested scope
/// intersected), three denied.
const NAMESPACES: &[(&str, &str)] = &[
    ("team-a-prod", ""),
    ("team-attacker", ""),
    ("team-a-infra-ops", ""),
    ("team-ab", ""),
    ("team-b-web", ""),
    ("default", ""),
    ("team-a-prod", "team-a.read"),
];

/// Decisions measured per interpreter row (each takes milliseconds); compiled rows use the
/// bench's full count.
const INTERPRETER_ROUNDS: usize = 600;

/// The top-level `config` of a cases file, as JSON text.
fn cases_config(path: &str) -> String {
    let text = std::fs::read_to_string(fixtures::root().join(path)).expect("read cases file");
    let yaml: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).expect("cases YAML");
    serde_json::to_value(&yaml["config"])
        .expect("config")
        .to_string()
}

fn requests(config: &str) -> Vec<Request> {
    NAMESPACES
        .iter()
        .map(|(namespace, scopes)| {
            let claims = json!({
                "iss": "https://k8s.example", "sub": format!("system:serviceaccount:{namespace}:app"),
                "aud": ["tollgate"], "iat": 1_700_000_000, "exp": 1_700_003_600,
                "kubernetes.io": {"namespace": namespace, "serviceaccount": {"name": "app", "uid": "u1"}}
            });
            let exchange = ExchangeContext {
                tenant: "acme".into(),
                identity: "team".into(),
                requested_scopes: scopes.split_whitespace().map(String::from).collect(),
                now: 1_700_000_100,
                ..Default::default()
            };
            build_request(&claims, exchange, config).expect("request")
        })
        .collect()
}

struct Row {
    name: &'static str,
    module: PolicyModule,
    requests: Vec<Request>,
    rounds: usize,
}

/// What a row measured.
struct Measured {
    name: &'static str,
    size: usize,
    stats: Stats,
    fuel: u64,
}

/// The rows whose module is there; a missing interpreter guest is named and skipped.
fn rows(engine: &PolicyEngine, rounds: usize) -> Vec<Row> {
    let team_scopes = cases_config("policies/team-scopes/cases.yaml");
    let cel = cases_config("policies/cel/cases.yaml");
    let mut rows = vec![
        Row {
            name: "Rust (team-scopes)",
            module: engine
                .load(&fixtures::module("team-scopes"))
                .expect("load team-scopes"),
            requests: requests(&team_scopes),
            rounds,
        },
        {
            // The config as the server hands it over: prepared once (outside the timing, like
            // building the request; the server's lookup of it is a hash of the config).
            let module = load_builtin_cel(engine).expect("load builtin:cel");
            let prepared = module.config(&cel).into_owned();
            assert!(
                prepared.starts_with("\"cel1;"),
                "the CEL config did not prepare"
            );
            Row {
                name: "CEL (builtin:cel)",
                module,
                requests: requests(&prepared),
                rounds,
            }
        },
    ];
    for (name, fixture) in [
        ("Python (componentize-py)", "team-scopes-py"),
        ("JavaScript (componentize-js)", "team-scopes-js"),
    ] {
        let path = fixtures::interpreter_module_location(fixture);
        match std::fs::read(&path) {
            Ok(bytes) => rows.push(Row {
                name,
                module: engine.load(&bytes).expect("load interpreter guest"),
                requests: requests(&team_scopes),
                rounds: INTERPRETER_ROUNDS,
            }),
            Err(_) => println!(
                "{name}: skipped, {} is missing (tests/steps/sdks.sh builds it)",
                path.display()
            ),
        }
    }
    rows
}

/// Rounds the rows take turns in: each row's decisions are spread over the whole run, so that
/// a noisy minute of a shared machine falls on every row alike.
const TURNS: usize = 20;

/// Times every row's decisions, the rows taking turns; `rounds` per row in all (after a tenth
/// as many untimed).
fn interleaved(engine: &PolicyEngine, rows: &[(&PolicyModule, &[Request], usize)]) -> Vec<Stats> {
    let mut samples: Vec<Vec<Duration>> = rows.iter().map(|r| Vec::with_capacity(r.2)).collect();
    for (module, requests, rounds) in rows {
        for i in 0..rounds / 10 {
            black_box(engine.evaluate(module, &requests[i % requests.len()]));
        }
    }
    for turn in 0..TURNS {
        for ((module, requests, rounds), samples) in rows.iter().zip(&mut samples) {
            let chunk = rounds / TURNS;
            for i in turn * chunk..(turn + 1) * chunk {
                let start = Instant::now();
                black_box(
                    engine
                        .evaluate(module, &requests[i % requests.len()])
                        .decision
                        .is_allow(),
                );
                samples.push(start.elapsed());
            }
        }
    }
    samples.into_iter().map(stats).collect()
}

/// Every language's decisions, p50/p99 next to `builtin:rules` (`rules`: its module and the
/// bench's requests, timed again here in turn with the others), and the interpreters' phases.
pub fn run(engine: &PolicyEngine, rounds: usize, rules: (&PolicyModule, &[Request])) {
    let rows = rows(engine, rounds);
    // The languages must agree before their speed means anything.
    let answers = |row: &Row| -> Vec<(bool, Vec<String>)> {
        row.requests
            .iter()
            .map(|r| {
                let e = engine.evaluate(&row.module, r);
                let scopes = e.decision.grant().map(|g| g.scopes.clone());
                (e.decision.is_allow(), scopes.unwrap_or_default())
            })
            .collect()
    };
    let expected = answers(&rows[0]);
    assert_eq!(
        expected.iter().filter(|(allow, _)| *allow).count(),
        4,
        "the corpus is four allowed, three denied"
    );
    for row in &rows[1..] {
        assert_eq!(answers(row), expected, "{} decides differently", row.name);
    }

    let mut timed: Vec<(&PolicyModule, &[Request], usize)> = vec![(rules.0, rules.1, rounds)];
    timed.extend(
        rows.iter()
            .map(|r| (&r.module, r.requests.as_slice(), r.rounds)),
    );
    let mut all = interleaved(engine, &timed).into_iter();
    let rules_stats = all.next().expect("the rules row");
    let measured: Vec<Measured> = rows
        .iter()
        .zip(all)
        .map(|(row, stats)| Measured {
            name: row.name,
            size: row.module.info.size,
            fuel: engine.evaluate(&row.module, &row.requests[0]).fuel_used,
            stats,
        })
        .collect();
    let rules = &rules_stats;

    println!();
    println!(
        "team-scopes in each language, a fresh instance per decision ({} decisions: 4 allow, 3 deny, in turn; \
         the rows take {TURNS} turns, builtin:rules among them)",
        NAMESPACES.len()
    );
    println!(
        "{:<30} {:>10} {:>10} {:>10} {:>11} {:>10}",
        "", "p50 µs", "p99 µs", "mean µs", "fuel", "module KiB"
    );
    println!(
        "{:<30} {:>10.2} {:>10.2} {:>10.2} {:>11} {:>10}",
        "builtin:rules (bench config)",
        us(rules.p50),
        us(rules.p99),
        us(rules.mean),
        "",
        ""
    );
    for m in &measured {
        println!(
            "{:<30} {:>10.2} {:>10.2} {:>10.2} {:>11} {:>10}",
            m.name,
            us(m.stats.p50),
            us(m.stats.p99),
            us(m.stats.mean),
            m.fuel,
            m.size / 1024
        );
    }

    phases(engine, &rows);
    verdicts(&measured, rules);
}

/// p50 of each phase of a decision, per row: what a fresh instance costs an interpreter.
fn phases(engine: &PolicyEngine, rows: &[Row]) {
    println!();
    println!(
        "where the time goes (p50 µs; `again` is the same call in the same instance, which no \
         decision does: the difference is the once-per-instance start-up; the fuel of both \
         calls tells the guest's extra instructions from the host's page faults)"
    );
    println!(
        "{:<30} {:>12} {:>10} {:>10} {:>10} {:>12} {:>12} {:>12}",
        "", "instantiate", "call", "teardown", "again", "first-again", "fuel", "fuel again"
    );
    for row in rows {
        let n = (row.rounds / 4).max(50);
        let mut samples: Vec<_> = (0..n)
            .map(|i| engine.phases(&row.module, &row.requests[i % row.requests.len()]))
            .collect();
        let p50 = |samples: &mut Vec<tollgate::policy::Phases>,
                   key: fn(&tollgate::policy::Phases) -> f64| {
            samples.sort_by(|a, b| key(a).total_cmp(&key(b)));
            key(&samples[samples.len() / 2])
        };
        let instantiate = p50(&mut samples, |p| us(p.instantiate));
        let call = p50(&mut samples, |p| us(p.call));
        let teardown = p50(&mut samples, |p| us(p.teardown));
        let again = p50(&mut samples, |p| p.second_call.map_or(f64::NAN, us));
        let fuel = samples[0].fuel;
        let fuel_again = samples[0]
            .second_fuel
            .map_or_else(|| "-".to_owned(), |f| f.to_string());
        println!(
            "{:<30} {instantiate:>12.2} {call:>10.2} {teardown:>10.2} {again:>10.2} {:>12.2} {fuel:>12} {fuel_again:>12}",
            row.name,
            call - again
        );
    }
}

fn verdicts(measured: &[Measured], rules: &Stats) {
    let verdict = |ok: bool| if ok { "met" } else { "MISSED" };
    let find = |prefix: &str| measured.iter().find(|m| m.name.starts_with(prefix));
    println!();
    if let Some(cel) = find("CEL") {
        let ratio = us(cel.stats.p50) / us(rules.p50);
        println!(
            "target CEL p50 within 2x of builtin:rules: {} ({ratio:.2}x: {:.2} µs against {:.2} µs)",
            verdict(ratio <= 2.0),
            us(cel.stats.p50),
            us(rules.p50)
        );
    }
    for prefix in ["Python", "JavaScript"] {
        match find(prefix) {
            Some(m) => println!(
                "target {prefix} p50 <= 1 ms: {} ({:.3} ms)",
                verdict(us(m.stats.p50) <= 1000.0),
                us(m.stats.p50) / 1000.0
            ),
            None => println!("target {prefix} p50 <= 1 ms: not measured (module missing)"),
        }
    }
}
