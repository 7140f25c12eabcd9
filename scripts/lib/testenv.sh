# Where the test control plane's binaries and state live, for scripts/build-control-plane.sh,
# scripts/testenv.sh and scripts/testenv-node.sh; each setting may come from the environment.
# Source it.
K8S_VERSION="${K8S_VERSION:-v1.35.4}"
HELM_VERSION="${HELM_VERSION:-v3.21.4}"
CACHE="${TMDBSYNC_CACHE:-$HOME/.cache/tmdbsync}"
STATE="${TMDBSYNC_TESTENV_DIR:-/tmp/tmdbsync-testenv}"
K8S_BIN="$CACHE/control-plane/k8s-$K8S_VERSION/bin"
HELM_BIN="$CACHE/control-plane/helm-$HELM_VERSION/bin"
