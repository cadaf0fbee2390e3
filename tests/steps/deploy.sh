#!/usr/bin/env bash
# Validates every manifest under deploy/ offline, without a cluster: each kustomization is
# rendered by `kubectl kustomize` and the output is checked against the Kubernetes JSON
# schemas that the pinned kubernetes-validate ships (strict: an unknown field fails), then
# the Tollgate-specific invariants of deploy/README.md are checked, and the server's config
# file is read by `tollgate serve` itself when a built binary is at hand.
#
#   bash tests/steps/deploy.sh            (from the repository root; tests/run.sh calls it)
#
# Installs what it lacks: Debian's kubernetes-client when there is no kubectl, and a venv
# under target/venvs/deploy with deploy/requirements.txt (exact versions and hashes).
set -euo pipefail
cd "$(dirname "$0")/../.."

# The schemas of this Kubernetes release (kubernetes-validate 1.37.0 ships 1.11 to 1.37).
K8S_VERSION=1.35.0
out=target/deploy
venv=target/venvs/deploy
mkdir -p "$out"

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

# kubectl. Google Cloud SDK's `kubectl` is a dispatcher that asks the cluster in the current
# kubeconfig (or localhost:8080) for its version before it picks a real kubectl: call the
# newest real one beside it instead, so that nothing is contacted.
kubectl_bin() {
    if [ -n "${KUBECTL:-}" ]; then echo "$KUBECTL"; return; fi
    if ! command -v kubectl >/dev/null 2>&1; then
        echo "kubectl not found: installing Debian's kubernetes-client" >&2
        as_root apt-get update -qq >&2
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq kubernetes-client >&2
    fi
    local path
    path="$(readlink -f "$(command -v kubectl)")"
    case "$path" in
        */google-cloud-sdk/bin/kubectl)
            local real
            real="$(find "$(dirname "$path")" -maxdepth 1 -name 'kubectl.1.*' | sort -V | tail -n 1)"
            if [ -n "$real" ]; then echo "$real"; return; fi
            ;;
    esac
    echo "$path"
}
kubectl="$(kubectl_bin)"
"$kubectl" version --client 2>/dev/null | head -n 2 | sed 's/^/  /'

