#!/usr/bin/env bash
# A real Kubernetes control plane on 127.0.0.1 for tests and the demo: etcd, kube-apiserver and
# kube-controller-manager (no scheduler, no kubelet: pods are run by tmdbsync-node-agent).
#
#   scripts/testenv.sh up       start it (idempotent: does nothing when already up and healthy)
#   scripts/testenv.sh down     stop everything it started and remove the state dir
#   scripts/testenv.sh env      print `export KUBECONFIG=...` / `export PATH=...` lines to eval
#   scripts/testenv.sh status   say what runs
#
# `up` and `down` hold an exclusive flock on $STATE.lock (beside the state dir, which `down` removes),
# so concurrent callers (several test binaries) serialize: one starts the control plane, the others
# then find it healthy. `down` also stops a shared node agent that tests/support/cluster.rs started
# ($STATE/node-agent.pid) before the control plane.
#
# Binaries: kube-apiserver/kube-controller-manager/kubectl/helm from scripts/build-control-plane.sh,
# etcd from the etcd-bin-vendored crate (crates.io); all cached under ${TMDBSYNC_CACHE:-~/.cache/tmdbsync}.
# State (certs, pids, logs, kubeconfig, etcd data): ${TMDBSYNC_TESTENV_DIR:-/tmp/tmdbsync-testenv}.
set -euo pipefail

ETCD_VERSION="${ETCD_VERSION:-3.6.15}"
SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$SCRIPT_DIR/lib/testenv.sh"
ETCD_DIR="$CACHE/control-plane/etcd-v$ETCD_VERSION"
ETCD_BIN="$ETCD_DIR/bin"
KUBECONFIG_PATH="$STATE/kubeconfig"
COMPONENTS=(etcd kube-apiserver kube-controller-manager)
LOCK_FILE="$STATE.lock"
AGENT_PID_FILE="$STATE/node-agent.pid"

log() { echo "[testenv] $*" >&2; }
die() { echo "[testenv] ERROR: $*" >&2; exit 1; }

# Prints the tail of a component's log and fails.
fail_component() {
  local name="$1" msg="$2"
  echo "[testenv] ERROR: $name: $msg" >&2
  if [ -f "$STATE/logs/$name.log" ]; then
    echo "[testenv] ---- last lines of $STATE/logs/$name.log ----" >&2
    tail -n 30 "$STATE/logs/$name.log" >&2
    echo "[testenv] ----" >&2
  fi
  exit 1
}

need_openssl() {
  command -v openssl >/dev/null 2>&1 && return
  log "openssl missing: installing it with apt-get"
  command -v apt-get >/dev/null 2>&1 || die "openssl is missing and apt-get is not available"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssl) >&2 \
    || die "could not install openssl"
}

ensure_k8s_binaries() {
  if [ -x "$K8S_BIN/kube-apiserver" ] && [ -x "$K8S_BIN/kube-controller-manager" ] && [ -x "$K8S_BIN/kubectl" ] \
    && [ -x "$HELM_BIN/helm" ]; then
    return
  fi
  K8S_VERSION="$K8S_VERSION" HELM_VERSION="$HELM_VERSION" "$SCRIPT_DIR/build-control-plane.sh" >/dev/null \
    || die "scripts/build-control-plane.sh failed"
}

# etcd comes prebuilt inside the etcd-bin-vendored crate: a throwaway cargo project that depends on the
# pinned version prints the bundled binary's path, which is copied into the cache.
ensure_etcd() {
  [ -x "$ETCD_BIN/etcd" ] && return
  command -v cargo >/dev/null 2>&1 || die "cargo is needed to fetch etcd from the etcd-bin-vendored crate"
  log "fetching etcd $ETCD_VERSION from the etcd-bin-vendored crate"
  local proj="$ETCD_DIR/extract"
  mkdir -p "$proj/src" "$ETCD_BIN"
  cat > "$proj/Cargo.toml" <<EOF
[package]
name = "etcd-extract"
version = "0.0.0"
edition = "2021"
publish = false

[dependencies]
etcd-bin-vendored = "=$ETCD_VERSION"

[workspace]
EOF
  cat > "$proj/src/main.rs" <<'EOF'
fn main() {
    let p = etcd_bin_vendored::etcd_bin_path().expect("etcd is not bundled for this platform");
    println!("{}", p.display());
}
EOF
  local path
  path=$(cd "$proj" && CARGO_TARGET_DIR="$proj/target" cargo run -q --release 2>"$proj/build.log" | tail -n 1) \
    || { tail -n 20 "$proj/build.log" >&2; die "building the etcd extractor failed"; }
  [ -x "$path" ] || die "etcd-bin-vendored reported '$path', which is not an executable"
  cp "$path" "$ETCD_BIN/etcd.tmp" && chmod +x "$ETCD_BIN/etcd.tmp" && mv "$ETCD_BIN/etcd.tmp" "$ETCD_BIN/etcd"
  rm -rf "$proj/target"
  log "cached $("$ETCD_BIN/etcd" --version 2>/dev/null | sed -n 1p)"
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()' 2>/dev/null && return
  local p
  while :; do
    p=$((20000 + RANDOM % 30000))
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
  done
}

