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