# kubernetes-validate, installed again only when deploy/requirements.txt changes.
stamp="$venv/.requirements.sha256"
want="$(sha256sum deploy/requirements.txt | cut -d' ' -f1)"
if [ ! -x "$venv/bin/kubernetes-validate" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check --no-cache-dir \
        --require-hashes --only-binary=:all: -r deploy/requirements.txt
    echo "$want" > "$stamp"
fi
echo "  kubernetes-validate $("$venv/bin/kubernetes-validate" --version), schemas of Kubernetes $K8S_VERSION"

# Every kustomization: render, then validate strictly. An empty kubeconfig, so that no
# cluster is named even by accident.
export KUBECONFIG="$out/no-cluster.kubeconfig"
: > "$KUBECONFIG"
dirs=()
while IFS= read -r file; do dirs+=("$(dirname "$file")"); done \
    < <(find deploy -name kustomization.yaml | sort)
[ "${#dirs[@]}" -gt 0 ] || { echo "no kustomization under deploy/" >&2; exit 1; }
for dir in "${dirs[@]}"; do
    rendered="$out/$(echo "${dir#deploy/}" | tr / -).yaml"
    "$kubectl" kustomize "$dir" > "$rendered"
    [ -s "$rendered" ] || { echo "$dir rendered nothing" >&2; exit 1; }
    "$venv/bin/kubernetes-validate" --strict --kubernetes-version "$K8S_VERSION" --quiet "$rendered"
    echo "  $dir: $(grep -c '^kind:' "$rendered") resources valid ($rendered)"
done

# What the schemas cannot say: the deployment's invariants (deploy/README.md).
"$venv/bin/python" - "$out/base.yaml" "$out/examples.yaml" <<'PY'
import sys, yaml
base = list(yaml.safe_load_all(open(sys.argv[1])))
examples = list(yaml.safe_load_all(open(sys.argv[2])))
def one(docs, kind):
    found = [d for d in docs if d and d["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]
deployment = one(base, "Deployment")
config = yaml.safe_load(one(base, "ConfigMap")["data"]["tollgate.yaml"])
spec = deployment["spec"]["template"]["spec"]
(server,) = spec["containers"]
env = {e["name"]: e for e in server.get("env", [])}
problems = []
def check(ok, what):
    if not ok:
        problems.append(what)
check(deployment["spec"]["replicas"] >= 2, "two or more replicas")
check(config.get("listen") == "0.0.0.0:8080", "the config file listens on 0.0.0.0:8080")
check(server["ports"][0]["containerPort"] == 8080, "the container port is 8080")
check(one(base, "Service")["spec"]["ports"][0]["port"] == 8080, "the Service port is 8080")
check(server["readinessProbe"]["httpGet"]["path"] == "/readyz", "readiness on /readyz")
check(server["livenessProbe"]["httpGet"]["path"] == "/healthz", "liveness on /healthz")
check("value" in env.get("TOLLGATE_PUBLIC_URL", {}), "TOLLGATE_PUBLIC_URL, one value for all")
for name in ("TOLLGATE_DATABASE", "TOLLGATE_OPERATOR_KEY"):
    check("secretKeyRef" in env.get(name, {}).get("valueFrom", {}), f"{name} from a Secret")
check(not any(k in config for k in ("database", "operator_key")), "no secret in the ConfigMap")
security = server["securityContext"]
check(security.get("readOnlyRootFilesystem") is True, "a read-only root filesystem")
check(security.get("capabilities", {}).get("drop") == ["ALL"], "all capabilities dropped")
check(spec["securityContext"].get("runAsNonRoot") is True, "not root")
check(bool(spec.get("topologySpreadConstraints")), "replicas spread over nodes")
one(base, "PodDisruptionBudget")
public = env["TOLLGATE_PUBLIC_URL"]["value"].rstrip("/")
shapes = {"/sts/exchange": 0, "/identity/token": 0, "/api/v1/auth/kubernetes-auth/login": 0,
          "/oauth2/token": 0}
for doc in examples:
    pod = doc["spec"]["template"]["spec"] if doc["kind"] == "Job" else doc.get("spec")
    if doc["kind"] not in ("Pod", "Job"):
        continue
    projected = [s["serviceAccountToken"] for v in pod["volumes"] if "projected" in v
                 for s in v["projected"]["sources"] if "serviceAccountToken" in s]
    name = doc["metadata"]["name"]
    check(len(projected) == 1, f"{name}: one projected ServiceAccount token")
    for token in projected:
        check(token["audience"].startswith(public + "/tenants/"),
              f"{name}: the token's audience is a tenant audience of {public}")
        check(600 <= token["expirationSeconds"] <= 172800, f"{name}: expirationSeconds in range")
    script = " ".join(" ".join(c.get("command", []) + c.get("args", [])) for c in pod["containers"])
    for path in shapes:
        shapes[path] += path in script
for path, count in shapes.items():
    check(count >= 1, f"an example calls {path}")
if problems:
    sys.exit("deploy manifests: missing invariants:\n  " + "\n  ".join(problems))
print(f"  invariants hold: {deployment['spec']['replicas']} replicas, {len(examples)} example resources")
PY

# The ConfigMap's file, read by `tollgate serve` itself: an unknown key or a bad value stops
# the server before it listens. Flags win over the file, so it listens on loopback here, with a
# throwaway SQLite database; it is stopped once it says it is listening.
bin="${TOLLGATE_BIN:-target/debug/tollgate}"
if [ -x "$bin" ]; then
    scratch="$(mktemp -d)"
    : > "$scratch/stderr"  # before the server opens it, for the first look below
    # shellcheck disable=SC2046
    env $(env | sed -n 's/^\(TOLLGATE_[A-Z_]*\)=.*/-u \1/p') "$bin" serve \
        --config deploy/base/tollgate.yaml --listen 127.0.0.1:0 --data-dir "$scratch" \
        --database "sqlite://$scratch/tollgate.db" --operator-key deploy-check \
        2>> "$scratch/stderr" &
    pid=$!
    for _ in $(seq 100); do
        grep -q 'tollgate listening' "$scratch/stderr" && break
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    listening=0
    grep -q 'tollgate listening' "$scratch/stderr" && listening=1
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    if [ "$listening" -ne 1 ]; then
        echo "tollgate serve did not start with deploy/base/tollgate.yaml:" >&2
        cat "$scratch/stderr" >&2
        rm -rf "$scratch"
        exit 1
    fi
    rm -rf "$scratch"
    echo "  deploy/base/tollgate.yaml: accepted by $bin serve"
else
    echo "  deploy/base/tollgate.yaml: not read ($bin is not built)"
fi
