//! Builds the policy modules the tests load: the stock policies and the hostile fixtures.
//!
//! They are built for `wasm32-wasip2` into `target/fixtures`, a target directory of their own,
//! so building them from inside `cargo test` never waits on the lock of the running build.
//! `tests/run.sh` builds the policies into the same directory first (and runs `policy test` on
//! those builds), so a test run compiles each module once.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_owned()
}

fn target_dir() -> PathBuf {
    root().join("target/fixtures")
}

fn cargo(args: &[&str]) {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(root())
        .args(args)
        .args(["--release", "--target", "wasm32-wasip2", "--target-dir"])
        .arg(target_dir())
        .status()
        .expect("run cargo");
    assert!(status.success(), "building fixtures failed: cargo {args:?}");
}

fn build_all() {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        // `rules` is `no_std`: built on its own so no other crate's `std` features unify into it.
        cargo(&["build", "-p", "rules"]);
        for policy in rust_policies().iter().filter(|p| p.as_str() != "rules") {
            cargo(&["build", "-p", policy]);
        }
        cargo(&["build", "--manifest-path", "tests/fixtures/Cargo.toml"]);
    });
}

/// The Rust policies under `policies/` (those with a `Cargo.toml`), by package name.
pub fn rust_policies() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(root().join("policies"))
        .expect("policies/")
        .filter_map(Result::ok)
        .filter(|entry| entry.path().join("Cargo.toml").exists())
        .filter_map(|entry| entry.file_name().into_string().ok())
        .collect();
    names.sort();
    names
}

/// The path of a built module, such as `rules` or `hostile`.
pub fn module_path(name: &str) -> PathBuf {
    build_all();
    let path = target_dir()
        .join("wasm32-wasip2/release")
        .join(format!("{}.wasm", name.replace('-', "_")));
    assert!(path.exists(), "fixture `{}` was not built", path.display());
    path
}

/// The bytes of a built module.
pub fn module(name: &str) -> Vec<u8> {
    std::fs::read(module_path(name)).expect("read fixture")
}

/// The interpreter guests: `(name, language, path under target/fixtures)`, the examples of
/// sdk/python and sdk/js and the hostile JavaScript guest (`tests/fixtures/hostile-js`). They
/// are built by `tests/steps/sdks.sh` (tests/run.sh runs it before the Rust tests), not by
/// cargo: componentize-py and componentize-js come from pip and npm.
pub const INTERPRETER_MODULES: &[(&str, &str, &str)] = &[
    ("team-scopes-py", "Python", "python/team_scopes_py.wasm"),
    ("team-scopes-js", "JavaScript", "js/team_scopes_js.wasm"),
    ("hostile-js", "JavaScript", "js/hostile_js.wasm"),
];

/// The path of a built interpreter guest (`team-scopes-py`, `team-scopes-js`, `hostile-js`).
///
/// # Panics
///
/// When the module has not been built, naming the script that builds it: a missing toolchain
/// fails the test rather than skipping it.
pub fn interpreter_module_path(name: &str) -> PathBuf {
    let path = interpreter_module_location(name);
    assert!(
        path.exists(),
        "`{}` is missing: build the Python and JavaScript examples with tests/steps/sdks.sh \
         (it installs componentize-py with pip and componentize-js with npm; tests/run.sh runs it)",
        path.display()
    );
    path
}

/// Where tests/steps/sdks.sh writes an interpreter guest, built or not (the benches skip a
/// missing one where the tests fail).
pub fn interpreter_module_location(name: &str) -> PathBuf {
    let (_, _, file) = INTERPRETER_MODULES
        .iter()
        .find(|(n, _, _)| *n == name)
        .unwrap_or_else(|| panic!("no interpreter policy `{name}`"));
    target_dir().join(file)
}

/// The bytes of a built interpreter guest (see [`interpreter_module_path`]).
pub fn interpreter_module(name: &str) -> Vec<u8> {
    std::fs::read(interpreter_module_path(name)).expect("read interpreter fixture")
}
