#!/usr/bin/env bash
# Runs every fuzz target for SECONDS each (default 60), starting from the committed seeds.
# Needs cargo-fuzz (`cargo install cargo-fuzz --locked`). Uses the repository's pinned toolchain
# with RUSTC_BOOTSTRAP=1 for cargo-fuzz's `-Z` flags: the host's build script compiles the stock
# `rules` policy for wasm32-wasip2 with the same toolchain, which a nightly rarely has installed.
# Builds into $FUZZ_TARGET_DIR (default fuzz/target), never into a shared $CARGO_TARGET_DIR: fuzz
# builds use other flags and would invalidate it.
# Usage: fuzz/run.sh [SECONDS] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(token_parser key_set request_builder)
fi
target_dir="${FUZZ_TARGET_DIR:-fuzz/target}"
for target in "${targets[@]}"; do
    # libFuzzer writes new inputs to the first directory: corpus/ (ignored by git), not seeds/.
    mkdir -p "fuzz/corpus/$target"
    RUSTC_BOOTSTRAP=1 cargo fuzz run --target-dir "$target_dir" "$target" "fuzz/corpus/$target" "fuzz/seeds/$target" -- \
        -dict=fuzz/token.dict -max_total_time="$seconds" -max_len=20000 -timeout=10
done
