//! Per-decision cost of the stock `rules` policy: sandboxed (fresh instance + evaluate, as the
//! server does it) next to the same rules compiled natively, in one run; then one policy in
//! each language (Rust, CEL, Python, JavaScript) next to `builtin:rules` (`languages.rs`).
//!
//! Run: `cargo bench -p tollgate --bench decision` (builds the Rust policies for wasm32-wasip2
//! itself; the Python and JavaScript guests come from tests/steps/sdks.sh). Prints p50/p99/mean
//! per decision and the verdicts against the targets. `LANGUAGES=0` leaves the languages out.

mod languages;
mod support;

// The server's allocator (host/src/main.rs): decisions allocate and free as they do there.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

use support::stats::{Interruptions, process_cpu};
use tollgate_tests::fixtures;

use serde_json::{Value, json};
use std::hint::black_box;
use std::time::{Duration, Instant};
use tollgate::policy::bindings::Request;
use tollgate::policy::prepare::Preparer;
use tollgate::policy::{ExchangeContext, Limits, PolicyEngine, build_request};

const ROUNDS: usize = 20_000;

fn claims(namespace: &str, sa: &str, pod: &str) -> Value {
    json!({
        "iss": "https://k8s.example", "sub": format!("system:serviceaccount:{namespace}:{sa}"),
        "aud": ["https://sts.example.com/acme"], "iat": 1_700_000_000, "exp": 1_700_003_600,
        "nbf": 1_700_000_000, "jti": "0c5c8f2e-4f7a-4b0e-9c55-6f1c2a6f0e11",
        "kubernetes.io": {
            "namespace": namespace,
            "serviceaccount": {"name": sa, "uid": "7f1c2a6f-0e11-4b0e-9c55-0c5c8f2e4f7a"},
            "pod": {"name": pod, "uid": "a1b2c3d4-0000-4b0e-9c55-6f1c2a6f0e11"},
            "node": {"name": "pool-a-7f9c", "uid": "n1"}
        }
    })
}

/// A realistic identity: subject, namespace, SA, audience, pod binding and a claim matcher.
fn config() -> String {
    json!({
        "subjects": ["system:serviceaccount:prod:*", "system:serviceaccount:team-*:deployer"],
        "namespaces": ["prod", "team-*"],
        "service_accounts": ["deployer", "ci-*"],
        "audiences": ["https://sts.example.com/acme"],
        "pod": {"required": true, "names": ["api-*", "worker-*"]},
        "node": {"required": false, "names": ["pool-a-*"]},
        "max_token_age_seconds": 3600,
        "claims": {"/kubernetes.io/pod/name": ["api-*", "worker-*"]},
        "grant": {"scopes": ["registry.pull", "registry.push"], "ttl_seconds": 900}
    })
    .to_string()
}

fn requests() -> Vec<Request> {
    let exchange = ExchangeContext {
        tenant: "acme".into(),
        identity: "deployer".into(),
        requested_scopes: vec!["registry.pull".into()],
        now: 1_700_000_100,
        ..Default::default()
    };
    [
        ("prod", "deployer", "api-7d9f8b6c5-x2x9z"), // allow
        ("team-a", "deployer", "worker-1"),          // allow
        ("dev", "deployer", "api-1"),                // deny: namespace
        ("prod", "ci-runner", "debug-shell"),        // deny: pod
    ]
    .iter()
    .map(|(ns, sa, pod)| build_request(&claims(ns, sa, pod), exchange.clone(), config()).unwrap())
    .collect()
}

fn to_sdk(r: &Request) -> tollgate_policy::Request {
    let k = r.token.kubernetes.as_ref().unwrap();
    let obj = |o: &tollgate::policy::bindings::ObjectRef| {
        tollgate_policy::ObjectRef::new(&o.name, &o.uid)
    };
    tollgate_policy::Request {
        token: tollgate_policy::Token {
            issuer: r.token.issuer.clone(),
            subject: r.token.subject.clone(),
            audiences: r.token.audiences.clone(),
            issued_at: r.token.issued_at,
            not_before: r.token.not_before,
            expires_at: r.token.expires_at,
            jwt_id: r.token.jwt_id.clone(),
            kubernetes: Some(tollgate_policy::KubernetesClaims {
                namespace: k.namespace.clone(),
                service_account: obj(&k.service_account),
                pod: k.pod.as_ref().map(obj),
                node: k.node.as_ref().map(obj),
                secret: None,
            }),
            claims_json: r.token.claims_json.clone(),
        },
        exchange: tollgate_policy::Exchange {
            tenant: r.exchange.tenant.clone(),
            identity: r.exchange.identity.clone(),
            requested_audiences: r.exchange.requested_audiences.clone(),
            requested_scopes: r.exchange.requested_scopes.clone(),
            client_address: r.exchange.client_address.clone(),
            now: r.exchange.now,
        },
        config: r.config.clone(),
    }
}

