#!/usr/bin/env bash
# The Python and JavaScript SDKs on a fresh machine: installs the pinned toolchains
# (componentize-py with pip into target/venvs/, componentize-js and jco with `npm ci`), runs
# each SDK's and example's unit tests (pytest, node --test), builds the examples into
# target/fixtures/{python,js}/ (where tests/src/fixtures.rs finds them) and runs the policy
# harness over the Rust team-scopes' own cases.yaml, which each example links to. Also builds
# the hostile JavaScript guest of the sandbox tests (tests/fixtures/hostile-js).
#
# Needs the tollgate binary: $TOLLGATE, else $CARGO_TARGET_DIR/debug/tollgate, else
# target/debug/tollgate (tests/run.sh builds it first).
set -euo pipefail
cd "$(dirname "$0")/../.."
tollgate="${TOLLGATE:-${CARGO_TARGET_DIR:-target}/debug/tollgate}"
# An interpreter burns 3 to 5 million fuel per decision (Rust policies: thousands); an
# identity on such a policy sets `fuel`, and the harness is given the most an identity may.
fuel=10000000

echo "-- Python: componentize-py, pytest"
sdk/python/build.sh policies/team-scopes-py target/fixtures/python/team_scopes_py.wasm
PYTHONDONTWRITEBYTECODE=1 target/venvs/componentize-py/bin/python -m pytest -q -p no:cacheprovider \
    sdk/python/tests policies/team-scopes-py/tests
"$tollgate" policy test --fuel "$fuel" target/fixtures/python/team_scopes_py.wasm \
    policies/team-scopes-py/tests/cases.yaml

echo "-- JavaScript: componentize-js, node --test"
sdk/js/build.sh policies/team-scopes-js/src/component.js target/fixtures/js/team_scopes_js.wasm
sdk/js/build.sh tests/fixtures/hostile-js/component.js target/fixtures/js/hostile_js.wasm
node --test sdk/js/test/ policies/team-scopes-js/test/
"$tollgate" policy test --fuel "$fuel" target/fixtures/js/team_scopes_js.wasm \
    policies/team-scopes-js/test/cases.yaml

echo "-- tollgate policy new: a project in each language builds and passes its own cases"
new="$(mktemp -d)"
trap 'rm -rf "$new"' EXIT
tollgate="$(realpath "$tollgate")"
for lang in rust python js; do
    (cd "$new" && "$tollgate" policy new --lang "$lang" "new-$lang" --sdk "$OLDPWD" \
        && TOLLGATE="$tollgate" TOLLGATE_PY_VENV="$OLDPWD/target/venvs/componentize-py" \
            "./new-$lang/build.sh")
done
