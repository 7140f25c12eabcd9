#!/usr/bin/env bash
# A real node for the test control plane (opt-in tier): Debian's containerd + runc + CNI plugins and
# a kubelet and kube-scheduler built from the Kubernetes Go modules, in place of tmdbsync-node-agent.
#
#   scripts/testenv.sh up && scripts/testenv-node.sh up    # node Ready in ~20 s once built
#   scripts/testenv-node.sh status
#   scripts/testenv-node.sh down                           # `scripts/testenv.sh down` calls it too
#
# Needs root, containerd and containernetworking-plugins (scripts/install-deps.sh), podman's image of
# the product ($IMAGE, default localhost/tmdbsync:<version>, (re)built by scripts/build-image.sh)
# and gcc for the pause image. The kubelet and kube-scheduler are built once
# (WITH_KUBELET=1 scripts/build-control-plane.sh). Do not run the node agent at the same time: both
# would take the pods. One real node per machine (the bridge name is fixed).
#
# What this machine needs, measured (docs/testenv.md, "A real node"): `failCgroupV1: false` (the
# cgroups are v1/hybrid), cgroupfs as the cgroup driver (no systemd), containerd's
# `restrict_oom_score_adj` (lowering an oom_score_adj is refused here, even to root), no `nodeIP`
# (the kubelet refuses a loopback one, and the machine's other address is not for tests).
#
# Pods get addresses in 10.244.0.0/24 on the bridge tmdbsync0; the host side is 10.244.0.1, where a
# server that pods must reach listens. Images come from podman's store through `ctr images import`:
# no registry.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$SCRIPT_DIR/lib/testenv.sh"
NODE_DIR="$STATE/node"
NODE_NAME="${NODE_NAME:-tmdbsync-kubelet}"
SOCK="$NODE_DIR/containerd.sock"
BRIDGE=tmdbsync0
GATEWAY=10.244.0.1
POD_CIDR=10.244.0.0/24
PAUSE_IMAGE=localhost/tmdbsync-pause:1
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$SCRIPT_DIR/../Cargo.toml" | head -n1)
IMAGE="${IMAGE:-localhost/tmdbsync:$version}"

log() { echo "[testenv-node] $*" >&2; }
die() { echo "[testenv-node] ERROR: $*" >&2; exit 1; }
kubectl() { "$K8S_BIN/kubectl" --kubeconfig "$STATE/kubeconfig" "$@"; }
ctr_() { ctr --address "$SOCK" -n k8s.io "$@"; }
alive() { [ -f "$NODE_DIR/$1.pid" ] && kill -0 "$(cat "$NODE_DIR/$1.pid")" 2>/dev/null; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# Starts `$@` detached, logging to $NODE_DIR/logs/$name.log; its pid in $NODE_DIR/$name.pid.
start() {
  local name="$1"; shift
  setsid "$@" >"$NODE_DIR/logs/$name.log" 2>&1 </dev/null &
  echo $! >"$NODE_DIR/$name.pid"
}

fail() {
  echo "[testenv-node] ERROR: $1; last lines of $NODE_DIR/logs/$2.log:" >&2
  tail -n 20 "$NODE_DIR/logs/$2.log" >&2 || true
  exit 1
}

write_configs() {
  mkdir -p "$NODE_DIR/containerd" "$NODE_DIR/cni" "$NODE_DIR/kubelet" "$NODE_DIR/logs"
  cat >"$NODE_DIR/containerd/config.toml" <<EOF
version = 2
root = "$NODE_DIR/containerd/root"
state = "$NODE_DIR/containerd/state"
[grpc]
  address = "$SOCK"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  # Lowering a process's oom_score_adj fails on these machines (runc: "can't get final child's PID
  # from pipe: EOF"): never ask for less than containerd's own.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        BinaryName = "$(command -v runc)"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$NODE_DIR/cni"
EOF
  cat >"$NODE_DIR/cni/10-tmdbsync.conflist" <<EOF
{"cniVersion": "1.0.0", "name": "tmdbsync-pods", "plugins": [
  {"type": "bridge", "bridge": "$BRIDGE", "isGateway": true, "ipMasq": false,
   "ipam": {"type": "host-local", "dataDir": "$NODE_DIR/cni-ipam",
            "ranges": [[{"subnet": "$POD_CIDR", "gateway": "$GATEWAY"}]]}}
]}
EOF
  echo 'options ndots:1' >"$NODE_DIR/resolv.conf"
  cat >"$NODE_DIR/kubelet/config.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
failCgroupV1: false
cgroupDriver: cgroupfs
containerRuntimeEndpoint: unix://$SOCK
failSwapOn: false
address: 127.0.0.1
port: $(free_port)
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: $(free_port)
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: false}
  x509: {clientCAFile: $STATE/pki/ca.crt}
authorization: {mode: AlwaysAllow}
enforceNodeAllocatable: []
# No name servers for pods: tests reach their servers by address, and no query leaves the machine.
resolvConf: $NODE_DIR/resolv.conf
podCIDR: $POD_CIDR
podLogsDir: $NODE_DIR/pod-logs
localStorageCapacityIsolation: false
evictionHard: {memory.available: "1Mi", nodefs.available: "1%", imagefs.available: "1%"}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
EOF
}