struct Stats {
    p50: Duration,
    p99: Duration,
    mean: Duration,
}

fn measure(f: impl FnMut(usize) -> bool) -> (Stats, usize) {
    measure_n(ROUNDS, f)
}

/// Rows timed in turns (`TURNS` of `ROUNDS / TURNS` calls each, after a warm-up), so that a
/// noisy minute of the shared machine falls on every row alike. For each row: its stats, the
/// number that allowed, and the process's CPU per call while it ran. Each turn also spins
/// 50 ms to see what the machine takes from a thread (`machine`).
fn interleaved(
    rows: &mut [&mut dyn FnMut(usize) -> bool],
    machine: &mut Interruptions,
) -> Vec<(Stats, usize, Duration)> {
    const TURNS: usize = 10;
    let per_turn = ROUNDS / TURNS;
    let mut samples = vec![Vec::with_capacity(ROUNDS); rows.len()];
    let mut allowed = vec![0; rows.len()];
    let mut cpu = vec![Duration::ZERO; rows.len()];
    for row in rows.iter_mut() {
        for i in 0..ROUNDS / 10 {
            black_box(row(i));
        }
    }
    for turn in 0..TURNS {
        machine.spin(Duration::from_millis(50));
        for (r, row) in rows.iter_mut().enumerate() {
            let cpu_start = process_cpu();
            for i in turn * per_turn..(turn + 1) * per_turn {
                let start = Instant::now();
                let allow = black_box(row(i));
                samples[r].push(start.elapsed());
                allowed[r] += allow as usize;
            }
            cpu[r] += process_cpu() - cpu_start;
        }
    }
    samples
        .into_iter()
        .zip(allowed)
        .zip(cpu)
        .map(|((s, a), c)| (stats(s), a, c / ROUNDS as u32))
        .collect()
}

/// `rounds` timed calls of `f` after a tenth as many untimed ones; the number that allowed.
fn measure_n(rounds: usize, mut f: impl FnMut(usize) -> bool) -> (Stats, usize) {
    for i in 0..rounds / 10 {
        black_box(f(i));
    }
    let mut samples = Vec::with_capacity(rounds);
    let mut allowed = 0;
    for i in 0..rounds {
        let start = Instant::now();
        let allow = black_box(f(i));
        samples.push(start.elapsed());
        allowed += allow as usize;
    }
    (stats(samples), allowed)
}

