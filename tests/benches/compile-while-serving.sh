#!/usr/bin/env bash
# Exchange latency (builtin:rules, sequential curl on 127.0.0.1) idle, then while an interpreter
# guest (default: the Python team-scopes, built by tests/steps/sdks.sh) compiles at upload.
# Ports 18080/18081 on loopback; the server and dev issuer are stopped at the end. See
# BENCHMARKS.md, "Compiling an interpreter guest while serving".
set -euo pipefail
cd "$(dirname "$0")/../.."
T="${TOLLGATE:-${CARGO_TARGET_DIR:-target}/debug/tollgate}"
PY="${MODULE:-target/fixtures/python/team_scopes_py.wasm}"
work="$(mktemp -d)"; PY="$(realpath "$PY")"; T="$(realpath "$T")"; cd "$work"; mkdir -p state
export XDG_STATE_HOME="$work/state" HOME="$work/state"
$T serve --listen 127.0.0.1:18080 --data-dir data --operator-key op --allow-insecure-issuers --tenant-rate 0 --identity-rate 0 --client-failure-rate 0 >serve.log 2>&1 &
SP=$!
$T dev issuer --listen 127.0.0.1:18081 >issuer.log 2>&1 &
IP=$!
trap 'kill $SP $IP; rm -rf "$work"' EXIT
sleep 3
S=http://127.0.0.1:18080
KEY=$(curl -s -X POST $S/v1/tenants -H 'Authorization: Bearer op' -H 'content-type: application/json' -d '{"name":"acme"}' | python3 -c 'import sys,json; print(json.load(sys.stdin)["api_key"])')
curl -s -X PUT $S/v1/tenants/acme/issuers/dev -H "Authorization: Bearer $KEY" -H 'content-type: application/json' -d '{"issuer_url":"http://127.0.0.1:18081"}' >/dev/null
curl -s -X PUT $S/v1/tenants/acme/identities/deployer -H "Authorization: Bearer $KEY" -H 'content-type: application/json' \
  -d '{"issuer":"dev","policy":"builtin:rules","config":{"namespaces":["prod"],"grant":{"scopes":["registry.pull"]}},"scopes":["registry.pull"],"token_audiences":["https://registry.example"]}' >/dev/null
TOKEN=$($T dev token --issuer http://127.0.0.1:18081 -n prod -s deployer --pod api-1 --audience $S/tenants/acme 2>/dev/null || $T dev token -n prod -s deployer --pod api-1 --audience $S/tenants/acme)
measure() {
  for i in $(seq 1 "$1"); do
    curl -s -o /dev/null -w '%{time_total}\n' $S/oauth2/token -d grant_type=urn:ietf:params:oauth:grant-type:token-exchange \
      -d subject_token=$TOKEN -d subject_token_type=urn:ietf:params:oauth:token-type:jwt -d audience=tenants/acme/identities/deployer
  done | sort -n | awk '{a[NR]=$1} END {printf "p50 %.2f ms  p90 %.2f ms  p99 %.2f ms  max %.2f ms  (n=%d)\n", a[int(NR*0.5)]*1000, a[int(NR*0.9)]*1000, a[int(NR*0.99)]*1000, a[NR]*1000, NR}'
}
curl -s $S/oauth2/token -d grant_type=urn:ietf:params:oauth:grant-type:token-exchange -d subject_token=$TOKEN -d subject_token_type=urn:ietf:params:oauth:token-type:jwt -d audience=tenants/acme/identities/deployer | head -c 80; echo
echo "idle:      $(measure 1000)"
( /usr/bin/time -f "upload+compile %e s" curl -s -o /dev/null -w 'upload %{http_code}\n' -X POST "$S/v1/tenants/acme/policies" -H "Authorization: Bearer $KEY" -H 'content-type: application/wasm' --data-binary @$PY ) > upload.log 2>&1 &
UP=$!
sleep 1
measure_while() {
  while kill -0 $UP 2>/dev/null; do
    curl -s -o /dev/null -w '%{time_total}\n' $S/oauth2/token -d grant_type=urn:ietf:params:oauth:grant-type:token-exchange \
      -d subject_token=$TOKEN -d subject_token_type=urn:ietf:params:oauth:token-type:jwt -d audience=tenants/acme/identities/deployer
  done | sort -n | awk '{a[NR]=$1} END {printf "p50 %.2f ms  p90 %.2f ms  p99 %.2f ms  max %.2f ms  (n=%d)\n", a[int(NR*0.5)]*1000, a[int(NR*0.9)]*1000, a[int(NR*0.99)]*1000, a[NR]*1000, NR}'
}
echo "compiling: $(measure_while)"
wait $UP; cat upload.log
