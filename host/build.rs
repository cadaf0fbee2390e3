//! Builds the stock policies for `wasm32-wasip2` and embeds them as `builtin:rules` and
//! `builtin:cel`, so `tollgate serve` has them ready without any file next to the binary.
//!
//! Each policy is built by a nested cargo in a target directory of its own (no lock shared with
//! the outer build), with the outer build's compiler wrappers and flags removed; one cargo per
//! policy, because `rules` is `no_std` and building it with a `std` crate would unify `std`
//! features into it.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("manifest dir"));
    let root = manifest.parent().expect("workspace root").to_owned();
    for watched in [
        "policies/rules/src",
        "policies/rules/Cargo.toml",
        "policies/rules/build.rs",
        "policies/cel/src",
        "policies/cel/Cargo.toml",
        "policy-guest/src",
        "policy-guest/Cargo.toml",
        "wit",
    ] {
        println!("cargo:rerun-if-changed={}", root.join(watched).display());
    }
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("out dir"));
    let target_dir = out.join("policies");
    for (package, variable) in [
        ("rules", "TOLLGATE_BUILTIN_RULES"),
        ("cel", "TOLLGATE_BUILTIN_CEL"),
    ] {
        build(&root, &target_dir, package);
        let wasm = target_dir.join(format!("wasm32-wasip2/release/{package}.wasm"));
        println!("cargo:rustc-env={variable}={}", wasm.display());
    }
}

fn build(root: &std::path::Path, target_dir: &std::path::Path, package: &str) {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .current_dir(root)
        .args([
            "build",
            "--release",
            "--target",
            "wasm32-wasip2",
            "-p",
            package,
            "--target-dir",
        ])
        .arg(target_dir);
    for var in [
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTFLAGS",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_BUILD_TARGET",
        "CARGO_TARGET_DIR",
        "CARGO_MAKEFLAGS",
        "MAKEFLAGS",
        "MFLAGS",
    ] {
        command.env_remove(var);
    }
    let status = command.status().expect("run cargo to build a stock policy");
    assert!(
        status.success(),
        "building the stock `{package}` policy failed; is the target installed? \
         run `rustup target add wasm32-wasip2`"
    );
}