/// p50, p99 and mean of `samples`.
fn stats(mut samples: Vec<Duration>) -> Stats {
    samples.sort();
    let n = samples.len();
    Stats {
        p50: samples[n / 2],
        p99: samples[n * 99 / 100],
        mean: samples.iter().sum::<Duration>() / n as u32,
    }
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn main() {
    // `cargo bench` passes `--bench`; nothing to parse.
    // An interpreter guest burns millions of fuel per decision: its identities set `fuel` up
    // to the most an identity may, and so does this bench (the rules rows never come near).
    let limits = Limits {
        fuel: tollgate::policy::limits::MAX_FUEL,
        ..Limits::default()
    };
    let engine = PolicyEngine::new(limits).expect("engine");
    let module = engine
        .load(&fixtures::module("rules"))
        .expect("load rules")
        .with_preparer(Preparer::rules());
    // The config as the server hands it over: prepared once (`policy::prepare`); the rows with
    // the config as written show what that saves.
    let written = requests();
    let requests: Vec<Request> = written
        .iter()
        .map(|r| Request {
            config: module.config(&r.config).into_owned(),
            ..r.clone()
        })
        .collect();
    assert!(requests[0].config.starts_with("\"rules1;"), "not prepared");
    let native: Vec<_> = requests.iter().map(to_sdk).collect();

    // The two must agree before their speed means anything.
    for (wasm, native) in requests.iter().zip(&native) {
        let sandboxed = engine.evaluate(&module, wasm).decision.is_allow();
        let direct =
            tollgate_policy::evaluate_json::<rules::Rules>(&native.config, native).is_allow();
        assert_eq!(sandboxed, direct, "sandbox and native disagree");
    }
    let fuel = engine.evaluate(&module, &requests[0]).fuel_used;
    let written_fuel = engine.evaluate(&module, &written[0]).fuel_used;
    // For `perf record`: spin on one row only.
    if let Ok(row) = std::env::var("PROFILE_ROW") {
        for i in 0..500_000 {
            match row.as_str() {
                "floor" => black_box(
                    engine
                        .validate_config(&module, r#"{"subjects":["a"]}"#)
                        .is_ok(),
                ),
                "native" => {
                    let r = &native[i % native.len()];
                    black_box(
                        tollgate_policy::evaluate_json::<rules::Rules>(&r.config, r).is_allow(),
                    )
                }
                _ => black_box(
                    engine
                        .evaluate(&module, &requests[i % requests.len()])
                        .decision
                        .is_allow(),
                ),
            };
        }
        return;
    }
    // Fuel of the first request under each of these configs (`|`-separated), then exit.
    if let Ok(configs) = std::env::var("FUEL_CONFIGS") {
        for c in configs.split('|') {
            let mut v = requests[0].clone();
            v.config = c.into();
            let e = engine.evaluate(&module, &v);
            println!("{:>6} {:?} {c}", e.fuel_used, e.decision.is_allow());
        }
        return;
    }
    // The breakdown's configs are JSON, handed as written: compare them with the full config
    // as written too.
    if std::env::var("FUEL_BREAKDOWN").is_ok() {
        let mut r = written[0].clone();
        println!("fuel: evaluate full {written_fuel} as written ({fuel} prepared)");
        let mut cfg: Value = serde_json::from_str(&config()).unwrap();
        cfg.as_object_mut().unwrap().remove("claims");
        r.config = cfg.to_string();
        println!(
            "fuel: evaluate without claims {}",
            engine.evaluate(&module, &r).fuel_used
        );
        r.config = r#"{"subjects":["system:serviceaccount:prod:*"]}"#.into();
        println!(
            "fuel: evaluate subjects only {}",
            engine.evaluate(&module, &r).fuel_used
        );
        let mut small = r.clone();
        small.token.claims_json = "{}".into();
        println!(
            "fuel: evaluate subjects only, claims_json {{}} {}",
            engine.evaluate(&module, &small).fuel_used
        );
        // What each key of the identity config adds to a one-key config.
        let full: Value = serde_json::from_str(&config()).unwrap();
        for key in full.as_object().unwrap().keys() {
            let mut c = json!({"subjects": ["system:serviceaccount:prod:*"]});
            c[key] = full[key].clone();
            let mut v = r.clone();
            v.config = c.to_string();
            println!(
                "fuel: subjects + {key}: {}",
                engine.evaluate(&module, &v).fuel_used
            );
        }
        // Time of the cheap shapes: what the request's lowering costs without the rules.
        let (t, _) = measure(|_| engine.evaluate(&module, &r).decision.is_allow());
        println!("time: subjects only p50 {:.2}", us(t.p50));
        let (t, _) = measure(|_| engine.evaluate(&module, &small).decision.is_allow());
        println!("time: subjects only, claims {{}} p50 {:.2}", us(t.p50));
        let mut bare = small.clone();
        bare.token.kubernetes = None;
        bare.token.audiences.clear();
        bare.token.jwt_id = None;
        bare.exchange.requested_scopes.clear();
        let (t, _) = measure(|_| engine.evaluate(&module, &bare).decision.is_allow());
        println!(
            "time: subjects only, bare request p50 {:.2} fuel {}",
            us(t.p50),
            engine.evaluate(&module, &bare).fuel_used
        );
    }

    // `EXTRA_WASM`: another build of a policy (an A/B of a guest change), timed in the same
    // turns on the same requests.
    let extra = std::env::var("EXTRA_WASM").ok().map(|path| {
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("EXTRA_WASM {path}: {e}"));
        engine.load(&bytes).expect("load EXTRA_WASM")
    });
    let extra = extra.as_ref();
    let mut rows: Vec<&mut dyn FnMut(usize) -> bool> = Vec::new();
    let mut sandboxed = |i: usize| {
        engine
            .evaluate(&module, &requests[i % requests.len()])
            .decision
            .is_allow()
    };
    let mut natively = |i: usize| {
        let r = &native[i % native.len()];
        tollgate_policy::evaluate_json::<rules::Rules>(&r.config, r).is_allow()
    };
    // The fixed cost: a fresh instance and a call that does almost nothing.
    const TRIVIAL: &str = r#"{"subjects":["a"]}"#;
    let mut floor = |_| engine.validate_config(&module, TRIVIAL).is_ok();
    let mut as_written = |i: usize| {
        engine
            .evaluate(&module, &written[i % written.len()])
            .decision
            .is_allow()
    };
    rows.push(&mut sandboxed);
    rows.push(&mut natively);
    rows.push(&mut floor);
    rows.push(&mut as_written);
    let mut extra_eval = |i: usize| {
        extra.is_some_and(|m| {
            engine
                .evaluate(m, &requests[i % requests.len()])
                .decision
                .is_allow()
        })
    };
    let mut extra_floor = |_| extra.is_some_and(|m| engine.validate_config(m, TRIVIAL).is_ok());
    if extra.is_some() {
        rows.push(&mut extra_eval);
        rows.push(&mut extra_floor);
    }
    let mut machine = Interruptions::default();
    let mut rows = interleaved(&mut rows, &mut machine).into_iter();
    let mut next = || rows.next().expect("a row");
    let (sandbox, direct, floor, written_row) = (next(), next(), next(), next());
    let extra_rows = extra.map(|_| (next(), next()));
    assert_eq!(sandbox.1, direct.1);

    println!(
        "rules policy, {ROUNDS} decisions each (half allow, half deny), fuel per decision ~{fuel} \
         ({written_fuel} with the config as written)"
    );
    println!("(rows in 10 turns; CPU: the whole process's, every thread's, per decision)");
    println!(
        "{:<38} {:>8} {:>8} {:>8} {:>12} {:>8}",
        "", "p50 µs", "p99 µs", "mean µs", "decisions/s", "CPU µs"
    );
    for (name, (s, _, cpu)) in [
        ("sandboxed (fresh instance + eval)", &sandbox),
        ("native Rust", &direct),
        ("  floor: instance + trivial call", &floor),
        ("  sandboxed, config as written", &written_row),
    ]
    .into_iter()
    .chain(
        extra_rows
            .iter()
            .flat_map(|(eval, floor)| [("EXTRA_WASM (eval)", eval), ("  EXTRA_WASM floor", floor)]),
    ) {
        println!(
            "{name:<38} {:>8.2} {:>8.2} {:>8.2} {:>12.0} {:>8.2}",
            us(s.p50),
            us(s.p99),
            us(s.mean),
            1.0 / s.mean.as_secs_f64(),
            us(*cpu)
        );
    }
    println!(
        "config prepared: p50 {:.3}x, CPU {:.3}x of the config as written",
        us(sandbox.0.p50) / us(written_row.0.p50),
        us(sandbox.2) / us(written_row.2)
    );
    if let (Some(m), Some((eval, _))) = (extra, &extra_rows) {
        assert_eq!(eval.1, direct.1, "EXTRA_WASM answers differently");
        println!(
            "EXTRA_WASM: {} imports; p50 {:.3}x, CPU {:.3}x of the sandboxed row",
            m.info.imports.len(),
            us(eval.0.p50) / us(sandbox.0.p50),
            us(eval.2) / us(sandbox.2)
        );
    }
    let (sandbox, direct) = (&sandbox.0, &direct.0);
    let ratio = us(sandbox.p50) / us(direct.p50);
    let verdict = |ok: bool| if ok { "met" } else { "MISSED" };
    println!("ratio sandboxed/native (p50): {ratio:.2}x");
    println!(
        "target p50 <= 10 µs: {} ({:.2} µs)",
        verdict(us(sandbox.p50) <= 10.0),
        us(sandbox.p50)
    );
    println!(
        "target p99 <= 20 µs: {} ({:.2} µs)",
        verdict(us(sandbox.p99) <= 20.0),
        us(sandbox.p99)
    );
    println!("{}", machine.summary(sandbox.p50));
    println!(
        "target within 3x of native: {} ({ratio:.2}x)",
        verdict(ratio <= 3.0)
    );
    println!(
        "(the native row here leaves out building the request; the targets are judged by \
         `cargo bench -p tollgate-tests --bench engines`, where every engine builds its input)"
    );
    if std::env::var("LANGUAGES").as_deref() != Ok("0") {
        languages::run(&engine, ROUNDS, (&module, &requests));
    }
}
