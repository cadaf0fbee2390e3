#!/usr/bin/env bash
# Builds a Python policy into a component: sdk/python/build.sh POLICY_DIR OUT.wasm [APP_MODULE]
#
# POLICY_DIR holds the app module (default `app`, whose `WitWorld = export(MyPolicy)`) and
# whatever it imports; the SDK (sdk/python) is added to the path. The first run creates the
# venv target/venvs/componentize-py from requirements.txt (exact versions, hashes).
#
# `--stub-wasi` replaces every WASI import with a trapping stub: without it componentize-py
# imports wasi:filesystem and wasi:sockets, which the sandbox refuses. The component then
# imports only tollgate:policy/*; Python's `print` goes nowhere (use tollgate_policy.log) and
# `random` is seeded at build time (a policy has no use for secret randomness).
set -euo pipefail
sdk="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$sdk/../.." && pwd)"
[ $# -ge 2 ] || { echo "usage: $0 POLICY_DIR OUT.wasm [APP_MODULE]" >&2; exit 2; }
policy="$(cd "$1" && pwd)"
out="$2"
app="${3:-app}"

venv="${TOLLGATE_PY_VENV:-$root/target/venvs/componentize-py}"
stamp="$venv/.requirements.sha256"
want="$(sha256sum "$sdk/requirements.txt" | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check --require-hashes \
        -r "$sdk/requirements.txt"
    echo "$want" > "$stamp"
fi

mkdir -p "$(dirname "$out")"
# Not a venv activation: componentize-py would bundle the venv's site-packages.
env -u VIRTUAL_ENV "$venv/bin/componentize-py" --quiet -d "$root/wit" -w trust-policy \
    componentize --stub-wasi -p "$policy" -p "$sdk" "$app" -o "$out"
echo "built $out ($(stat -c %s "$out") bytes)"