# The pause image (registry.k8s.io/pause cannot be pulled here) and the product image, from podman
# into containerd's k8s.io namespace.
import_images() {
  # Always: the image must be of this checkout (2 s when nothing changed).
  IMAGE="$IMAGE" bash "$SCRIPT_DIR/build-image.sh" >/dev/null
  local ctx="$NODE_DIR/pause-image"
  mkdir -p "$ctx"
  gcc -static -Os -s -o "$ctx/pause" "$SCRIPT_DIR/../testenv/pause/pause.c"
  printf 'FROM scratch\nCOPY pause /pause\nUSER 65535:65535\nENTRYPOINT ["/pause"]\n' >"$ctx/Containerfile"
  podman --runtime runc build --quiet --pull=never --timestamp 0 -t "$PAUSE_IMAGE" "$ctx" >/dev/null
  local names=("$PAUSE_IMAGE" "$IMAGE")
  # The chart's default image, when build-image.sh tagged it.
  local chart="ghcr.io/tmdbsync/tmdbsync:$version"
  podman --runtime runc image exists "$chart" && names+=("$chart")
  podman --runtime runc save --quiet -m --format docker-archive -o "$NODE_DIR/images.tar" "${names[@]}"
  ctr_ images import "$NODE_DIR/images.tar" >/dev/null
  rm -f "$NODE_DIR/images.tar"
  log "images in containerd: ${names[*]}"
}

