#!/usr/bin/env bash
# helm and kubeconform built from the Go module proxy, plus the Kubernetes and CRD (KEDA,
# prometheus-operator) schemas kubeconform validates against, all offline afterwards.
# Cached under ${SCORER_TOOLS_CACHE:-~/.cache/scorer-deploy}, keyed by version, so a clean
# clone in CI reuses a build (the first build takes minutes on 2 cores; a cached run is instant).
# Prints the cache directory on stdout.
set -euo pipefail
HELM_VERSION=v4.3.2
KUBECONFORM_VERSION=v0.8.0
K8S_VERSION=v1.34.4       # k8s.io/kubernetes: api/openapi-spec/swagger.json
KEDA_VERSION=v2.20.2      # github.com/kedacore/keda/v2: config/crd/bases (2.21 needs Go >= 1.27)
PROMOP_VERSION=v0.85.0    # github.com/prometheus-operator/prometheus-operator: example/prometheus-operator-crd
cache=${SCORER_TOOLS_CACHE:-$HOME/.cache/scorer-deploy}
here=$(cd "$(dirname "$0")" && pwd)
export PATH=/usr/local/go/bin:$PATH GOFLAGS=-mod=mod GOTOOLCHAIN=local
mkdir -p "$cache/bin"
# One build at a time: .ci/run starts this in the background while it lints, and the helm
# tests call it again; the second call waits for the first and then finds the cache.
exec 9>"$cache/.lock"
flock 9

if [ ! -x "$cache/bin/helm-$HELM_VERSION" ]; then
  echo "building helm $HELM_VERSION from the Go module proxy" >&2
  GOBIN=$cache/gobin go install "helm.sh/helm/v4/cmd/helm@$HELM_VERSION"
  mv "$cache/gobin/helm" "$cache/bin/helm-$HELM_VERSION"
fi
ln -sf "helm-$HELM_VERSION" "$cache/bin/helm"

if [ ! -x "$cache/bin/kubeconform-$KUBECONFORM_VERSION" ]; then
  echo "building kubeconform $KUBECONFORM_VERSION from the Go module proxy" >&2
  GOBIN=$cache/gobin go install "github.com/yannh/kubeconform/cmd/kubeconform@$KUBECONFORM_VERSION"
  mv "$cache/gobin/kubeconform" "$cache/bin/kubeconform-$KUBECONFORM_VERSION"
fi
ln -sf "kubeconform-$KUBECONFORM_VERSION" "$cache/bin/kubeconform"

schemas=$cache/schemas-$K8S_VERSION-keda-$KEDA_VERSION-promop-$PROMOP_VERSION
if [ ! -f "$schemas/.done" ]; then
  echo "fetching API schemas: kubernetes $K8S_VERSION, KEDA $KEDA_VERSION, prometheus-operator $PROMOP_VERSION" >&2
  mod() {
    go mod download -json "$1@$2" | python3 -c 'import json, sys; d = json.load(sys.stdin); sys.exit(d["Error"]) if "Error" in d else print(d["Dir"])'
  }
  k8s=$(mod k8s.io/kubernetes "$K8S_VERSION")
  keda=$(mod github.com/kedacore/keda/v2 "$KEDA_VERSION")
  promop=$(mod github.com/prometheus-operator/prometheus-operator "$PROMOP_VERSION")
  rm -rf "$schemas.tmp" && mkdir -p "$schemas.tmp"
  python3 "$here/schemas.py" --out "$schemas.tmp" --swagger "$k8s/api/openapi-spec/swagger.json" \
    --crd "$keda/config/crd/bases/keda.sh_scaledobjects.yaml" \
    --crd "$keda/config/crd/bases/keda.sh_triggerauthentications.yaml" \
    --crd "$promop/example/prometheus-operator-crd/monitoring.coreos.com_servicemonitors.yaml" \
    --crd "$promop/example/prometheus-operator-crd/monitoring.coreos.com_prometheusrules.yaml"
  touch "$schemas.tmp/.done" && rm -rf "$schemas" && mv "$schemas.tmp" "$schemas"
fi
ln -sfn "$(basename "$schemas")" "$cache/schemas"
echo "$cache"