gen_certs() {
  local d="$STATE/pki"
  mkdir -p "$d"
  cd "$d"
  openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 3650 -subj "/CN=tmdbsync-testenv-ca" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" \
    2>/dev/null
  cat > server.ext <<'EOF'
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1,IP:10.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local
EOF
  openssl req -newkey rsa:2048 -nodes -keyout apiserver.key -out apiserver.csr -subj "/CN=kube-apiserver" 2>/dev/null
  openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out apiserver.crt -days 3650 \
    -extfile server.ext 2>/dev/null
  cat > client.ext <<'EOF'
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth
EOF
  openssl req -newkey rsa:2048 -nodes -keyout admin.key -out admin.csr -subj "/O=system:masters/CN=tmdbsync-admin" \
    2>/dev/null
  openssl x509 -req -in admin.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out admin.crt -days 3650 \
    -extfile client.ext 2>/dev/null
  openssl genrsa -out sa.key 2048 2>/dev/null
  openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
  rm -f ./*.csr
  cd - >/dev/null
}

write_kubeconfig() {
  local port="$1"
  cat > "$KUBECONFIG_PATH" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: tmdbsync-testenv
  cluster:
    server: https://127.0.0.1:$port
    certificate-authority: $STATE/pki/ca.crt
users:
- name: admin
  user:
    client-certificate: $STATE/pki/admin.crt
    client-key: $STATE/pki/admin.key
contexts:
- name: tmdbsync-testenv
  context:
    cluster: tmdbsync-testenv
    user: admin
    namespace: default
current-context: tmdbsync-testenv
EOF
}

pid_alive() {
  local f="$STATE/$1.pid"
  [ -f "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null
}

start_bg() {
  local name="$1"; shift
  mkdir -p "$STATE/logs"
  # setsid: the component outlives this script and ignores the caller's terminal signals.
  # 9>&-: it must not inherit (and so keep holding) the up/down lock.
  setsid "$@" >"$STATE/logs/$name.log" 2>&1 < /dev/null 9>&- &
  echo $! > "$STATE/$name.pid"
}

# wait_for NAME SECONDS COMMAND...: polls COMMAND until it succeeds while NAME's process is alive.
wait_for() {
  local name="$1" secs="$2"; shift 2
  local deadline=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    pid_alive "$name" || fail_component "$name" "process exited during startup"
    [ "$SECONDS" -lt "$deadline" ] || fail_component "$name" "not healthy after ${secs}s"
    sleep 0.3
  done
}

healthy() {
  [ -f "$STATE/ports.env" ] || return 1
  for c in "${COMPONENTS[@]}"; do pid_alive "$c" || return 1; done
  # shellcheck disable=SC1091
  . "$STATE/ports.env"
  curl -sf --cacert "$STATE/pki/ca.crt" --cert "$STATE/pki/admin.crt" --key "$STATE/pki/admin.key" \
    "https://127.0.0.1:$APISERVER_PORT/readyz" >/dev/null 2>&1
}

cmd_up() {
  ensure_k8s_binaries
  ensure_etcd
  if healthy; then
    log "already up (KUBECONFIG=$KUBECONFIG_PATH)"
    return
  fi
  if [ -d "$STATE" ]; then
    log "stale state in $STATE: cleaning it up"
    cmd_down
  fi
  need_openssl
  command -v curl >/dev/null 2>&1 || die "curl is needed"
  local t0=$SECONDS
  mkdir -p "$STATE/logs"
  gen_certs
  local etcd_client etcd_peer api kcm
  etcd_client=$(free_port); etcd_peer=$(free_port); api=$(free_port); kcm=$(free_port)
  while [ "$etcd_peer" = "$etcd_client" ]; do etcd_peer=$(free_port); done
  while [ "$api" = "$etcd_client" ] || [ "$api" = "$etcd_peer" ]; do api=$(free_port); done
  cat > "$STATE/ports.env" <<EOF
ETCD_PORT=$etcd_client
ETCD_PEER_PORT=$etcd_peer
APISERVER_PORT=$api
KCM_PORT=$kcm
EOF

  log "starting etcd on 127.0.0.1:$etcd_client"
  start_bg etcd "$ETCD_BIN/etcd" --name=testenv --data-dir="$STATE/etcd" \
    --listen-client-urls="http://127.0.0.1:$etcd_client" --advertise-client-urls="http://127.0.0.1:$etcd_client" \
    --listen-peer-urls="http://127.0.0.1:$etcd_peer" --initial-advertise-peer-urls="http://127.0.0.1:$etcd_peer" \
    --initial-cluster="testenv=http://127.0.0.1:$etcd_peer" --unsafe-no-fsync --log-level=warn
  wait_for etcd 30 curl -sf "http://127.0.0.1:$etcd_client/health"

  log "starting kube-apiserver on https://127.0.0.1:$api"
  start_bg kube-apiserver "$K8S_BIN/kube-apiserver" \
    --etcd-servers="http://127.0.0.1:$etcd_client" \
    --cert-dir="$STATE/pki" --tls-cert-file="$STATE/pki/apiserver.crt" --tls-private-key-file="$STATE/pki/apiserver.key" \
    --secure-port="$api" --bind-address=127.0.0.1 --advertise-address=127.0.0.1 \
    --service-cluster-ip-range=10.0.0.0/24 --allow-privileged=true --authorization-mode=RBAC \
    --client-ca-file="$STATE/pki/ca.crt" \
    --service-account-issuer="https://127.0.0.1:$api" \
    --service-account-key-file="$STATE/pki/sa.pub" --service-account-signing-key-file="$STATE/pki/sa.key" \
    --enable-priority-and-fairness=false --v=1
  wait_for kube-apiserver 60 curl -sf --cacert "$STATE/pki/ca.crt" --cert "$STATE/pki/admin.crt" \
    --key "$STATE/pki/admin.key" "https://127.0.0.1:$api/readyz"
  write_kubeconfig "$api"

  log "starting kube-controller-manager"
  start_bg kube-controller-manager "$K8S_BIN/kube-controller-manager" \
    --kubeconfig="$KUBECONFIG_PATH" --authentication-kubeconfig="$KUBECONFIG_PATH" \
    --authorization-kubeconfig="$KUBECONFIG_PATH" \
    --leader-elect=false --bind-address=127.0.0.1 --secure-port="$kcm" \
    --service-account-private-key-file="$STATE/pki/sa.key" --root-ca-file="$STATE/pki/ca.crt" \
    --use-service-account-credentials=false \
    --controllers=job-controller,garbage-collector-controller,ttl-after-finished-controller,deployment-controller,replicaset-controller,serviceaccount-controller,serviceaccount-token-controller,root-ca-certificate-publisher-controller,namespace-controller,pod-garbage-collector-controller \
    --v=1
  wait_for kube-controller-manager 60 curl -skf "https://127.0.0.1:$kcm/healthz"
  # The default namespace's ServiceAccount shows the controllers are working.
  wait_for kube-controller-manager 30 "$K8S_BIN/kubectl" --kubeconfig="$KUBECONFIG_PATH" -n default get serviceaccount default
  log "up in $((SECONDS - t0))s: eval \"\$($0 env)\""
}

# Takes the exclusive lock for up/down (held until this script exits; nested calls are fine).
take_lock() {
  command -v flock >/dev/null 2>&1 || { log "flock missing: not serializing concurrent callers"; return; }
  mkdir -p "$(dirname "$LOCK_FILE")"
  exec 9>>"$LOCK_FILE"
  flock 9
}

# The pid in $AGENT_PID_FILE when that process is alive and is a tmdbsync-node-agent.
agent_pid() {
  local pid
  [ -f "$AGENT_PID_FILE" ] || return 1
  pid=$(cat "$AGENT_PID_FILE" 2>/dev/null) || return 1
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
  tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -q tmdbsync-node-agent || return 1
  echo "$pid"
}

# Stops the shared node agent (SIGTERM: it kills its pods' processes, 2 s grace; SIGKILL after 6 s).
stop_agent() {
  local pid
  pid=$(agent_pid) || { rm -f "$AGENT_PID_FILE"; return 0; }
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$AGENT_PID_FILE"
  log "stopped node agent (pid $pid)"
}

cmd_down() {
  local c pid
  # A real node (scripts/testenv-node.sh, opt-in) goes first: its pods, containerd, the bridge.
  [ ! -d "$STATE/node" ] || TMDBSYNC_TESTENV_DIR="$STATE" bash "$SCRIPT_DIR/testenv-node.sh" down || true
  stop_agent
  for ((i=${#COMPONENTS[@]}-1; i>=0; i--)); do
    c="${COMPONENTS[$i]}"
    [ -f "$STATE/$c.pid" ] || continue
    pid=$(cat "$STATE/$c.pid")
    if kill -0 "$pid" 2>/dev/null; then
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null || true
    fi
  done
  rm -rf "$STATE"
  log "down"
}

cmd_env() {
  echo "export KUBECONFIG=$KUBECONFIG_PATH"
  echo "export PATH=$K8S_BIN:$HELM_BIN:$ETCD_BIN:\$PATH"
}

cmd_status() {
  local any=0 c pid
  for c in "${COMPONENTS[@]}"; do
    if pid_alive "$c"; then echo "$c: running (pid $(cat "$STATE/$c.pid"))"; any=1; else echo "$c: not running"; fi
  done
  if pid=$(agent_pid); then echo "node-agent: running (pid $pid)"; else echo "node-agent: not running"; fi
  if healthy; then
    # shellcheck disable=SC1091
    . "$STATE/ports.env"
    echo "apiserver: ready at https://127.0.0.1:$APISERVER_PORT (KUBECONFIG=$KUBECONFIG_PATH)"
  else
    echo "apiserver: not ready"
    [ "$any" = 1 ] && return 1
    return 3
  fi
}

case "${1:-}" in
  up) take_lock; cmd_up ;;
  down) take_lock; cmd_down ;;
  env) cmd_env ;;
  status) cmd_status ;;
  *) echo "usage: $0 up|down|env|status" >&2; exit 2 ;;
esac
