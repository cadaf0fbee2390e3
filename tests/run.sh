#!/usr/bin/env bash
# Runs every test on a fresh machine. Installs what it needs (the wasm32-wasip2 target,
# PostgreSQL from Debian, pinned PyPI packages in venvs under target/), builds the policies, runs
# the policy harness over every policies/*/cases.yaml, validates deploy/ offline, then the Rust
# tests, on SQLite and on a PostgreSQL server of the run's own (stopped at the end).
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

# A one-shot run (CI) gains nothing from incremental caches but their gigabytes of disk.
if [ -n "${CI:-}" ]; then export CARGO_INCREMENTAL=0; fi

step "toolchain and wasm32-wasip2 target"
rustup show active-toolchain >/dev/null 2>&1 || rustup toolchain install
rustup target add wasm32-wasip2

step "format and lints"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings

step "policies for wasm32-wasip2"
# One build per policy: `rules` is `no_std`, and building it together with `std` policies would
# unify `serde`'s `std` feature into it. Built into target/fixtures, where the tests' fixture
# builder (tests/src/fixtures.rs) finds them, so each module is compiled once per run.
fixtures=target/fixtures/wasm32-wasip2/release
for dir in policies/*/; do
    [ -f "$dir/Cargo.toml" ] || continue
    policy="$(basename "$dir")"
    cargo clippy --release --locked --target wasm32-wasip2 -p "$policy" -- -D warnings
    cargo build --release --locked --target wasm32-wasip2 --target-dir target/fixtures -p "$policy"
done

step "build the tests (and the tollgate binary they use)"
# `cargo build -p tollgate` alone would resolve features without the workspace's dev-dependencies
# and build wasmtime and the server a second time; the tests' build also leaves target/debug/tollgate.
cargo test --workspace --locked --no-run

step "policy harness over policies/*/cases.yaml"
for cases in policies/*/cases.yaml; do
    policy="$(basename "$(dirname "$cases")")"
    ./target/debug/tollgate policy test "$fixtures/${policy//-/_}.wasm" "$cases"
    # A built-in's cases also run against the one this binary carries, as the server runs it
    # (handed its configs prepared, the module above parsing them itself).
    if grep -q '^module: builtin:' "$cases"; then
        ./target/debug/tollgate policy test "$cases"
    elif [ "$policy" = rules ]; then
        ./target/debug/tollgate policy test builtin:rules "$cases"
    fi
done

step "deploy manifests (offline)"
bash tests/steps/deploy.sh

step "Python and JavaScript SDKs: pinned toolchains, unit tests, examples through the harness"
tests/steps/sdks.sh

step "PostgreSQL of this run's own (installed from Debian when missing), on loopback"
source tests/steps/postgres.sh
trap pg_stop EXIT
pg_start

step "Rust tests (unit, sandbox, CLI, end to end)"
cargo test --workspace --locked

step "PostgreSQL: every store test on the second backend, and several replicas"
cargo test --locked -p tollgate --lib store:: -- --ignored
cargo test --locked -p tollgate --test replicas -- --include-ignored --skip database_restart
# Alone: it restarts the server every other test uses.
cargo test --locked -p tollgate --test replicas database_restart -- --include-ignored
pg_stop
