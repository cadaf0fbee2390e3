#!/usr/bin/env bash
# Builds a JavaScript policy into a component: sdk/js/build.sh ENTRY.js OUT.wasm [ROOT]
#
# ENTRY.js is the component's entry module: it imports `tollgate:policy/host@0.1.0`, calls the
# SDK's `useHost` and exports `evaluate` and `validateConfig` (see
# policies/team-scopes-js/src/component.js). Relative imports must stay inside ROOT (default:
# the repository root, so a policy under the repository may import sdk/js/src/index.js; a
# project elsewhere passes its own directory, with the SDK copied into it).
#
# The first run (or a changed package-lock.json) installs the pinned npm packages with
# `npm ci`. `--disable stdio http fetch-event` leaves out the WASI the sandbox refuses: with
# stdio the StarlingMonkey runtime's libc also imports wasi:filesystem; without it the
# component imports tollgate:policy/* and the inert io, clocks, random and stderr interfaces
# the host provides (the SDK sends `console` to the decision log).
set -euo pipefail
sdk="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$sdk/../.." && pwd)"
[ $# -ge 2 ] && [ $# -le 3 ] || { echo "usage: $0 ENTRY.js OUT.wasm [ROOT]" >&2; exit 2; }
entry="$(realpath "$1")"
out="$(realpath -m "$2")"
base="$(realpath "${3:-$root}")"

stamp="$sdk/node_modules/.package-lock.sha256"
want="$(sha256sum "$sdk/package-lock.json" | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    (cd "$sdk" && npm ci --no-audit --no-fund --loglevel=error)
    echo "$want" > "$stamp"
fi

mkdir -p "$(dirname "$out")"
cd "$base"
"$sdk/node_modules/.bin/componentize-js" --wit "$root/wit" --world-name trust-policy \
    --disable stdio http fetch-event -o "$out" "$(realpath --relative-to="$base" "$entry")" >/dev/null
echo "built $out ($(stat -c %s "$out") bytes)"
