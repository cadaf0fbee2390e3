//! The `tollgate policy` commands, run as a user would run them.

use super::{text, tollgate};
use tollgate_tests::fixtures;

use std::path::{Path, PathBuf};

fn temp_file(name: &str, contents: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tollgate-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    path
}

fn rules() -> String {
    fixtures::module_path("rules").display().to_string()
}

fn stock_cases() -> String {
    fixtures::root()
        .join("policies/rules/cases.yaml")
        .display()
        .to_string()
}

#[test]
fn test_passes_the_stock_cases_and_ends_with_the_summary() {
    let out = tollgate(&["policy", "test", &rules(), &stock_cases()]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    let last = stdout.lines().last().unwrap();
    let passed: usize = last
        .strip_suffix(" passed, 0 failed")
        .expect(last)
        .parse()
        .unwrap();
    assert!(passed >= 20, "{last}");
    assert!(
        stdout
            .lines()
            .filter(|l| l.starts_with("ok "))
            .all(|l| l.contains("fuel "))
    );
}

const FAILING: &str = r#"
config: { namespaces: ["prod"] }
cases:
  - name: passes
    token: { "kubernetes.io": { namespace: prod, serviceaccount: { name: a } } }
    expect: allow
  - name: wrong expectation
    token: { "kubernetes.io": { namespace: dev, serviceaccount: { name: a } } }
    expect: allow
"#;

#[test]
fn a_failing_case_fails_the_run() {
    let cases = temp_file("failing.yaml", FAILING);
    let out = tollgate(&["policy", "test", &rules(), cases.to_str().unwrap()]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("FAIL wrong expectation"), "{stdout}");
    assert!(
        stdout.contains("expected allow, got deny (namespace"),
        "{stdout}"
    );
    assert_eq!(stdout.lines().last(), Some("1 passed, 1 failed"));
}

#[test]
fn json_output_is_machine_readable() {
    let cases = temp_file("json.yaml", FAILING);
    let out = tollgate(&[
        "policy",
        "test",
        "--format",
        "json",
        &rules(),
        cases.to_str().unwrap(),
    ]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(report["passed"], 1);
    assert_eq!(report["failed"], 1);
    assert_eq!(report["results"][1]["code"], "namespace");
    assert!(report["results"][0]["fuel_used"].as_u64().unwrap() > 0);
    // Durations name their unit.
    assert!(report["results"][0]["elapsed_us"].is_u64(), "{report}");
    assert!(report["results"][0].get("micros").is_none(), "{report}");
}

#[test]
fn an_invalid_case_file_names_its_line() {
    let cases = temp_file(
        "typo.yaml",
        "cases:\n  - name: typo\n    token: {}\n    expekt: allow\n",
    );
    let out = tollgate(&["policy", "test", &rules(), cases.to_str().unwrap()]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("unknown field `expekt`") && stderr.contains("line 4"),
        "{stderr}"
    );
}

#[test]
fn a_missing_module_is_a_clear_error() {
    let cases = temp_file("nomodule.yaml", FAILING);
    let out = tollgate(&[
        "policy",
        "test",
        "/nonexistent/policy.wasm",
        cases.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("cannot read module `/nonexistent/policy.wasm`"));
    // Without a module argument or a `module:` key the error says how to give one.
    let out = tollgate(&["policy", "test", cases.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("pass MODULE.wasm or set `module:`"));
}

#[test]
fn test_refuses_a_module_that_is_not_a_valid_policy() {
    let cases = temp_file("fs.yaml", FAILING);
    let fs_guest = fixtures::module_path("fs-guest");
    let out = tollgate(&[
        "policy",
        "test",
        fs_guest.to_str().unwrap(),
        cases.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("wasi:filesystem/"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn check_reports_world_exports_imports_size_and_compile_time() {
    let out = tollgate(&["policy", "check", &rules()]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    for needle in [
        "world:    tollgate:policy/trust-policy@0.1.0",
        "exports:  evaluate, validate-config",
        // The stock policy matches globs in the guest and never logs: it imports no functions,
        // only the shared type definitions.
        "imports:\n  tollgate:policy/types@0.1.0\n",
        "size:     ",
        // From the producers section rustc writes.
        "language: Rust\n",
        "toolchain: wit-component ",
        "compile:  ",
        "digest:   sha256:",
    ] {
        assert!(stdout.contains(needle), "missing `{needle}` in\n{stdout}");
    }
}

#[test]
fn check_lists_the_host_and_wasi_imports_of_a_std_policy() {
    // A `std` policy that calls `glob_match` imports the host interface and the minimal WASI
    // set, and `check` lists them.
    let pool = fixtures::module_path("fresh-pod-pool");
    let out = tollgate(&["policy", "check", pool.to_str().unwrap()]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("tollgate:policy/host@0.1.0"), "{stdout}");
    assert!(stdout.contains("wasi:cli/stdout@0.2"), "{stdout}");
}

#[test]
fn check_rejects_bad_modules_naming_the_problem() {
    let out = tollgate(&[
        "policy",
        "check",
        fixtures::module_path("fs-guest").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("imports `wasi:filesystem/"),
        "{}",
        text(&out.stderr)
    );

    let core = temp_file("core.wasm", "");
    std::fs::write(&core, b"\0asm\x01\0\0\0").unwrap();
    let out = tollgate(&["policy", "check", core.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("core WebAssembly module, not a component"));

    let out = tollgate(&["policy", "check", "/nonexistent.wasm"]);
    assert_eq!(out.status.code(), Some(2));
    let json = tollgate(&[
        "policy",
        "check",
        "--format",
        "json",
        Path::new(&rules()).to_str().unwrap(),
    ]);
    let report: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(report["valid"], true);
    assert!(report["compile_time_us"].is_u64(), "{report}");
    assert!(report.get("compile_time").is_none(), "{report}");
}
