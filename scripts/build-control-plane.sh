#!/usr/bin/env bash
# Builds the test control plane's binaries from their Go modules and caches them outside the clone:
# kube-apiserver, kube-controller-manager and kubectl from k8s.io/kubernetes (staging modules replaced
# by their published versions), and helm. Prints the bin directory. Idempotent: a cached build is reused.
# WITH_KUBELET=1 also builds the kubelet and kube-scheduler (opt-in: the tests use the node agent; docs/testenv.md says
# how far a real kubelet gets on these machines).
set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/lib/testenv.sh"
BIN="$K8S_BIN"
export GOFLAGS="${GOFLAGS:-} -mod=mod"
export CGO_ENABLED=0

log() { echo "[build-control-plane] $*" >&2; }

build_kubernetes() {
  if [ -x "$BIN/kube-apiserver" ] && [ -x "$BIN/kube-controller-manager" ] && [ -x "$BIN/kubectl" ]; then
    log "kubernetes $K8S_VERSION cached in $BIN"
    return
  fi
  local work="$CACHE/control-plane/k8s-$K8S_VERSION/src"
  mkdir -p "$work" "$BIN"
  cd "$work"
  log "preparing wrapper module for k8s.io/kubernetes@$K8S_VERSION"
  local modfile
  modfile=$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
  local minor="${K8S_VERSION#v1.}"          # 35.4
  local staging_version="v0.${minor}"       # v0.35.4
  rm -f go.mod go.sum
  go mod init tmdbsync.local/control-plane >/dev/null 2>&1
  local goversion
  goversion=$(sed -n 's/^go \(.*\)$/\1/p' "$modfile")
  go mod edit -go="$goversion"
  go mod edit -require="k8s.io/kubernetes@$K8S_VERSION"
  # The staging modules are required at v0.0.0 with local replaces; point each at its published version.
  grep -E '=> \./staging/' "$modfile" | awk '{print $1}' | while read -r m; do
    go mod edit -replace="$m=$m@$staging_version"
  done
  cat > tools.go <<'GO'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
GO
  log "resolving modules"
  go mod tidy -e >/dev/null 2>&1 || true
  for cmd in kube-apiserver kube-controller-manager kubectl; do
    go_build_k8s "$cmd"
  done
}

# Builds k8s.io/kubernetes/cmd/$1 in the wrapper module (the current directory) into $BIN, with the
# version ldflags.
go_build_k8s() {
  local cmd="$1" minor="${K8S_VERSION#v1.}"
  local gminor="${minor%%.*}" date ld=""
  date=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld="$ld -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$gminor"
    ld="$ld -X $pkg.gitTreeState=clean -X $pkg.buildDate=$date -X $pkg.gitCommit=0000000000000000000000000000000000000000"
  done
  log "building $cmd (slow on a cold cache)"
  go build -trimpath -ldflags "-s -w $ld" -o "$BIN/$cmd.tmp" "k8s.io/kubernetes/cmd/$cmd"
  mv "$BIN/$cmd.tmp" "$BIN/$cmd"
}

# The kubelet and kube-scheduler (a real node needs pods bound to it), from the same wrapper module
# (-mod=mod adds the modules only they need).
build_kubelet() {
  cd "$CACHE/control-plane/k8s-$K8S_VERSION/src"
  for cmd in kubelet kube-scheduler; do
    if [ -x "$BIN/$cmd" ]; then
      log "$cmd $K8S_VERSION cached in $BIN"
    else
      go_build_k8s "$cmd"
    fi
  done
}

build_helm() {
  if [ -x "$HELM_BIN/helm" ]; then
    log "helm $HELM_VERSION cached in $HELM_BIN"
    return
  fi
  mkdir -p "$HELM_BIN"
  log "building helm $HELM_VERSION"
  GOBIN="$HELM_BIN" go install -trimpath \
    -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION" \
    "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
}

build_kubernetes
[ "${WITH_KUBELET:-0}" != 1 ] || build_kubelet
[ "${SKIP_HELM:-0}" = 1 ] || build_helm
echo "$BIN"