cmd_up() {
  [ "$(id -u)" = 0 ] || die "needs root (containerd, runc, the bridge)"
  [ -f "$STATE/kubeconfig" ] || die "no control plane in $STATE: run scripts/testenv.sh up first"
  if [ -f "$STATE/node-agent.pid" ] && kill -0 "$(cat "$STATE/node-agent.pid")" 2>/dev/null; then
    die "the node agent runs (pid $(cat "$STATE/node-agent.pid")): it would bind the pods; stop it first"
  fi
  if alive kubelet && kubectl get node "$NODE_NAME" >/dev/null 2>&1; then
    log "already up (node $NODE_NAME)"
    return
  fi
  for tool in containerd ctr runc podman gcc python3 ip; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool is missing (bash scripts/install-deps.sh; gcc, iproute2)"
  done
  [ -x /usr/lib/cni/bridge ] || die "CNI plugins missing (apt-get install containernetworking-plugins)"
  if [ ! -x "$K8S_BIN/kubelet" ] || [ ! -x "$K8S_BIN/kube-scheduler" ]; then
    log "building kubelet and kube-scheduler (once; slow on a cold Go cache)"
    WITH_KUBELET=1 SKIP_HELM=1 bash "$SCRIPT_DIR/build-control-plane.sh" >/dev/null
  fi
  local t0=$SECONDS
  write_configs
  # The bridge's host side exists before the first pod, so servers for the pods can bind to it.
  ip link show "$BRIDGE" >/dev/null 2>&1 || ip link add "$BRIDGE" type bridge
  ip addr show dev "$BRIDGE" | grep -q "inet $GATEWAY/" || ip addr add "$GATEWAY/24" dev "$BRIDGE"
  ip link set "$BRIDGE" up

  alive containerd || start containerd containerd --config "$NODE_DIR/containerd/config.toml"
  for _ in $(seq 1 100); do ctr_ version >/dev/null 2>&1 && break; sleep 0.1; done
  ctr_ version >/dev/null 2>&1 || fail "containerd did not answer on $SOCK" containerd
  import_images

  local sched_port
  sched_port=$(free_port)
  alive kube-scheduler || start kube-scheduler "$K8S_BIN/kube-scheduler" \
    --kubeconfig "$STATE/kubeconfig" --authentication-kubeconfig "$STATE/kubeconfig" \
    --authorization-kubeconfig "$STATE/kubeconfig" --leader-elect=false \
    --bind-address 127.0.0.1 --secure-port "$sched_port"
  alive kubelet || start kubelet "$K8S_BIN/kubelet" --config "$NODE_DIR/kubelet/config.yaml" \
    --kubeconfig "$STATE/kubeconfig" --hostname-override "$NODE_NAME" \
    --root-dir "$NODE_DIR/kubelet/root" --cert-dir "$NODE_DIR/kubelet/pki"
  for _ in $(seq 1 120); do
    alive kubelet || fail "the kubelet exited" kubelet
    alive kube-scheduler || fail "kube-scheduler exited" kube-scheduler
    [ "$(kubectl get node "$NODE_NAME" -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" = True ] && break
    sleep 0.5
  done
  [ "$(kubectl get node "$NODE_NAME" -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" = True ] \
    || fail "node $NODE_NAME not Ready after 60 s" kubelet
  # The kubelet registers with this taint; the node-lifecycle controller, which testenv.sh does not
  # run, would lift it once Ready.
  kubectl taint node "$NODE_NAME" node.kubernetes.io/not-ready:NoSchedule- >/dev/null 2>&1 || true
  log "node $NODE_NAME Ready in $((SECONDS - t0)) s (pods on $POD_CIDR, host side $GATEWAY; logs in $NODE_DIR/logs)"
}

stop_pid() {
  local name="$1" pid
  [ -f "$NODE_DIR/$name.pid" ] || return 0
  pid=$(cat "$NODE_DIR/$name.pid")
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$NODE_DIR/$name.pid"
}

cmd_down() {
  [ -d "$NODE_DIR" ] || return 0
  # Through the kubelet first, so containers stop and sandboxes release their network namespaces.
  if alive kubelet; then
    kubectl delete pods --all-namespaces --field-selector "spec.nodeName=$NODE_NAME" \
      --grace-period=0 --force --wait=false >/dev/null 2>&1 || true
    for _ in $(seq 1 60); do
      [ -z "$(ctr_ tasks ls -q 2>/dev/null)" ] && break
      sleep 0.5
    done
  fi
  stop_pid kubelet
  stop_pid kube-scheduler
  if alive containerd; then
    local id
    for id in $(ctr_ tasks ls -q 2>/dev/null); do
      ctr_ tasks kill -s SIGKILL "$id" >/dev/null 2>&1 || true
      ctr_ tasks delete "$id" >/dev/null 2>&1 || true
    done
    for id in $(ctr_ containers ls -q 2>/dev/null); do ctr_ containers delete "$id" >/dev/null 2>&1 || true; done
  fi
  stop_pid containerd
  # The runc shims of this containerd (they outlive it), found by its socket path.
  local pid
  for pid in $(pgrep -f -- "-address $SOCK" || true); do kill -9 "$pid" 2>/dev/null || true; done
  findmnt -rno TARGET | grep -F "$NODE_DIR/" | sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
  ip link del "$BRIDGE" 2>/dev/null || true
  kubectl delete node "$NODE_NAME" --wait=false >/dev/null 2>&1 || true
  rm -rf "$NODE_DIR"
  log "down"
}

cmd_status() {
  local c
  for c in containerd kube-scheduler kubelet; do
    if alive "$c"; then echo "$c: running (pid $(cat "$NODE_DIR/$c.pid"))"; else echo "$c: not running"; fi
  done
  kubectl get node "$NODE_NAME" 2>/dev/null || echo "node $NODE_NAME: not registered"
}

case "${1:-}" in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
