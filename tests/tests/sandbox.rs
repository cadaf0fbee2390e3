//! The sandbox against hostile policies: every misbehaviour is a denial within its limit, and
//! the next decision in the same process is served normally.

use serde_json::json;
use std::time::Duration;
use tollgate::policy::{
    Decision, ExchangeContext, Limits, LoadError, PolicyEngine, PolicyModule, build_request,
};
use tollgate_tests::fixtures;

fn request(config: serde_json::Value) -> tollgate::policy::bindings::Request {
    let claims = json!({
        "iss": "https://k8s.example", "sub": "system:serviceaccount:prod:deployer", "aud": ["tollgate"],
        "iat": 1_700_000_000, "exp": 1_700_003_600,
        "kubernetes.io": {"namespace": "prod", "serviceaccount": {"name": "deployer", "uid": "u1"}}
    });
    let exchange = ExchangeContext {
        now: 1_700_000_100,
        ..Default::default()
    };
    build_request(&claims, exchange, config.to_string()).unwrap()
}

fn load(engine: &PolicyEngine, name: &str) -> PolicyModule {
    engine
        .load(&fixtures::module(name))
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn assert_good_policy_still_works(engine: &PolicyEngine, rules: &PolicyModule) {
    let evaluation = engine.evaluate(
        rules,
        &request(json!({"namespaces": ["prod"], "grant": {"scopes": ["a"]}})),
    );
    assert!(
        evaluation.decision.is_allow(),
        "good policy after a hostile one: {:?}",
        evaluation.decision
    );
}

fn denial_code(decision: &Decision) -> &str {
    &decision
        .denial()
        .unwrap_or_else(|| panic!("expected a denial, got {decision:?}"))
        .code
}

#[test]
fn every_hostile_behaviour_is_a_denial_and_the_next_decision_is_served() {
    let limits = Limits::default();
    let engine = PolicyEngine::new(limits.clone()).unwrap();
    let rules = load(&engine, "rules");
    let hostile = load(&engine, "hostile");
    for (mode, code) in [
        ("loop", "fuel-exhausted"),
        ("grow", "memory-limit"),
        ("recurse", "stack-overflow"),
        ("panic", "policy-trap"),
        ("exit", "policy-exit"),
        ("huge-output", "output-too-large"),
        ("bad-code", "invalid-output"),
        ("bad-claim", "invalid-output"),
        ("bad-utf8", "invalid-output"),
    ] {
        let evaluation = engine.evaluate(&hostile, &request(json!({"mode": mode})));
        assert_eq!(
            denial_code(&evaluation.decision),
            code,
            "mode {mode}: {:?}",
            evaluation.decision
        );
        assert!(
            evaluation.fuel_used <= limits.fuel,
            "mode {mode} used {} fuel",
            evaluation.fuel_used
        );
        assert!(
            evaluation.elapsed < Duration::from_secs(5),
            "mode {mode} took {:?}",
            evaluation.elapsed
        );
        assert_good_policy_still_works(&engine, &rules);
    }
}

/// The same limits hold for an interpreter: the hostile JavaScript guest (SpiderMonkey, built
/// by tests/steps/sdks.sh) loops, grows its memory, floods its output and its log, and throws.
#[test]
fn an_interpreter_guest_is_held_to_the_same_limits() {
    // An interpreter burns millions of fuel units per decision: the most an identity may give.
    // Output and log caps of 1 KiB: each byte a JavaScript guest hands the host costs it about
    // 3,000 fuel, so at the default caps (64 KiB, 16 KiB) its fuel always runs out first.
    let limits = Limits {
        fuel: tollgate::policy::limits::MAX_FUEL,
        output_bytes: 1 << 10,
        log_bytes: 1 << 10,
        // A debug build compiles the 12 MiB component in tens of seconds on a busy machine.
        compile_deadline: Duration::from_secs(600),
        ..Limits::default()
    };
    let engine = PolicyEngine::new(limits.clone()).unwrap();
    let rules = load(&engine, "rules");
    let hostile = engine
        .load(&fixtures::interpreter_module("hostile-js"))
        .unwrap_or_else(|e| panic!("hostile-js: {e}"));
    let allowed = |engine: &PolicyEngine| {
        let evaluation = engine.evaluate(&hostile, &request(json!({"mode": "allow"})));
        assert!(evaluation.decision.is_allow(), "{:?}", evaluation.decision);
    };
    allowed(&engine);
    for (config, code) in [
        (json!({"mode": "loop"}), "fuel-exhausted"),
        (json!({"mode": "grow"}), "memory-limit"),
        (
            json!({"mode": "huge-output", "bits": 9}),
            "output-too-large",
        ),
        (json!({"mode": "throw"}), "policy-trap"),
        (json!({"mode": "bad-claim"}), "invalid-output"),
    ] {
        let mode = &config["mode"];
        let evaluation = engine.evaluate(&hostile, &request(config.clone()));
        assert_eq!(
            denial_code(&evaluation.decision),
            code,
            "mode {mode}: {:?} after {} fuel",
            evaluation.decision,
            evaluation.fuel_used
        );
        assert!(evaluation.fuel_used <= limits.fuel, "mode {mode}");
        assert!(
            evaluation.elapsed < Duration::from_secs(5),
            "mode {mode} took {:?}",
            evaluation.elapsed
        );
        assert_good_policy_still_works(&engine, &rules);
        allowed(&engine);
    }
    let chatty = json!({"mode": "chatty", "lines": 12});
    let evaluation = engine.evaluate(&hostile, &request(chatty));
    let logged: usize = evaluation.logs.iter().map(|l| l.message.len()).sum();
    assert!(logged <= limits.log_bytes, "logged {logged} bytes");
    assert!(evaluation.logs_truncated);
    assert!(evaluation.decision.is_allow(), "{:?}", evaluation.decision);
}

#[test]
fn table_growth_stops_at_the_cap_and_the_next_decision_is_served() {
    let limits = Limits::default();
    let engine = PolicyEngine::new(limits.clone()).unwrap();
    let rules = load(&engine, "rules");
    let path = fixtures::root().join("tests/fixtures/wat/table-grow.wat");
    let grower = engine
        .load(&wat::parse_file(&path).unwrap())
        .unwrap_or_else(|e| panic!("table-grow: {e}"));
    for _ in 0..2 {
        let evaluation = engine.evaluate(&grower, &request(json!({})));
        assert_eq!(
            denial_code(&evaluation.decision),
            "table-limit",
            "{:?}",
            evaluation.decision
        );
        assert_good_policy_still_works(&engine, &rules);
    }
}

#[test]
fn a_panic_message_reaches_the_decision_log() {
    let engine = PolicyEngine::new(Limits::default()).unwrap();
    let hostile = load(&engine, "hostile");
    let evaluation = engine.evaluate(&hostile, &request(json!({"mode": "panic"})));
    assert!(
        evaluation
            .logs
            .iter()
            .any(|l| l.stream == "stderr" && l.message.contains("panicked on purpose")),
        "{:?}",
        evaluation.logs
    );
}

#[test]
fn output_floods_are_cut_to_the_log_budget() {
    let limits = Limits {
        fuel: 10_000_000,
        ..Limits::default()
    };
    let engine = PolicyEngine::new(limits.clone()).unwrap();
    let hostile = load(&engine, "hostile");
    let evaluation = engine.evaluate(&hostile, &request(json!({"mode": "chatty"})));
    let logged: usize = evaluation.logs.iter().map(|l| l.message.len()).sum();
    assert!(logged <= limits.log_bytes, "logged {logged} bytes");
    assert!(evaluation.logs_truncated);
}

#[test]
fn the_wall_clock_backstop_stops_a_loop_that_fuel_alone_would_allow() {
    let limits = Limits {
        wall_clock: Duration::from_millis(20),
        ..Limits::default()
    };
    let engine = PolicyEngine::new(limits).unwrap();
    let hostile = load(&engine, "hostile");
    let rules = load(&engine, "rules");
    // Each iteration burns little fuel but a long host call: the maximum fuel (10M) would
    // last for seconds, the 20 ms clock must stop it first.
    let evaluation =
        engine.evaluate_with_fuel(&hostile, &request(json!({"mode": "host-loop"})), u64::MAX);
    assert_eq!(denial_code(&evaluation.decision), "timeout");
    assert!(
        evaluation.elapsed < Duration::from_secs(2),
        "{:?}",
        evaluation.elapsed
    );
    assert!(evaluation.fuel_used < 10_000_000);
    assert_good_policy_still_works(&engine, &rules);
}

#[test]
fn no_state_survives_between_decisions() {
    let engine = PolicyEngine::new(Limits::default()).unwrap();
    let hostile = load(&engine, "hostile");
    for _ in 0..3 {
        let evaluation = engine.evaluate(&hostile, &request(json!({"mode": "count"})));
        assert_eq!(denial_code(&evaluation.decision), "call-1");
    }
}

#[test]
fn an_instance_never_sees_the_memory_of_the_previous_one() {
    let engine = PolicyEngine::new(Limits::default()).unwrap();
    let hostile = load(&engine, "hostile");
    // The probe works: within one instance it finds what it planted.
    let same = engine.evaluate(&hostile, &request(json!({"mode": "plant-and-peek"})));
    assert_eq!(denial_code(&same.decision), "found", "{:?}", same.decision);
    for _ in 0..3 {
        let planted = engine.evaluate(&hostile, &request(json!({"mode": "plant"})));
        assert_eq!(denial_code(&planted.decision), "planted");
        let peek = engine.evaluate(&hostile, &request(json!({"mode": "peek"})));
        assert_eq!(denial_code(&peek.decision), "clean", "{:?}", peek.decision);
    }
}

#[test]
fn clocks_read_the_request_time() {
    let engine = PolicyEngine::new(Limits::default()).unwrap();
    let hostile = load(&engine, "hostile");
    let evaluation = engine.evaluate(&hostile, &request(json!({"mode": "clock"})));
    assert_eq!(denial_code(&evaluation.decision), "now-1700000100");
}

#[test]
fn a_module_importing_the_filesystem_is_rejected_naming_the_import() {
    let engine = PolicyEngine::new(Limits::default()).unwrap();
    let error = engine
        .load(&fixtures::module("fs-guest"))
        .err()
        .expect("rejected");
    assert!(
        matches!(error, LoadError::ForbiddenImport { .. }),
        "{error}"
    );
    assert!(error.to_string().contains("wasi:filesystem/"), "{error}");
    let rules = load(&engine, "rules");
    assert_good_policy_still_works(&engine, &rules);
}

#[test]
fn a_module_importing_sockets_is_rejected_naming_every_forbidden_import() {
    let engine = PolicyEngine::new(Limits::default()).unwrap();
    let error = engine
        .load(&fixtures::module("net-guest"))
        .err()
        .expect("rejected");
    let LoadError::ForbiddenImport { imports } = &error else {
        panic!("{error}");
    };
    assert!(
        imports.iter().any(|i| i.starts_with("wasi:sockets/tcp@")),
        "{error}"
    );
    assert!(error.to_string().contains("wasi:sockets/tcp@"), "{error}");
    assert!(error.to_string().contains("wasi:filesystem/"), "{error}");
    // A component importing only WASI HTTP (hand-written: no guest toolchain needed).
    let http =
        wat::parse_str(r#"(component (import "wasi:http/outgoing-handler@0.2.0" (instance)))"#)
            .unwrap();
    let error = engine.load(&http).err().expect("rejected");
    assert!(
        error
            .to_string()
            .contains("`wasi:http/outgoing-handler@0.2.0`"),
        "{error}"
    );
}

#[test]
fn malformed_core_and_oversized_modules_are_rejected() {
    let engine = PolicyEngine::new(Limits {
        module_bytes: 1 << 20,
        ..Limits::default()
    })
    .unwrap();
    let core = wat::parse_str("(module (func (export \"evaluate\")))").unwrap();
    assert!(matches!(engine.load(&core), Err(LoadError::CoreModule)));
    assert!(matches!(
        engine.load(b"not wasm at all"),
        Err(LoadError::Malformed(_))
    ));
    let mut truncated = fixtures::module("rules");
    truncated.truncate(truncated.len() / 2);
    assert!(matches!(
        engine.load(&truncated),
        Err(LoadError::Compile(_))
    ));
    let huge = vec![0u8; (1 << 20) + 1];
    assert!(matches!(
        engine.load(&huge),
        Err(LoadError::TooLarge { .. })
    ));
    let empty_component = wat::parse_str("(component)").unwrap();
    let error = engine.load(&empty_component).err().expect("rejected");
    assert!(matches!(error, LoadError::WrongWorld(_)), "{error}");
}

#[test]
fn compilation_has_a_deadline() {
    let engine = PolicyEngine::new(Limits {
        compile_deadline: Duration::from_millis(1),
        ..Limits::default()
    })
    .unwrap();
    let error = engine
        .load(&fixtures::module("rules"))
        .err()
        .expect("deadline");
    assert!(matches!(error, LoadError::CompileDeadline(_)), "{error}");
}

#[test]
fn abandoned_compilations_are_bounded() {
    let engine = PolicyEngine::new(Limits {
        compile_deadline: Duration::from_millis(1),
        ..Limits::default()
    })
    .unwrap();
    let bytes = fixtures::module("hostile");
    // Each load gives up after 1 ms; its compiling thread runs on and keeps its slot.
    let mut outcomes = Vec::new();
    for _ in 0..=tollgate::policy::module::MAX_COMPILATIONS {
        outcomes.push(engine.load(&bytes).err().expect("no compile in 1 ms"));
    }
    assert!(
        outcomes[..tollgate::policy::module::MAX_COMPILATIONS]
            .iter()
            .all(|e| matches!(e, LoadError::CompileDeadline(_))),
        "{outcomes:?}"
    );
    let last = outcomes.last().unwrap();
    assert!(matches!(last, LoadError::Busy), "{last}");
    assert!(last.to_string().contains("try again later"), "{last}");
    // The slots come back when the abandoned threads end.
    let started = std::time::Instant::now();
    loop {
        match engine.load(&bytes) {
            Err(LoadError::Busy) => {}
            Err(LoadError::CompileDeadline(_)) => break,
            other => panic!("{:?}", other.err()),
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "slots never freed"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn artifacts_are_cached_by_digest_across_engines() {
    let dir = std::env::temp_dir().join(format!("tollgate-artifacts-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let bytes = fixtures::module("rules");
    let first = PolicyEngine::new(Limits::default())
        .unwrap()
        .with_artifact_cache(&dir)
        .unwrap();
    let compiled = first.load(&bytes).unwrap();
    assert!(!compiled.info.cached);
    let second = PolicyEngine::new(Limits::default())
        .unwrap()
        .with_artifact_cache(&dir)
        .unwrap();
    let module = second.load(&bytes).unwrap();
    assert!(module.info.cached, "second engine recompiled");
    assert_eq!(module.info.compile_time, Duration::ZERO);
    assert_good_policy_still_works(&second, &module);
    // A corrupted artifact is discarded and the module recompiled, never trusted. Artifacts
    // are mapped, so this is corruption found at the next start: changing a file in place
    // under a live module faults it (SECURITY.md, known limits).
    drop((first, second, compiled, module));
    for entry in std::fs::read_dir(&dir).unwrap() {
        std::fs::write(entry.unwrap().path(), b"garbage").unwrap();
    }
    let third = PolicyEngine::new(Limits::default())
        .unwrap()
        .with_artifact_cache(&dir)
        .unwrap();
    let module = third.load(&bytes).unwrap();
    assert!(!module.info.cached);
    assert_good_policy_still_works(&third, &module);
    std::fs::remove_dir_all(&dir).unwrap();
}
